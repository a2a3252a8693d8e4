//! `faultline cluster partition create`: builds the NetworkPolicy or Chaos Mesh NetworkChaos
//! ([`super::partition`]) and creates it, stamped for the ledger. Removal is the ledger's (`recover`, `reap`).

use serde::Serialize;

use super::kube_api::{KubeApi, ObjectType};
use super::ledger::{FaultKind, Stamp};
use super::partition::{self, ChaosSpec, PartitionSpec};
use super::ClusterError;

/// A partition as created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Created {
    /// The fault id.
    pub fault_id: String,
    /// The object's kind.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// When it ends.
    pub expires_at: Option<String>,
    /// The object as sent.
    pub object: serde_json::Value,
}

/// The pod address ranges of every node (`spec.podCIDRs`, or `spec.podCIDR` on older clusters).
pub async fn pod_cidrs(api: &KubeApi) -> Result<Vec<String>, ClusterError> {
    let mut cidrs: Vec<String> = api
        .list_all_nodes()
        .await?
        .into_iter()
        .filter_map(|node| node.spec)
        .flat_map(|spec| spec.pod_cidrs.unwrap_or_default().into_iter().chain(spec.pod_cidr))
        .collect();
    cidrs.sort();
    cidrs.dedup();
    Ok(cidrs)
}

/// Creates the NetworkPolicy for `spec` (whose `pod_cidrs`, when empty, are read from the nodes).
pub async fn create_partition(api: &KubeApi, spec: &PartitionSpec, stamp: &Stamp) -> Result<Created, ClusterError> {
    let stamp = stamp.with_kind(FaultKind::Partition);
    let mut spec = spec.clone();
    if spec.pod_cidrs.is_empty() {
        spec.pod_cidrs = pod_cidrs(api).await?;
    }
    let policy = partition::network_policy(&spec, &stamp)?;
    let body = serde_json::to_value(&policy).map_err(|e| ClusterError::Usage(e.to_string()))?;
    create(api, ObjectType::NETWORK_POLICY, &spec.namespace, body, &stamp).await
}

/// Creates the Chaos Mesh NetworkChaos for `spec` (a clear error when Chaos Mesh is not installed).
pub async fn create_chaos(api: &KubeApi, spec: &ChaosSpec, stamp: &Stamp) -> Result<Created, ClusterError> {
    let stamp = stamp.with_kind(FaultKind::Chaos);
    let body = partition::network_chaos(spec, &stamp)?;
    // Ask first, so a missing CRD is reported as such (a create on an unknown type is a bare 404).
    api.list_managed(ObjectType::NETWORK_CHAOS, Some(&spec.namespace)).await?;
    create(api, ObjectType::NETWORK_CHAOS, &spec.namespace, body, &stamp).await
}

async fn create(
    api: &KubeApi,
    object_type: ObjectType,
    namespace: &str,
    mut body: serde_json::Value,
    stamp: &Stamp,
) -> Result<Created, ClusterError> {
    body["apiVersion"] = object_type.api_version().into();
    body["kind"] = object_type.kind.into();
    let created = api.create(object_type, namespace, &body).await?;
    Ok(Created {
        fault_id: stamp.fault_id.clone(),
        kind: object_type.kind,
        namespace: namespace.to_string(),
        name: created["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        expires_at: stamp.expires_at.map(|t| t.to_string()),
        object: created,
    })
}
