// Package agentpod is the kind (real-node) half of intercepts: it describes and
// installs the traffic-agent as a Pod running tether's own image, and opens
// the workbench's session to that Pod through the API server's port-forward
// subresource.
//
// The pieces plug into package intercept without changing its flow:
// Launcher.Launch has the shape of intercept.AgentLauncher, and
// PortForward.Dial replaces the loopback dial of the agent's control
// address (one port-forward connection carries the whole yamux session, so
// it is opened once per intercept).
//
// # A bare Pod, not a Deployment
//
// The agent is a bare Pod named record.Record.AgentPod (its other objects
// are named record.Record.Agent) with restartPolicy Never:
//
//   - the workbench waits for exactly that pod name (waitAgentPod); a
//     Deployment's pods carry generated names and would need a second
//     lookup by label;
//   - the agent's life is the intercept's: it exits on purpose when its
//     Lease goes (stop) or stops being renewed (fail open). A controller
//     would start a replacement that finds a dead Lease and exits again, in a
//     loop, until someone deleted the Deployment;
//   - a replacement pod could not resume anyway: the workbench's session,
//     and the token it authenticated with, ended with the old pod. If the
//     node dies the session breaks and the workbench reports the intercept
//     lost, which is the honest outcome.
//
// # Everything hangs off the Lease
//
// Every object (ServiceAccount, Role, RoleBinding, token Secret, Pod) has
// the agent's Lease (record.Record.Agent; the intercept's Lease for records
// without one) as its owner, and carries record.AgentLabels and the
// agent-id annotation that record.CleanupAgent selects on. The cleanup
// paths delete what they know by name or label: record.CleanupAgent (the
// workbench) the Pod, Secret and Lease; intercept.Uninstall every kind of
// object here. The agent failing open in its pod
// (record.CleanupAgentInPod) deletes its Secret and its Lease but not its
// own Pod, which the garbage collector removes with the Lease, together
// with the ServiceAccount, Role and RoleBinding: deleting the Pod first
// would have the kubelet kill the agent before it deleted the Lease. The
// collector also covers a Lease already gone by the time the objects were
// created. The Lease exists before the launcher runs (the workbench
// creates it first), and Launch refuses to start without it.
//
// # The session over port-forward, without a local listener
//
// PortForward.Dial does what client-go's PortForwarder does for each
// accepted local connection (an error stream and a data stream on one
// upgraded connection) and hands back the data stream itself as a
// net.Conn: no loopback listener another local user could connect to, and
// no extra copy. It tries SPDY tunnelled over a websocket first and falls
// back to a plain SPDY upgrade when the API server (or a proxy) refuses
// the websocket, as kubectl does. A message the kubelet writes on the error
// stream (nothing listening in the pod, say) is what Read returns, instead
// of a bare EOF. The one connection carries the intercept's whole yamux
// session, whose 3 s keepalive also keeps idle-timeouts on the path away.
//
// # Least privilege
//
// Rules lists exactly the API calls the in-cluster agent makes, and a test
// records them from the agent itself (agent.Run against a fake clientset)
// so the Role follows the agent as it changes. Names are pinned with
// resourceNames wherever RBAC can pin them: the Service, the agent's
// Lease and Secret. Two grants are namespace-wide because their names are
// not known when the agent starts: listing pods (its informer over the
// original pods) and listing and deleting Leases (the Service's intercept
// Leases, which any workbench may add later; the agent deletes those whose
// workbench stopped renewing them). Neither listing Secrets (that would let
// the agent read every Secret of the namespace; the cleanup gets the
// agent's Secret by name) nor deleting pods is granted. The token is in a
// Secret referenced by the container's env, so it is neither in the pod
// spec nor in the process list.
package agentpod
