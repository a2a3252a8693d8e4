//! The partition objects faultline generates are what the API server accepts: every Chaos Mesh NetworkChaos
//! (each action, with and without a target, each direction) validates against the openAPIV3Schema of Chaos Mesh's
//! own CRD (vendored in tests/fixtures/chaos-mesh/), read as strictly as the API server's strict field validation;
//! every NetworkPolicy preset passes `kubernetes-validate --strict`.

use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::kubernetes_validate;

use faultline::cluster::ledger::{FaultKind, Stamp};
use faultline::cluster::partition::{
    network_chaos, network_policy, parse_selector, ChaosAction, ChaosDirection, ChaosParams, ChaosSpec, Labels,
    PartitionSpec, Preset, CHAOS_MESH_GROUP, CHAOS_MESH_VERSION, NETWORK_CHAOS_KIND, NETWORK_CHAOS_PLURAL,
};
use faultline::cluster::ClusterError;
use serde::Deserialize;
use serde_json::{json, Value};

fn crd_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chaos-mesh/networkchaos-crd.yaml")
}

/// The vendored CRD's schema for the version faultline writes, after checking that the CRD is the one the
/// constants name.
fn crd_schema() -> Value {
    let text = std::fs::read_to_string(crd_path()).unwrap();
    let crd = Value::deserialize(serde_norway::Deserializer::from_str(&text)).unwrap();
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["spec"]["group"], CHAOS_MESH_GROUP);
    assert_eq!(crd["spec"]["names"]["kind"], NETWORK_CHAOS_KIND);
    assert_eq!(crd["spec"]["names"]["plural"], NETWORK_CHAOS_PLURAL);
    assert_eq!(crd["metadata"]["name"], format!("{NETWORK_CHAOS_PLURAL}.{CHAOS_MESH_GROUP}"));
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == CHAOS_MESH_VERSION)
        .unwrap_or_else(|| panic!("the CRD serves no {CHAOS_MESH_VERSION}"));
    assert_eq!(version["served"], true);
    version["schema"]["openAPIV3Schema"].clone()
}

/// Reads the schema the way the API server applies it with strict field validation (`kubectl apply
/// --validate=strict`, the default since Kubernetes 1.25 warns, strict rejects): a field the schema does not
/// declare is an error rather than silently pruned, and `format: int32` / `int64` bound the number.
fn strict(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else { return };
    if object.contains_key("properties") && !object.contains_key("additionalProperties") {
        object.insert("additionalProperties".into(), false.into());
    }
    match object.get("format").and_then(Value::as_str) {
        Some("int32") => {
            object.insert("maximum".into(), i32::MAX.into());
            object.entry("minimum").or_insert(i32::MIN.into());
        }
        Some("int64") => {
            object.insert("maximum".into(), i64::MAX.into());
            object.entry("minimum").or_insert(i64::MIN.into());
        }
        _ => {}
    }
    for value in object.values_mut() {
        match value {
            Value::Object(_) => strict(value),
            Value::Array(items) => items.iter_mut().for_each(strict),
            _ => {}
        }
    }
}

fn validator() -> jsonschema::Validator {
    let mut schema = crd_schema();
    strict(&mut schema);
    // OpenAPI 3.0 schemas are JSON Schema draft 4 plus annotations (description, format, default).
    jsonschema::draft4::new(&schema).expect("the CRD schema compiles")
}

