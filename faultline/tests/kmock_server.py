"""A local Kubernetes API emulator for faultline's cluster tests (PyPI `kmock`, a JSON store over HTTP).

Reads one line of JSON on standard input:

    {"objects":   [{"resource": "v1/nodes", "body": {...Node...}}, ...],   # seeded objects
     "resources": ["v1/events", ...],                                      # declared, initially empty
     "forbidden": ["get /api/v1/nodes/gpu-a", ...]}                        # answered 403 Forbidden

prints `PORT <port>` once it listens on 127.0.0.1 (a free port), and serves until standard input closes (the
test ended or died) or it is killed.
"""

import asyncio
import json
import sys

import kmock


FORBIDDEN = {
    "apiVersion": "v1",
    "kind": "Status",
    "metadata": {},
    "status": "Failure",
    "reason": "Forbidden",
    "code": 403,
    "message": "kmock: RBAC denies this request (test)",
}


async def main() -> None:
    spec = json.loads(sys.stdin.readline() or "{}")
    emulator = kmock.KubernetesEmulator()
    async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
        for resource in spec.get("resources", []):
            emulator.resources[resource] = {}
        for obj in spec.get("objects", []):
            meta = obj["body"]["metadata"]
            emulator.objects[kmock.resource(obj["resource"]), meta.get("namespace"), meta["name"]] = obj["body"]
        for request in spec.get("forbidden", []):
            emulator[request] << 403 << FORBIDDEN
        print(f"PORT {server.port}", flush=True)
        loop = asyncio.get_running_loop()
        # Serve until the test closes our standard input.
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
