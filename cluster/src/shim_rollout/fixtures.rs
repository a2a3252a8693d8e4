//! Test fixtures shared by the shim rollout modules' tests: workloads as the API server returns them (a
//! Deployment, a StatefulSet, a DynamoGraphDeployment), the fault stamp, and RFC 7386's reference merge, which
//! applies a patch as the API server does.

use serde_json::{json, Map, Value};
use shm_proto::Kind;

use super::{enable_patch, ShimSpec, Workload};
use crate::ledger::{FaultKind, Stamp};

pub(super) const FAULT: &str = "fl-0123456789ab";

/// RFC 7386 section 2, as written there: what the API server (and the emulator) do with our patches.
pub(super) fn merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else { return patch.clone() };
    let mut target = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (name, value) in patch {
        if value.is_null() {
            // Keeps the order of the rest, as Go and Python maps serialised by the servers do.
            target.shift_remove(name);
        } else {
            let merged = merge(target.get(name).unwrap_or(&Value::Null), value);
            target.insert(name.clone(), merged);
        }
    }
    Value::Object(target)
}

pub(super) fn stamp(fault_id: &str) -> Stamp {
    let now = "2026-11-22T10:00:00Z".parse().unwrap();
    Stamp::at(FaultKind::Shim, fault_id.into(), now, Some(std::time::Duration::from_secs(3600)), "alice@lab".into())
}

pub(super) fn cuda(xid: Option<u32>) -> ShimSpec {
    ShimSpec { xid, ..ShimSpec::new(Kind::Cuda) }
}

/// Two required terms, preferred terms and pod anti-affinity.
pub(super) fn affinity() -> Value {
    json!({
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                { "matchExpressions": [{ "key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"] }] },
                { "matchExpressions": [
                    { "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p5.48xlarge"] }
                ] }
            ] },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                { "weight": 10, "preference": { "matchExpressions": [
                    { "key": "gpu-type", "operator": "In", "values": ["h100"] }
                ] } }
            ]
        },
        "podAntiAffinity": { "preferredDuringSchedulingIgnoredDuringExecution": [
            { "weight": 100, "podAffinityTerm": {
                "labelSelector": { "matchLabels": { "app": "vllm" } },
                "topologyKey": "kubernetes.io/hostname"
            } }
        ] }
    })
}

pub(super) fn pod_template() -> Value {
    json!({
        "metadata": { "labels": { "app": "vllm" } },
        "spec": {
            "initContainers": [
                { "name": "fetch", "image": "busybox", "env": [{ "name": "LD_PRELOAD", "value": "/init.so" }] }
            ],
            "containers": [
                {
                    "name": "worker",
                    "image": "vllm:1",
                    "env": [
                        { "name": "LD_PRELOAD", "value": "/usr/lib/libjemalloc.so.2" },
                        { "name": "MODEL", "value": "llama" }
                    ],
                    "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }]
                },
                { "name": "metrics", "image": "exporter:2", "env": [{ "name": "PORT", "value": "9400" }] }
            ],
            "volumes": [{ "name": "cache", "emptyDir": {} }],
            "affinity": affinity(),
            "nodeSelector": { "pool": "gpu" }
        }
    })
}

pub(super) fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "vllm",
            "namespace": "serving",
            "labels": { "app": "vllm", "app.kubernetes.io/managed-by": "Helm" },
            "annotations": { "deployment.kubernetes.io/revision": "3" }
        },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "vllm" } }, "template": pod_template() },
        "status": { "replicas": 2 }
    })
}

pub(super) fn statefulset() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": "vllm", "namespace": "serving", "labels": { "app": "vllm" } },
        "spec": {
            "serviceName": "vllm",
            "replicas": 2,
            "selector": { "matchLabels": { "app": "vllm" } },
            "template": pod_template()
        }
    })
}

/// The shape of ai-dynamo/dynamo's v1alpha1 types: services map, `envs` (graph-wide and per service),
/// `extraPodMetadata`, `extraPodSpec` (a PodSpec inline, plus `mainContainer`).
pub(super) fn dgd() -> Value {
    json!({
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": { "name": "disagg", "namespace": "dynamo" },
        "spec": {
            "backendFramework": "vllm",
            "envs": [{ "name": "HF_HOME", "value": "/models" }],
            "services": {
                "Frontend": {
                    "componentType": "frontend",
                    "replicas": 1,
                    "extraPodSpec": { "mainContainer": { "image": "dynamo:1" } }
                },
                "VllmDecodeWorker": {
                    "componentType": "worker",
                    "replicas": 2,
                    "envs": [{ "name": "LD_PRELOAD", "value": "/opt/lib/libtcmalloc.so" }],
                    "resources": { "limits": { "gpu": "1" } },
                    "extraPodMetadata": { "labels": { "team": "serving" } },
                    "extraPodSpec": {
                        "initContainers": [{ "name": "warm", "image": "busybox" }],
                        "containers": [
                            { "name": "sidecar", "image": "exporter:2", "env": [{ "name": "PORT", "value": "9400" }] }
                        ],
                        "volumes": [{ "name": "cache", "emptyDir": {} }],
                        "affinity": affinity(),
                        "mainContainer": {
                            "image": "vllm-runtime:1",
                            "command": ["python3"],
                            "args": ["-m", "dynamo.vllm"],
                            "env": [{ "name": "MODEL", "value": "llama" }],
                            "volumeMounts": [{ "name": "cache", "mountPath": "/cache" }]
                        }
                    }
                },
                "VllmPrefillWorker": {
                    "componentType": "worker",
                    "extraPodSpec": { "mainContainer": {
                        "image": "vllm-runtime:1",
                        "env": [{ "name": "LD_PRELOAD", "value": "/opt/lib/libtcmalloc.so" }]
                    } }
                }
            }
        }
    })
}

pub(super) fn decode() -> Workload {
    Workload::Dgd { name: "disagg".into(), service: "VllmDecodeWorker".into() }
}

pub(super) fn enabled(object: &Value, workload: &Workload, spec: &ShimSpec) -> Value {
    merge(object, &enable_patch(object, workload, spec, &stamp(FAULT)).expect("enable"))
}
