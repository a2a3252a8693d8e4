"""A local Kubernetes API emulator for faultline's cluster tests (PyPI `kmock`, a JSON store over HTTP), with the
pods' exec endpoint in front of it.

Reads one line of JSON on standard input:

    {"objects":   [{"resource": "v1/nodes", "body": {...Node...}}, ...],   # seeded objects
     "resources": ["v1/events", ...],                                      # declared, initially empty
     "forbidden": ["get /api/v1/nodes/gpu-a", ...],                        # answered 403 Forbidden
     "exec":      {"faultline-system/faultline-node-a":                    # pods whose exec runs commands here
                     {"faultline": "/path/to/faultline", "env": {"FAULTLINE_POLICY_FILE": "/tmp/x/cuda.policy"}}}}

prints `PORT <port>` once it listens on 127.0.0.1 (a free port), and serves until standard input closes (the
test ended or died) or it is killed.

kmock has no exec endpoint, so this front answers `GET /api/v1/namespaces/<ns>/pods/<pod>/exec` itself and passes
every other request through to kmock unchanged (streamed, so watches work). The exec speaks the WebSocket channel
protocol the API server speaks (`v5.channel.k8s.io`, or `v4.channel.k8s.io`): one binary message per chunk, its
first byte the channel — 0 stdin, 1 stdout, 2 stderr, 3 the final `Status` (JSON), 255 close (v5: `[255, 0]` from
the client closes stdin). The command runs on this machine as the node agent would run it, with `faultline` meaning
the binary under test and the pod's `env` added; a pod without an `exec` entry answers 404 as for a missing pod.
"""

import asyncio
import json
import os
import sys

import aiohttp
import kmock
from aiohttp import web


FORBIDDEN = {
    "apiVersion": "v1",
    "kind": "Status",
    "metadata": {},
    "status": "Failure",
    "reason": "Forbidden",
    "code": 403,
    "message": "kmock: RBAC denies this request (test)",
}

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
# Headers that belong to one hop, not to the request or response passed through.
HOP = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "content-encoding"}


def status(code: int) -> bytes:
    """The final `Status` message: success, or the exit code as the API server reports it."""
    if code == 0:
        body = {"metadata": {}, "status": "Success"}
    else:
        body = {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    return bytes([STATUS]) + json.dumps(body).encode()


def not_found(namespace: str, pod: str) -> web.Response:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "reason": "NotFound",
        "code": 404,
        "message": f'pods "{pod}" not found in namespace {namespace} (no exec configured for it in this test)',
    }
    return web.json_response(body, status=404)


class Front:
    """The exec endpoint, and a pass-through to kmock for everything else."""

    def __init__(self, upstream: str, pods: dict) -> None:
        self.upstream = upstream
        self.pods = pods
        self.session: aiohttp.ClientSession | None = None

    async def exec(self, request: web.Request) -> web.StreamResponse:
        namespace, pod = request.match_info["namespace"], request.match_info["pod"]
        config = self.pods.get(f"{namespace}/{pod}")
        if config is None:
            return not_found(namespace, pod)
        command = request.query.getall("command", [])
        if not command:
            return web.json_response({"kind": "Status", "status": "Failure", "code": 400,
                                      "message": "you must specify at least one command"}, status=400)
        if command[0] == "faultline":
            command = [config["faultline"], *command[1:]]
        env = {**os.environ, **config.get("env", {})}
        wants_stdin = request.query.get("stdin") in ("true", "1")
        ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE if wants_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as error:
            await ws.send_bytes(bytes([STDERR]) + f"exec: {error}\n".encode())
            await ws.send_bytes(status(126))
            await ws.close()
            return ws

        async def pump(stream: asyncio.StreamReader, channel: int) -> None:
            while chunk := await stream.read(65536):
                await ws.send_bytes(bytes([channel]) + chunk)

        async def feed() -> None:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                    continue
                channel, data = message.data[0], message.data[1:]
                if channel == STDIN and process.stdin is not None and data:
                    process.stdin.write(data)
                    await process.stdin.drain()
                elif channel == CLOSE and data[:1] == bytes([STDIN]) and process.stdin is not None:
                    process.stdin.close()
            # The client went away: the command is not left running.
            if process.returncode is None:
                process.kill()

        feeding = asyncio.create_task(feed())
        await asyncio.gather(pump(process.stdout, STDOUT), pump(process.stderr, STDERR))
        code = await process.wait()
        if not ws.closed:
            await ws.send_bytes(status(code))
            await ws.close()
        feeding.cancel()
        return ws

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        async with self.session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None,
            allow_redirects=False,
        ) as upstream:
            passed = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
            if "Content-Length" in upstream.headers:
                # A whole answer stays whole (raw HTTP clients in the tests read it without chunking).
                return web.Response(body=await upstream.read(), status=upstream.status, headers=passed)
            # A watch streams.
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=passed)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


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
        front = Front(f"http://127.0.0.1:{server.port}", spec.get("exec", {}))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v1/namespaces/{namespace}/pods/{pod}/exec", front.exec)
        app.router.add_route("*", "/{tail:.*}", front.forward)
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            front.session = session
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # the free port the OS chose
            print(f"PORT {port}", flush=True)
            loop = asyncio.get_running_loop()
            # Serve until the test closes our standard input.
            await loop.run_in_executor(None, sys.stdin.read)
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