fn errors(validator: &jsonschema::Validator, object: &Value) -> Vec<String> {
    validator.iter_errors(object).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn stamp(kind: FaultKind, n: usize) -> Stamp {
    let now = "2026-11-22T10:00:00Z".parse().unwrap();
    Stamp::at(kind, format!("fl-{n:012x}"), now, Some(Duration::from_secs(600)), "ci@test".into())
}

fn labels(text: &str) -> Labels {
    parse_selector(text).unwrap()
}

fn params(pairs: &[(&str, &str)]) -> ChaosParams {
    let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    ChaosParams {
        loss: value("loss"),
        correlation: value("correlation"),
        latency: value("latency"),
        jitter: value("jitter"),
        rate: value("rate"),
        limit: value("limit"),
        buffer: value("buffer"),
        peakrate: value("peakrate"),
        minburst: value("minburst"),
    }
}

/// Every action, with its parameters minimal and complete.
fn actions() -> Vec<ChaosAction> {
    let cases: [(&str, &[(&str, &str)]); 8] = [
        ("partition", &[]),
        ("loss", &[("loss", "25")]),
        ("loss", &[("loss", "0.5"), ("correlation", "50")]),
        ("delay", &[("latency", "100ms")]),
        ("delay", &[("latency", "1.5s"), ("jitter", "10ms"), ("correlation", "25")]),
        ("bandwidth", &[("rate", "1mbps"), ("limit", "20971520"), ("buffer", "10000")]),
        (
            "bandwidth",
            &[
                ("rate", "10kbps"),
                ("limit", "1"),
                ("buffer", "2147483647"),
                ("peakrate", "2000000"),
                ("minburst", "1500"),
            ],
        ),
        ("bandwidth", &[("rate", "1gbps"), ("limit", "100"), ("buffer", "100"), ("minburst", "0")]),
    ];
    cases.iter().map(|(action, pairs)| ChaosAction::from_params(action, &params(pairs)).unwrap()).collect()
}

/// Every NetworkChaos faultline can generate from [`actions`], each direction, with and without a target (and
/// with and without a duration).
fn generated() -> Vec<Value> {
    let mut objects = Vec::new();
    for action in actions() {
        for direction in ChaosDirection::ALL {
            for target in [None, Some(labels("app=frontend,tier=web"))] {
                for duration in [Some(Duration::from_secs(600)), None] {
                    let spec = ChaosSpec {
                        namespace: "dynamo".into(),
                        selector: labels("app=worker,app.kubernetes.io/component=decode"),
                        action: action.clone(),
                        direction,
                        target: target.clone(),
                        duration,
                    };
                    match network_chaos(&spec, &stamp(FaultKind::Chaos, objects.len())) {
                        Ok(object) => objects.push(object),
                        // Chaos Mesh defines from/both relative to a target: refused before any object exists.
                        Err(ClusterError::Usage(message)) => {
                            assert!(target.is_none() && direction != ChaosDirection::To, "{message}");
                            assert!(message.contains("needs --to-selector"), "{message}");
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
            }
        }
    }
    objects
}

#[test]
fn every_generated_network_chaos_matches_the_chaos_mesh_crd() {
    let validator = validator();
    let objects = generated();
    // 8 actions × (to without a target + 3 directions with one) × 2 durations.
    assert_eq!(objects.len(), 8 * 4 * 2);
    for object in &objects {
        let problems = errors(&validator, object);
        assert!(problems.is_empty(), "{problems:#?}\n{object:#}");
    }
    // Every action, direction and parameter block really was covered.
    for key in ["partition", "loss", "delay", "bandwidth"] {
        assert!(objects.iter().any(|o| o["spec"]["action"] == key), "{key}");
    }
    for key in ["to", "from", "both"] {
        assert!(objects.iter().any(|o| o["spec"]["direction"] == key && o["spec"].get("target").is_some()));
    }
    for block in ["loss", "delay", "bandwidth"] {
        assert!(objects.iter().any(|o| o["spec"][block].is_object()), "{block}");
    }
}

#[test]
fn the_schema_check_rejects_what_chaos_mesh_would() {
    let validator = validator();
    let base = |action: &str, pairs: &[(&str, &str)]| {
        let spec = ChaosSpec {
            namespace: "dynamo".into(),
            selector: labels("app=worker"),
            action: ChaosAction::from_params(action, &params(pairs)).unwrap(),
            direction: ChaosDirection::Both,
            target: Some(labels("app=frontend")),
            duration: Some(Duration::from_secs(60)),
        };
        network_chaos(&spec, &stamp(FaultKind::Chaos, 1)).unwrap()
    };
    let loss = base("loss", &[("loss", "25"), ("correlation", "50")]);
    let bandwidth = base("bandwidth", &[("rate", "1mbps"), ("limit", "20971520"), ("buffer", "10000")]);
    assert!(errors(&validator, &loss).is_empty() && errors(&validator, &bandwidth).is_empty());

    // (what is wrong, the valid object it starts from, how it is broken)
    type Breakage<'a> = (&'a str, &'a Value, fn(&mut Value));
    let broken: [Breakage; 11] = [
        ("misspelled action", &loss, |o| o["spec"]["action"] = json!("los")),
        ("loss as a number", &loss, |o| o["spec"]["loss"]["loss"] = json!(25)),
        ("correlation as a number", &loss, |o| o["spec"]["loss"]["correlation"] = json!(50)),
        ("unknown direction", &loss, |o| o["spec"]["direction"] = json!("sideways")),
        ("unknown mode", &loss, |o| o["spec"]["mode"] = json!("every")),
        ("misspelled parameter block", &loss, |o| {
            let block = o["spec"].as_object_mut().unwrap().remove("loss").unwrap();
            o["spec"]["lost"] = block;
        }),
        ("target without mode", &loss, |o| {
            o["spec"]["target"].as_object_mut().unwrap().remove("mode");
        }),
        ("label value as a number", &loss, |o| o["spec"]["selector"]["labelSelectors"]["app"] = json!(5)),
        ("bandwidth without limit", &bandwidth, |o| {
            o["spec"]["bandwidth"].as_object_mut().unwrap().remove("limit");
        }),
        ("limit as a string", &bandwidth, |o| o["spec"]["bandwidth"]["limit"] = json!("20971520")),
        ("limit beyond int32", &bandwidth, |o| o["spec"]["bandwidth"]["limit"] = json!(2_147_483_648_u64)),
    ];
    for (what, valid, breaks) in broken {
        let mut object = valid.clone();
        breaks(&mut object);
        assert!(!errors(&validator, &object).is_empty(), "{what} passed the schema:\n{object:#}");
    }
    let mut no_spec = loss.clone();
    no_spec.as_object_mut().unwrap().remove("spec");
    assert!(!errors(&validator, &no_spec).is_empty(), "spec is required");
}

/// Every valid combination of preset, directions, blocks and target.
fn partition_specs() -> Vec<PartitionSpec> {
    let mut specs = Vec::new();
    for preset in Preset::ALL {
        for (ingress, egress) in [(false, false), (true, false), (false, true), (true, true)] {
            for (block_nats, block_dns) in [(false, false), (true, false), (false, true), (true, true)] {
                for to_selector in [None, Some(labels("app=frontend,tier=web"))] {
                    specs.push(PartitionSpec {
                        namespace: "dynamo".into(),
                        selector: labels("app=worker,app.kubernetes.io/component=decode"),
                        preset,
                        ingress,
                        egress,
                        block_nats,
                        block_dns,
                        to_selector,
                        pod_cidrs: vec!["10.244.0.0/16".into(), "fd00:10:244::/56".into()],
                    });
                }
            }
        }
    }
    specs
}

#[test]
fn every_network_policy_passes_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut names = Vec::new();
    for spec in partition_specs() {
        let Ok(policy) = network_policy(&spec, &stamp(FaultKind::Partition, names.len())) else { continue };
        let name = policy.metadata.name.clone().unwrap();
        // JSON, as the API receives it (serde_norway leaves RFC 3339 strings unquoted, which YAML 1.1 readers
        // such as kubernetes-validate's take for timestamps).
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
        files.push(path);
        names.push(name);
    }
    // 4 presets × 4 directions × 4 blocks × 2 targets, less what the presets refuse (frontend-worker without a
    // target; worker-nats with a target or --ingress; blocks with --ingress alone).
    assert_eq!(names.len(), 73);

    let output = kubernetes_validate().arg("--strict").args(&files).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "kubernetes-validate --strict failed:\n{report}");
    for name in &names {
        assert!(report.contains(&format!("passed for resource networkpolicy/{name} ")), "{name}: {report}");
    }

    // A misspelled field in the same output fails, so the pass above means something.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("\"podSelector\":"), "{text}");
    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, text.replacen("\"podSelector\":", "\"podSelectr\":", 1)).unwrap();
    let output = kubernetes_validate().arg("--strict").arg(&typo).output().unwrap();
    assert!(!output.status.success(), "an unknown field must fail --strict");
}
