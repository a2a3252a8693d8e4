//! Every Kubernetes API call faultline makes, and nothing else: building the client from the kubeconfig, and one
//! method per call. Each method has an [`ApiCall`] constant right above it naming the RBAC rule the call needs;
//! [`KubeApi::CALLS`] collects them, and `tests/deploy_manifests.rs` requires `deploy/rbac.yaml` to grant exactly
//! those rules (no more, no wildcards).
//!
//! The emulator used by the tests (kmock) ignores label and field selectors, so every list is filtered here as
//! well; real API servers filter first, and the second filter changes nothing.

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{ApiResource, AttachParams, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tokio::io::AsyncReadExt;

use super::exec::ExecOutput;
use super::{ledger, ClusterError, DEFAULT_NAMESPACE};

/// Where an RBAC rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The ClusterRole: cluster-scoped resources, and namespaced ones in any namespace (faults go where the
    /// workloads are).
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

const fn call_in(scope: Scope, group: &'static str, resource: &'static str, verb: &'static str) -> ApiCall {
    ApiCall { scope, group, resource, verb }
}

/// A kind of object faultline creates, changes or lists through the dynamic API: its group, version, kind and
/// plural, and whether it lives in namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectType {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
}

impl ObjectType {
    /// `networking.k8s.io/v1` NetworkPolicy.
    pub const NETWORK_POLICY: ObjectType =
        ObjectType { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies" };
    /// Chaos Mesh `chaos-mesh.org/v1alpha1` NetworkChaos (only where its CRD is installed).
    pub const NETWORK_CHAOS: ObjectType =
        ObjectType { group: "chaos-mesh.org", version: "v1alpha1", kind: "NetworkChaos", plural: "networkchaos" };
    /// `apps/v1` Deployment.
    pub const DEPLOYMENT: ObjectType =
        ObjectType { group: "apps", version: "v1", kind: "Deployment", plural: "deployments" };
    /// `apps/v1` StatefulSet.
    pub const STATEFUL_SET: ObjectType =
        ObjectType { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets" };
    /// NVIDIA Dynamo's `nvidia.com/v1alpha1` DynamoGraphDeployment (only where its CRD is installed).
    pub const DYNAMO_GRAPH_DEPLOYMENT: ObjectType = ObjectType {
        group: "nvidia.com",
        version: "v1alpha1",
        kind: "DynamoGraphDeployment",
        plural: "dynamographdeployments",
    };
    /// `v1` ConfigMap (the ledger record of an armed node, in the agent's namespace).
    pub const CONFIG_MAP: ObjectType = ObjectType { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" };

    /// `group/version` (or `version` for core).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_string(),
            version: self.version.to_string(),
            api_version: self.api_version(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }

    /// Whether this type comes from a CustomResourceDefinition that may be missing.
    pub fn is_custom(&self) -> bool {
        matches!(self.group, "chaos-mesh.org" | "nvidia.com")
    }
}

/// What the dynamic calls below may do, per type: the RBAC rules are declared per (type, verb).
const fn rule(object: ObjectType, verb: &'static str) -> ApiCall {
    call_in(Scope::Cluster, object.group, object.plural, verb)
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
        Self::LIST_ALL_PODS,
        rule(ObjectType::NETWORK_POLICY, "create"),
        rule(ObjectType::NETWORK_POLICY, "list"),
        rule(ObjectType::NETWORK_POLICY, "delete"),
        rule(ObjectType::NETWORK_CHAOS, "create"),
        rule(ObjectType::NETWORK_CHAOS, "list"),
        rule(ObjectType::NETWORK_CHAOS, "delete"),
        rule(ObjectType::DEPLOYMENT, "get"),
        rule(ObjectType::DEPLOYMENT, "list"),
        rule(ObjectType::DEPLOYMENT, "patch"),
        rule(ObjectType::STATEFUL_SET, "get"),
        rule(ObjectType::STATEFUL_SET, "list"),
        rule(ObjectType::STATEFUL_SET, "patch"),
        rule(ObjectType::DYNAMO_GRAPH_DEPLOYMENT, "get"),
        rule(ObjectType::DYNAMO_GRAPH_DEPLOYMENT, "list"),
        rule(ObjectType::DYNAMO_GRAPH_DEPLOYMENT, "patch"),
        Self::CREATE_CONFIG_MAP,
        Self::LIST_CONFIG_MAPS,
        Self::DELETE_CONFIG_MAP,
    ];

    /// The verbs [`KubeApi::create`], [`KubeApi::list_managed`], [`KubeApi::get`], [`KubeApi::patch`] and
    /// [`KubeApi::delete`] may use on each type, as declared in [`KubeApi::CALLS`].
    fn allowed(object: ObjectType, verb: &str) -> bool {
        Self::CALLS.iter().any(|c| c.group == object.group && c.resource == object.plural && c.verb == verb)
    }

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

    /// An object the API server returned, as JSON; one that cannot be is an answer that is not Kubernetes.
    fn json(&self, action: &str, object: DynamicObject) -> Result<serde_json::Value, ClusterError> {
        serde_json::to_value(object).map_err(|e| ClusterError::Transport {
            action: action.to_string(),
            server: self.server.clone(),
            message: format!("the answer cannot be represented as JSON: {e}"),
        })
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

    /// Every node (the partition's pod CIDRs come from all of them).
    pub async fn list_all_nodes(&self) -> Result<Vec<Node>, ClusterError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let list = nodes.list(&ListParams::default()).await.map_err(|e| self.error("list nodes".into(), e))?;
        Ok(list.items)
    }

    /// The namespace of the kubeconfig context (`default` when it names none), for workloads and partitions when
    /// `--namespace` is not given — as kubectl does.
    pub fn context_namespace(&self) -> &str {
        self.client.default_namespace()
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

    /// Starts `command` in `pod` with its standard input and output kept open: a long-lived session (the node
    /// agent's `faultline node watch`). Standard error is not read (the session reports over standard output).
    pub async fn exec_session(
        &self,
        pod: &str,
        container: &str,
        command: &[String],
    ) -> Result<ExecSession, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = AttachParams::default().container(container).stdin(true).stdout(true).stderr(false);
        let action = format!("exec into pod {pod} in namespace {}", self.namespace);
        let mut attached = pods.exec(pod, command.to_vec(), &params).await.map_err(|e| self.error(action, e))?;
        let (Some(stdin), Some(stdout)) = (attached.stdin(), attached.stdout()) else {
            return Err(ClusterError::Transport {
                action: format!("open a session with pod {pod}"),
                server: self.server.clone(),
                message: "the exec stream has no standard input or output".to_string(),
            });
        };
        Ok(ExecSession { stdin: Some(stdin), stdout: tokio::io::BufReader::new(stdout), pending: Vec::new(), attached })
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

    const LIST_ALL_PODS: ApiCall = call(Scope::Cluster, "pods", "list");

    /// Pods in `namespace` (all namespaces when `None`) on `node` (any node when `None`).
    pub async fn list_pods(&self, namespace: Option<&str>, node: Option<&str>) -> Result<Vec<Pod>, ClusterError> {
        let pods: Api<Pod> = match namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        };
        let mut params = ListParams::default();
        if let Some(node) = node {
            params = params.fields(&format!("spec.nodeName={node}"));
        }
        let action =
            format!("list pods in {}", namespace.map_or("all namespaces".to_string(), |n| format!("namespace {n}")));
        let list = pods.list(&params).await.map_err(|e| self.error(action, e))?;
        Ok(list
            .items
            .into_iter()
            .filter(|p| node.is_none() || p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == node)
            .collect())
    }

    const CREATE_CONFIG_MAP: ApiCall = call(Scope::AgentNamespace, "configmaps", "create");
    const LIST_CONFIG_MAPS: ApiCall = call(Scope::AgentNamespace, "configmaps", "list");
    const DELETE_CONFIG_MAP: ApiCall = call(Scope::AgentNamespace, "configmaps", "delete");

    fn dynamic(&self, object: ObjectType, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = object.resource();
        match namespace {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    fn checked(&self, object: ObjectType, verb: &str, namespace: &str) -> Result<(), ClusterError> {
        // ConfigMaps are only ever faultline's own records in the agent's namespace (the Role grants no more).
        let in_scope = object != ObjectType::CONFIG_MAP || namespace == self.namespace;
        let allowed = if object == ObjectType::CONFIG_MAP {
            Self::CALLS.iter().any(|c| c.scope == Scope::AgentNamespace && c.resource == "configmaps" && c.verb == verb)
        } else {
            Self::allowed(object, verb)
        };
        if allowed && in_scope {
            Ok(())
        } else {
            Err(ClusterError::Usage(format!(
                "faultline does not {verb} {} in namespace {namespace} (not in its RBAC rules)",
                object.plural
            )))
        }
    }

    fn object_error(&self, object: ObjectType, action: String, error: kube::Error) -> ClusterError {
        match error {
            // A custom resource whose CRD is missing answers 404 on the collection.
            kube::Error::Api(status) if status.code == 404 && object.is_custom() => {
                ClusterError::MissingCrd { kind: object.kind, group: object.group, message: status.message.clone() }
            }
            other => self.error(action, other),
        }
    }

    /// Creates `body` (an object of type `object`) in `namespace`.
    pub async fn create(
        &self,
        object: ObjectType,
        namespace: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClusterError> {
        self.checked(object, "create", namespace)?;
        let api = self.dynamic(object, Some(namespace));
        let body: DynamicObject = serde_json::from_value(body.clone())
            .map_err(|e| ClusterError::Usage(format!("not a {} object: {e}", object.kind)))?;
        let action = format!("create {} in namespace {namespace}", object.plural);
        let created = api
            .create(&PostParams::default(), &body)
            .await
            .map_err(|e| self.object_error(object, action.clone(), e))?;
        self.json(&action, created)
    }

    /// Every object of type `object` that faultline manages (label `app.kubernetes.io/managed-by=faultline`), in
    /// `namespace` or all namespaces.
    pub async fn list_managed(
        &self,
        object: ObjectType,
        namespace: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, ClusterError> {
        self.checked(object, "list", namespace.unwrap_or(&self.namespace))?;
        let api = self.dynamic(object, namespace);
        let params = ListParams::default().labels(&ledger::managed_selector());
        let place = namespace.map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
        let action = format!("list {} in {place}", object.plural);
        let list = api.list(&params).await.map_err(|e| self.object_error(object, action.clone(), e))?;
        let (key, value) = ledger::MANAGED_BY;
        list.items
            .into_iter()
            .filter(|o| has_label(&o.metadata.labels, key, value))
            .map(|o| self.json(&action, o))
            .collect()
    }

    /// One object (`None` when it does not exist).
    pub async fn get(
        &self,
        object: ObjectType,
        namespace: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, ClusterError> {
        self.checked(object, "get", namespace)?;
        let api = self.dynamic(object, Some(namespace));
        let action = format!("get {} {name} in namespace {namespace}", object.kind);
        match api.get(name).await {
            Ok(found) => self.json(&action, found).map(Some),
            // Also when a custom type is not served at all: the caller names both possibilities.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(e) => Err(self.object_error(object, action, e)),
        }
    }

    /// Applies the JSON merge patch (RFC 7386) `patch` to one object and returns the result.
    pub async fn patch(
        &self,
        object: ObjectType,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<serde_json::Value, ClusterError> {
        self.checked(object, "patch", namespace)?;
        let api = self.dynamic(object, Some(namespace));
        let action = format!("patch {} {name} in namespace {namespace}", object.kind);
        let patched = api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| self.object_error(object, action.clone(), e))?;
        self.json(&action, patched)
    }

    /// Deletes one object; `false` when it was already gone (recovery is idempotent).
    pub async fn delete(&self, object: ObjectType, namespace: &str, name: &str) -> Result<bool, ClusterError> {
        self.checked(object, "delete", namespace)?;
        let api = self.dynamic(object, Some(namespace));
        let action = format!("delete {} {name} in namespace {namespace}", object.kind);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(self.object_error(object, action, e)),
        }
    }
}

fn has_label(labels: &Option<std::collections::BTreeMap<String, String>>, key: &str, value: &str) -> bool {
    labels.as_ref().and_then(|l| l.get(key)).is_some_and(|v| v == value)
}

/// A command running in a pod with its standard input and output open ([`KubeApi::exec_session`]).
pub struct ExecSession {
    stdin: Option<tokio::io::WriteHalf<tokio::io::SimplexStream>>,
    stdout: tokio::io::BufReader<tokio::io::ReadHalf<tokio::io::SimplexStream>>,
    /// The part of a line read so far (kept here, so a read abandoned in a `select!` loses nothing).
    pending: Vec<u8>,
    attached: kube::api::AttachedProcess,
}

impl ExecSession {
    /// Writes `line` and a newline to the command's standard input.
    pub async fn send_line(&mut self, line: &str) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let stdin = self.stdin.as_mut().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await
    }

    /// The next line of the command's standard output (without its newline); `None` once it ended. Cancel-safe:
    /// a call dropped half-way (another branch of a `select!` won) keeps what it read for the next call.
    pub async fn next_line(&mut self) -> std::io::Result<Option<String>> {
        use tokio::io::AsyncBufReadExt;
        let read = self.stdout.read_until(b'\n', &mut self.pending).await?;
        if read == 0 && self.pending.is_empty() {
            return Ok(None);
        }
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
    }

    /// Ends the session: standard input closed and the stream dropped (the API server then ends the command, as
    /// it does when any exec client goes away). Not waited for: a stream whose reader is gone, or whose command
    /// keeps printing, must not hold the caller.
    pub async fn close(self) {
        let ExecSession { stdin, stdout, attached, .. } = self;
        drop(stdin);
        drop(stdout);
        attached.abort();
    }
}
