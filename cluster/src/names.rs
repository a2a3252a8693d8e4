//! Kubernetes names, labels and selectors, checked the way the API server checks them, once for every front end:
//! the object name a fault creates, namespaces, workload and node names, and `KEY=VALUE` label selectors.

use std::collections::BTreeMap;

use super::ledger::Stamp;
use super::ClusterError;

/// The name of the object a fault creates: `faultline-<fault id>`.
pub fn object_name(stamp: &Stamp) -> Result<String, ClusterError> {
    let name = format!("faultline-{}", stamp.fault_id);
    if name.len() > 253 || !is_dns_subdomain(&name) {
        return Err(ClusterError::Usage(format!(
            "fault id {:?} does not make a valid object name ({name:?} must be lower-case letters, digits, '-' and \
             '.', at most 253 characters)",
            stamp.fault_id
        )));
    }
    Ok(name)
}

/// An equality label selector (`app=worker,tier=gpu`), the typed form of what `--selector`, `--to-selector` and the
/// dialogs take (as kube's `Selector` is of a selector string): it exists only checked ([`parse_selector`]), reads
/// as the map of its labels, and displays as it is typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(BTreeMap<String, String>);

impl std::ops::Deref for Labels {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Labels> for BTreeMap<String, String> {
    fn from(labels: Labels) -> Self {
        labels.0
    }
}

impl std::str::FromStr for Labels {
    type Err = ClusterError;

    fn from_str(text: &str) -> Result<Labels, ClusterError> {
        parse_selector(text)
    }
}

impl std::fmt::Display for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, (key, value)) in self.0.iter().enumerate() {
            write!(f, "{}{key}={value}", if index == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}

/// Parses a label selector `KEY=VALUE[,KEY=VALUE…]` (equality only, as `--selector` and `--to-selector` take it),
/// checking keys and values the way Kubernetes does.
pub fn parse_selector(text: &str) -> Result<Labels, ClusterError> {
    let bad = |why: String| ClusterError::Usage(format!("invalid label selector {text:?}: {why}"));
    if text.trim().is_empty() {
        return Err(bad("it is empty; expected KEY=VALUE[,KEY=VALUE…], e.g. app=worker".into()));
    }
    let mut selector = BTreeMap::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad("an empty KEY=VALUE between commas".into()));
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(bad(format!("{item:?} is not KEY=VALUE (only equality selectors are supported)")));
        };
        if key.ends_with('!') {
            return Err(bad(format!("{item:?}: only equality (KEY=VALUE) is supported, not !=")));
        }
        // `k==v` is kubectl's other spelling of `k=v`.
        let (key, value) = (key.trim(), value.strip_prefix('=').unwrap_or(value).trim());
        check_selector_entry(key, value).map_err(bad)?;
        if let Some(previous) = selector.insert(key.to_string(), value.to_string()) {
            if previous != value {
                return Err(bad(format!("key {key:?} is given twice, as {previous:?} and {value:?}")));
            }
        }
    }
    Ok(Labels(selector))
}

/// Checks that `namespace` can be a namespace name (a DNS-1123 label).
pub fn validate_namespace(namespace: &str) -> Result<(), ClusterError> {
    if is_dns_label(namespace) {
        Ok(())
    } else {
        Err(ClusterError::Usage(format!(
            "invalid namespace {namespace:?}: expected lower-case letters, digits and '-', starting and ending with a \
             letter or digit, at most 63 characters"
        )))
    }
}

/// Checks the name of a workload, node or service typed by a user (`what` names it in the message): not empty, and
/// a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253), except a DynamoGraphDeployment's
/// `service`, a key of its spec that may have capitals and '_' (`VllmDecodeWorker`).
pub fn check_name(what: &str, text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("give the {what}"));
    }
    let valid = if what == "service" {
        text.len() <= 253 && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    } else {
        text.len() <= 253 && is_dns_subdomain(text)
    };
    if !valid {
        return Err(format!("{text:?} is not a valid {what} (lower-case letters, digits, '-' and '.')"));
    }
    Ok(())
}

/// Checks a selector given as a map (the specs' fields are public, so not necessarily from [`parse_selector`]).
pub(crate) fn check_selector(flag: &str, selector: &BTreeMap<String, String>) -> Result<(), ClusterError> {
    if selector.is_empty() {
        return Err(ClusterError::Usage(format!(
            "{flag} is empty: give at least one KEY=VALUE (an empty selector would select every pod)"
        )));
    }
    for (key, value) in selector {
        check_selector_entry(key, value)
            .map_err(|why| ClusterError::Usage(format!("invalid {flag} {key}={value}: {why}")))?;
    }
    Ok(())
}

/// Why `key=value` cannot be a label, if it cannot.
pub(crate) fn check_selector_entry(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.len() > 253 || !is_dns_subdomain(prefix) {
            return Err(format!(
                "label key {key:?}: the prefix before '/' must be a DNS subdomain (lower-case letters, digits, '-' \
                 and '.', at most 253 characters)"
            ));
        }
    }
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?}: the name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a \
             letter or digit"
        ));
    }
    if !value.is_empty() && !is_label_name(value) {
        return Err(format!(
            "label value {value:?}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or \
             digit"
        ));
    }
    Ok(())
}

/// A label name or value: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
pub(crate) fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub(crate) fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A DNS-1123 subdomain: DNS labels joined by dots (the caller checks the length).
pub(crate) fn is_dns_subdomain(text: &str) -> bool {
    text.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let parsed = parse_selector(" app=worker , app.kubernetes.io/component=decode,tier==gpu,empty=").unwrap();
        assert_eq!(parsed.to_string(), "app=worker,app.kubernetes.io/component=decode,empty=,tier=gpu");
        assert_eq!(
            *parsed,
            BTreeMap::from([
                ("app".to_string(), "worker".to_string()),
                ("app.kubernetes.io/component".to_string(), "decode".to_string()),
                ("empty".to_string(), String::new()),
                ("tier".to_string(), "gpu".to_string()),
            ])
        );
        assert_eq!(parse_selector("a=b,a=b").unwrap().len(), 1);
        let cases = [
            ("", "it is empty"),
            ("  ", "it is empty"),
            ("app", "is not KEY=VALUE"),
            ("app!=worker", "not !="),
            ("app=worker,", "empty KEY=VALUE"),
            ("app=a,app=b", "given twice"),
            ("=worker", "label key \"\""),
            ("-app=worker", "label key"),
            ("App.Example.com/app=x", "prefix"),
            ("/app=x", "prefix"),
            ("example.com/=x", "label key"),
            ("app=-worker", "label value"),
            ("app=wor ker", "label value"),
        ];
        for (text, expected) in cases {
            let error = parse_selector(text).unwrap_err();
            assert!(matches!(error, ClusterError::Usage(_)));
            let message = error.to_string();
            assert!(message.contains("invalid label selector") && message.contains(expected), "{text:?}: {message}");
        }
        let long = format!("app={}", "v".repeat(64));
        assert!(parse_selector(&long).is_err());
        assert!(parse_selector(&format!("app={}", "v".repeat(63))).is_ok());
    }
}
