//! Every Kubernetes API call faultline makes, and nothing else: building the client from the kubeconfig, and one
//! method per call. Each method has an [`ApiCall`] constant right above it naming the RBAC rule the call needs;
//! [`KubeApi::CALLS`] collects them, and `tests/deploy_manifests.rs` requires `deploy/rbac.yaml` to grant exactly
//! those rules (no more, no wildcards).
//!
//! The emulator used by the tests (kmock) ignores label and field selectors, so every list is filtered here as
//! well; real API servers filter first, and the second filter changes nothing.

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{AttachParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tokio::io::AsyncReadExt;

use super::exec::ExecOutput;
use super::{ClusterError, DEFAULT_NAMESPACE};

/// Where an RBAC rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Cluster-scoped resources (a ClusterRole).
    Cluster,
    /// The agent's namespace (a Role there).
    AgentNamespace,
}

/// One RBAC rule a call needs: `verb` on `resource` of API group `group` in `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiCall {
    /// Where.
    pub scope: Scope,
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resource, with `/subresource` where there is one.
    pub resource: &'static str,
    /// Verb.
    pub verb: &'static str,
}

const fn call(scope: Scope, resource: &'static str, verb: &'static str) -> ApiCall {
    ApiCall { scope, group: "", resource, verb }
}

/// The label every node-agent pod carries (deploy/daemonset.yaml).
pub const AGENT_SELECTOR: (&str, &str) = ("app.kubernetes.io/name", "faultline-node");

/// The agent pod's container that runs `faultline`.
pub const AGENT_CONTAINER: &str = "agent";

/// How to build the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// kubeconfig context (default: the current one, or the in-cluster configuration when there is no kubeconfig).
    pub context: Option<String>,
    /// The agent's namespace (default [`DEFAULT_NAMESPACE`]).
    pub namespace: Option<String>,
}

/// A connected client and the agent's namespace.
#[derive(Clone)]
pub struct KubeApi {
    client: Client,
    namespace: String,
    server: String,
}

