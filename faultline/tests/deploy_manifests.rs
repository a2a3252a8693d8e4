//! `deploy/`: every manifest passes `kubernetes-validate --strict` (offline schemas, unknown fields rejected);
//! the RBAC rules are exactly the calls `cluster::kube_api` makes (no wildcard, nothing extra, nothing missing);
//! the node agent matches what the cluster code looks for; the kustomization and Dockerfile cover everything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::kubernetes_validate;

use faultline::cluster::kube_api::{ApiCall, KubeApi, Scope, AGENT_CONTAINER, AGENT_SELECTOR};
use faultline::cluster::DEFAULT_NAMESPACE;
use serde::Deserialize;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("deploy")
}

/// The Kubernetes manifests (every YAML file but the kustomization).
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    files
}

/// Every document of every manifest.
fn documents() -> Vec<Value> {
    manifests()
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            serde_norway::Deserializer::from_str(&text)
                .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/"))
}

#[test]
fn every_manifest_passes_kubernetes_validate_strict() {
    let files = manifests();
    assert!(files.len() >= 3, "{files:?}");
    let output = kubernetes_validate().arg("--strict").args(&files).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "kubernetes-validate --strict failed:\n{report}");
    for document in documents() {
        let kind = document["kind"].as_str().unwrap().to_lowercase();
        let name = document["metadata"]["name"].as_str().unwrap();
        assert!(report.contains(&format!("passed for resource {kind}/{name} ")), "{kind}/{name} validated: {report}");
    }

    // --strict really rejects what a typo would produce (so a pass above means something).
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  lables: {a: b}\n").unwrap();
    let output = kubernetes_validate().arg("--strict").arg(&typo).output().unwrap();
    assert!(!output.status.success(), "an unknown field must fail --strict");
}

#[test]
fn rbac_grants_exactly_what_the_cluster_code_calls() {
    let documents = documents();
    let mut granted = BTreeSet::new();
    let roles = [
        (find(&documents, "ClusterRole", "faultline-operator"), Scope::Cluster),
        (find(&documents, "Role", "faultline-operator"), Scope::AgentNamespace),
    ];
    for (role, scope) in roles {
        if scope == Scope::AgentNamespace {
            assert_eq!(role["metadata"]["namespace"], DEFAULT_NAMESPACE);
        }
        for rule in role["rules"].as_array().unwrap() {
            let list = |key: &str| -> Vec<String> {
                rule[key].as_array().unwrap_or(&Vec::new()).iter().map(|v| v.as_str().unwrap().to_string()).collect()
            };
            assert!(list("resourceNames").is_empty() && rule.get("nonResourceURLs").is_none(), "{rule}");
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        for field in [&group, &resource, &verb] {
                            assert!(!field.contains('*'), "wildcard in {rule}");
                        }
                        assert!(granted.insert((scope, group.clone(), resource.clone(), verb)), "duplicate in {rule}");
                    }
                }
            }
        }
    }
    let called: BTreeSet<(Scope, String, String, String)> = KubeApi::CALLS
        .iter()
        .map(|ApiCall { scope, group, resource, verb }| {
            (*scope, group.to_string(), resource.to_string(), verb.to_string())
        })
        .collect();
    assert_eq!(called.len(), KubeApi::CALLS.len(), "each call is declared once");
    let missing: Vec<_> = called.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&called).collect();
    assert!(missing.is_empty() && extra.is_empty(), "rbac.yaml lacks {missing:?}; grants unused {extra:?}");

    // Both roles are bound, and nothing is bound to the node agent's service account.
    for (kind, role_kind) in [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")] {
        let binding = find(&documents, kind, "faultline-operator");
        assert_eq!(
            (binding["roleRef"]["kind"].as_str(), binding["roleRef"]["name"].as_str()),
            (Some(role_kind), Some("faultline-operator"))
        );
    }
    let agent_account = find(&documents, "ServiceAccount", "faultline-node");
    assert_eq!(agent_account["automountServiceAccountToken"], false);
    for binding in documents.iter().filter(|d| d["kind"].as_str().is_some_and(|k| k.ends_with("Binding"))) {
        for subject in binding["subjects"].as_array().unwrap() {
            assert_ne!(subject["name"], "faultline-node", "the node agent needs no API access: {binding}");
        }
    }
}

