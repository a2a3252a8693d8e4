//! The RFC 7386 JSON merge patch between two versions of an object: what is sent to the API server.

use serde_json::{Map, Value};

/// The RFC 7386 JSON merge patch that turns `from` into `to`: changed keys of objects, recursively; `null` for
/// keys `to` lacks; lists and other values whole. A merge patch cannot set a value to `null` (it means "remove"),
/// so a `null` inside `to` comes out removed.
pub fn merge_patch_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => Value::Object(object_diff(from, to)),
        _ => to.clone(),
    }
}

fn object_diff(from: &Map<String, Value>, to: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for key in from.keys().filter(|key| !to.contains_key(*key)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, new) in to {
        match (from.get(key), new) {
            (Some(old), new) if old == new => {}
            (Some(Value::Object(old)), Value::Object(new)) => {
                patch.insert(key.clone(), Value::Object(object_diff(old, new)));
            }
            _ => {
                patch.insert(key.clone(), new.clone());
            }
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::shim_rollout::fixtures::merge;

    #[test]
    fn merge_patch_diff_and_the_reference_merge_agree_with_rfc_7386() {
        // RFC 7386 appendix A, a selection.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ] {
            assert_eq!(merge(&target, &patch), result, "{target} + {patch}");
        }
        let from = json!({ "a": 1, "b": { "c": [1, 2], "d": "x", "e": { "f": 1 } }, "g": 3 });
        let to = json!({ "a": 1, "b": { "c": [1], "e": { "f": 1 }, "h": {} }, "i": [] });
        let patch = merge_patch_diff(&from, &to);
        assert_eq!(patch, json!({ "g": null, "b": { "d": null, "c": [1], "h": {} }, "i": [] }));
        assert_eq!(merge(&from, &patch), to);
        assert_eq!(merge_patch_diff(&from, &from), json!({}));
    }
}