impl KubeApi {
    /// Every RBAC rule the calls below need.
    pub const CALLS: &'static [ApiCall] = &[
        Self::LIST_NODES,
        Self::GET_NODE,
        Self::LIST_PODS,
        Self::EXEC_GET,
        Self::EXEC_CREATE,
        Self::CREATE_EVENT,
        Self::LIST_EVENTS,
    ];

    /// Builds a client like kubectl does: `$KUBECONFIG` or `~/.kube/config` and its current context (or
    /// `options.context`); without a kubeconfig, the in-cluster service account.
    pub async fn connect(options: &ConnectOptions) -> Result<KubeApi, ClusterError> {
        let config_error = |message: String| ClusterError::Config { context: options.context.clone(), message };
        let config = match &options.context {
            Some(context) => {
                let kubeconfig = Kubeconfig::read().map_err(|e| config_error(e.to_string()))?;
                if !kubeconfig.contexts.iter().any(|c| &c.name == context) {
                    let known: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
                    return Err(config_error(format!("no context {context} in the kubeconfig (contexts: {known:?})")));
                }
                let options = KubeConfigOptions { context: Some(context.clone()), ..KubeConfigOptions::default() };
                Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| config_error(e.to_string()))?
            }
            None => Config::infer().await.map_err(|e| config_error(e.to_string()))?,
        };
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| config_error(e.to_string()))?;
        let namespace = options.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        Ok(KubeApi { client, namespace, server })
    }

    /// An API over an existing client.
    pub fn from_client(client: Client, namespace: &str, server: &str) -> KubeApi {
        KubeApi { client, namespace: namespace.to_string(), server: server.to_string() }
    }

    /// The agent's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn error(&self, action: String, error: kube::Error) -> ClusterError {
        match error {
            kube::Error::Api(status) if status.code == 403 => {
                ClusterError::Forbidden { action, message: status.message.clone() }
            }
            kube::Error::Api(status) => {
                ClusterError::Api { action, code: status.code, message: status.message.clone() }
            }
            other => ClusterError::Transport { action, server: self.server.clone(), message: other.to_string() },
        }
    }

    const LIST_NODES: ApiCall = call(Scope::Cluster, "nodes", "list");

    /// Nodes carrying `label=value`.
    pub async fn list_nodes(&self, label: &str, value: &str) -> Result<Vec<Node>, ClusterError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&format!("{label}={value}"));
        let list = nodes.list(&params).await.map_err(|e| self.error("list nodes".into(), e))?;
        Ok(list.items.into_iter().filter(|n| has_label(&n.metadata.labels, label, value)).collect())
    }

    const GET_NODE: ApiCall = call(Scope::Cluster, "nodes", "get");

    /// One node.
    pub async fn get_node(&self, name: &str) -> Result<Node, ClusterError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes.get(name).await.map_err(|e| match e {
            kube::Error::Api(status) if status.code == 404 => ClusterError::NodeNotFound { node: name.to_string() },
            other => self.error(format!("get node {name}"), other),
        })
    }

    const LIST_PODS: ApiCall = call(Scope::AgentNamespace, "pods", "list");

    /// The node-agent pods (all nodes, or the one on `node`).
    pub async fn list_agent_pods(&self, node: Option<&str>) -> Result<Vec<Pod>, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let (label, value) = AGENT_SELECTOR;
        let mut params = ListParams::default().labels(&format!("{label}={value}"));
        if let Some(node) = node {
            params = params.fields(&format!("spec.nodeName={node}"));
        }
        let action = format!("list pods in namespace {}", self.namespace);
        let list = pods.list(&params).await.map_err(|e| self.error(action, e))?;
        Ok(list
            .items
            .into_iter()
            .filter(|p| has_label(&p.metadata.labels, label, value))
            .filter(|p| node.is_none() || p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == node)
            .collect())
    }

    /// WebSocket exec starts with a GET: authorised as `get` on pods/exec by every API server, and additionally as
    /// `create` since Kubernetes 1.35 (KEP-4006); both are needed to work across versions.
    const EXEC_GET: ApiCall = call(Scope::AgentNamespace, "pods/exec", "get");
    const EXEC_CREATE: ApiCall = call(Scope::AgentNamespace, "pods/exec", "create");

    /// Runs `command` in `container` of agent pod `pod` and collects its output and exit status.
    pub async fn exec_in_pod(
        &self,
        pod: &str,
        container: &str,
        command: &[String],
    ) -> Result<ExecOutput, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
        let action = format!("exec into pod {pod} in namespace {}", self.namespace);
        let mut attached =
            pods.exec(pod, command.to_vec(), &params).await.map_err(|e| self.error(action.clone(), e))?;
        let stdout = attached.stdout();
        let stderr = attached.stderr();
        let status = attached.take_status();
        let read = |stream: Option<tokio::io::ReadHalf<tokio::io::SimplexStream>>| async move {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text).await;
            }
            text
        };
        let (stdout, stderr) = tokio::join!(read(stdout), read(stderr));
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        attached.join().await.map_err(|e| ClusterError::Transport {
            action,
            server: self.server.clone(),
            message: e.to_string(),
        })?;
        Ok(ExecOutput::from_status(stdout, stderr, status.as_ref()))
    }

    const CREATE_EVENT: ApiCall = call(Scope::AgentNamespace, "events", "create");

    /// Records `event` (in the agent's namespace).
    pub async fn create_event(&self, event: &Event) -> Result<Event, ClusterError> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let action = format!("create events in namespace {}", self.namespace);
        events.create(&PostParams::default(), event).await.map_err(|e| self.error(action, e))
    }

    const LIST_EVENTS: ApiCall = call(Scope::AgentNamespace, "events", "list");

    /// faultline's events with `reason` (in the agent's namespace).
    pub async fn list_events(&self, reason: &str) -> Result<Vec<Event>, ClusterError> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = ListParams::default().fields(&format!("reason={reason}"));
        let action = format!("list events in namespace {}", self.namespace);
        let list = events.list(&params).await.map_err(|e| self.error(action, e))?;
        Ok(list.items.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).collect())
    }
}

fn has_label(labels: &Option<std::collections::BTreeMap<String, String>>, key: &str, value: &str) -> bool {
    labels.as_ref().and_then(|l| l.get(key)).is_some_and(|v| v == value)
}