#[test]
fn the_node_agent_is_what_the_cluster_code_looks_for() {
    let documents = documents();
    let daemonset = find(&documents, "DaemonSet", "faultline-node");
    assert_eq!(daemonset["metadata"]["namespace"], DEFAULT_NAMESPACE);
    let template = &daemonset["spec"]["template"];
    let (label, value) = AGENT_SELECTOR;
    assert_eq!(template["metadata"]["labels"][label], value);
    assert_eq!(daemonset["spec"]["selector"]["matchLabels"][label], value);
    let spec = &template["spec"];
    assert_eq!(spec["hostPID"], true);
    assert_eq!(spec["nodeSelector"]["nvidia.com/gpu.present"], "true");
    assert!(spec["tolerations"].as_array().unwrap().iter().any(|t| t["key"] == "nvidia.com/gpu"));
    assert_eq!(
        (spec["serviceAccountName"].as_str(), spec["automountServiceAccountToken"].as_bool()),
        (Some("faultline-node"), Some(false))
    );
    assert!(spec.get("hostNetwork").is_none(), "the agent needs no host network");

    let agent = &spec["containers"].as_array().unwrap().iter().find(|c| c["name"] == AGENT_CONTAINER).expect("agent");
    assert_eq!(agent["securityContext"]["privileged"], true);
    assert!(agent.get("ports").is_none(), "the agent listens on no port");
    let volumes = spec["volumes"].as_array().unwrap();
    let host_path = |name: &str| volumes.iter().find(|v| v["name"] == name).map(|v| v["hostPath"]["path"].clone());
    let mounts = agent["volumeMounts"].as_array().unwrap();
    let mounted = |path: &str| mounts.iter().any(|m| m["mountPath"] == path);
    assert!(mounted("/dev/kmsg") && mounted("/var/lib/faultline"), "{mounts:?}");
    assert_eq!(host_path("kmsg"), Some(Value::from("/dev/kmsg")));
    assert_eq!(host_path("faultline-lib"), Some(Value::from("/var/lib/faultline")));

    let init = &spec["initContainers"][0];
    let script = init["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>().join(" ");
    for library in ["libfaultline_ucx.so", "libfaultline_cuda.so"] {
        assert!(script.contains(library), "the init container installs {library}: {script}");
    }
    assert!(script.contains("/opt/faultline/lib/") && script.contains("mv -f"), "{script}");

    // The image the manifests run provides what they use.
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    assert!(dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")) >= 2, "multi-stage");
    for needle in ["-p faultline", "-p shim-ucx", "-p shim-cuda", "/usr/local/bin/faultline", "/opt/faultline/lib/"] {
        assert!(dockerfile.contains(needle), "Dockerfile: {needle}");
    }
}

#[test]
fn the_kustomization_applies_every_manifest() {
    let text = std::fs::read_to_string(deploy().join("kustomization.yaml")).unwrap();
    let kustomization: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(kustomization["kind"], "Kustomization");
    assert_eq!(kustomization["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    let listed: BTreeSet<String> =
        kustomization["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    let present: BTreeSet<String> =
        manifests().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(listed, present);
    assert_eq!(kustomization["images"][0]["name"], "faultline", "every manifest's image can be retargeted");
}

#[test]
fn the_reaper_runs_faultline_cluster_reap_every_minute_as_the_operator() {
    let documents = documents();
    let reaper = find(&documents, "CronJob", "faultline-reaper");
    assert_eq!(reaper["metadata"]["namespace"], DEFAULT_NAMESPACE);
    assert_eq!(reaper["spec"]["schedule"], "* * * * *");
    assert_eq!(reaper["spec"]["concurrencyPolicy"], "Forbid", "two reapers never race");
    let pod = &reaper["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "faultline-operator", "the account deploy/rbac.yaml binds");
    assert_eq!(pod["automountServiceAccountToken"], true);
    let command: Vec<String> =
        pod["containers"][0]["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    assert_eq!(&command[..3], ["faultline", "cluster", "reap"]);
    // The real binary accepts exactly these arguments (clap checks them before it prints the help).
    let output = Command::new(&testkit::artifacts().faultline).args(&command[1..]).arg("--help").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
