//! Paths in a JSON value: a step is an object key or the list item with that `name` (containers, env, volumes,
//! mounts), so a path survives reordering; looked up, set (making what is missing on the way) and removed.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A path step: an object key, or the list item with that `name` (containers, env, volumes, mounts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Seg {
    Key(String),
    Named { name: String },
}

pub(super) fn keys(path: &[&str]) -> Vec<Seg> {
    path.iter().map(|k| Seg::Key(k.to_string())).collect()
}

pub(super) fn join(path: &[Seg], more: &[&str]) -> Vec<Seg> {
    let mut joined = path.to_vec();
    joined.extend(keys(more));
    joined
}

pub(super) fn named(list: &[Seg], name: &str) -> Vec<Seg> {
    let mut path = list.to_vec();
    path.push(Seg::Named { name: name.to_string() });
    path
}

/// A JSON pointer for messages (`/spec/template/spec/containers/worker/env`: list items by name).
pub(super) fn pointer(path: &[Seg]) -> String {
    path.iter()
        .map(|seg| match seg {
            Seg::Key(key) | Seg::Named { name: key } => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
        })
        .collect()
}

fn child<'a>(value: &'a Value, seg: &Seg) -> Option<&'a Value> {
    match seg {
        Seg::Key(key) => value.as_object()?.get(key),
        Seg::Named { name } => value.as_array()?.iter().find(|item| has_name(item, name)),
    }
}

pub(super) fn child_mut<'a>(value: &'a mut Value, seg: &Seg) -> Option<&'a mut Value> {
    match seg {
        Seg::Key(key) => value.as_object_mut()?.get_mut(key),
        Seg::Named { name } => value.as_array_mut()?.iter_mut().find(|item| has_name(item, name)),
    }
}

pub(super) fn has_name(item: &Value, name: &str) -> bool {
    item.get("name").and_then(Value::as_str) == Some(name)
}

pub(super) fn lookup<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(root, child)
}

pub(super) fn lookup_mut<'a>(root: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, child_mut)
}

/// Sets `path` (an item: replaced where it is, or appended), making missing objects and lists on the way; a path
/// through a list item that is gone is skipped (its container was removed since: nothing to restore into).
pub(super) fn put(root: &mut Value, path: &[Seg], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut at = root;
    for (i, seg) in parents.iter().enumerate() {
        let empty = match path[i + 1] {
            Seg::Key(_) => json!({}),
            Seg::Named { .. } => json!([]),
        };
        at = match seg {
            Seg::Key(key) => {
                let Some(map) = at.as_object_mut() else { return };
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                if slot.is_null() {
                    *slot = empty;
                }
                slot
            }
            Seg::Named { .. } => match child_mut(at, seg) {
                Some(item) => item,
                None => return,
            },
        };
    }
    match last {
        Seg::Key(key) => {
            if let Some(map) = at.as_object_mut() {
                map.insert(key.clone(), value);
            }
        }
        Seg::Named { name } => {
            if let Some(list) = at.as_array_mut() {
                match list.iter_mut().find(|item| has_name(item, name)) {
                    Some(item) => *item = value,
                    None => list.push(value),
                }
            }
        }
    }
}

/// Removes `path`, keeping the order of what remains (like the API server, and unlike `Map::remove`).
pub(super) fn remove(root: &mut Value, path: &[Seg]) {
    let Some((last, parents)) = path.split_last() else { return };
    let Some(parent) = lookup_mut(root, parents) else { return };
    match (last, parent) {
        (Seg::Key(key), Value::Object(map)) => {
            map.shift_remove(key);
        }
        (Seg::Named { name }, Value::Array(list)) => list.retain(|item| !has_name(item, name)),
        _ => {}
    }
}
