package agentpod

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tether-dev/tether/intercept/record"
)

const (
	// DefaultControlPort is where the agent's control listener (the
	// workbench's session) listens in its pod. It is moved up when one of
	// the Service's target ports already uses it.
	DefaultControlPort int32 = 7070
	// ControlPortName names the control port on the agent's container, so
	// PortForward finds it on the pod without being told.
	ControlPortName = "tether-control"
	// ContainerName is the agent's container.
	ContainerName = "traffic-agent"
	// TokenEnv is intercept.TokenEnv, repeated so that package intercept
	// can wire this one in without an import cycle (a test keeps the two
	// equal).
	TokenEnv = "TETHER_INTERCEPT_TOKEN"
	// TokenKey holds the session token in the agent's Secret.
	TokenKey = record.SecretTokenKey
	// FieldManager owns the fields Apply sets; it is the one
	// record.TakeOver uses, so one manager names everything intercepts write.
	FieldManager = "tether-intercept"
)

// runAs is the image's user (cluster/image.User); repeating it in the pod
// lets the kubelet enforce runAsNonRoot without inspecting the image.
const runAs int64 = 65532

// Options describe the agent's pod beyond what the record says.
type Options struct {
	// Image is tether's image (cluster/image.Ref), the one `tether up`
	// builds and loads into the kind nodes, or one the nodes can pull.
	// Required.
	Image string
	// PullPolicy defaults to IfNotPresent: the image is loaded into the
	// nodes, and no registry serves its reference.
	PullPolicy corev1.PullPolicy
	// ControlPort defaults to DefaultControlPort.
	ControlPort int32
	// Args are appended to the agent's command line (for example "-v").
	Args []string
	// Resources default to small requests and a memory limit.
	Resources *corev1.ResourceRequirements
}

// Set is the objects of one Service's traffic-agent, in the Service's
// namespace: the pod named record.Record.AgentPod, the others
// record.Record.Agent (the two are the same name today).
type Set struct {
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	Secret         *corev1.Secret
	Pod            *corev1.Pod
}

// List returns the objects in the order they can be created: the pod last,
// since admission wants its ServiceAccount to exist.
func (s *Set) List() []runtime.Object {
	return []runtime.Object{s.ServiceAccount, s.Role, s.RoleBinding, s.Secret, s.Pod}
}

// SetOwner makes every object a dependent of owner (the agent's Lease),
// so the garbage collector removes them when it goes.
func (s *Set) SetOwner(owner metav1.OwnerReference) {
	for _, m := range []*metav1.ObjectMeta{&s.ServiceAccount.ObjectMeta, &s.Role.ObjectMeta, &s.RoleBinding.ObjectMeta, &s.Secret.ObjectMeta, &s.Pod.ObjectMeta} {
		m.OwnerReferences = []metav1.OwnerReference{owner}
	}
}

// LeaseOwner is the owner reference to an intercept's Lease.
func LeaseOwner(l *coordinationv1.Lease) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Name: l.Name, UID: l.UID}
}

// ControlPort is the control port the agent of rec listens on: want (or
// DefaultControlPort) unless one of the Service's target ports has it.
func ControlPort(rec *record.Record, want int32) int32 {
	if want == 0 {
		want = DefaultControlPort
	}
	used := map[int32]bool{}
	for _, p := range rec.Ports {
		used[p.TargetPort] = true
	}
	for used[want] {
		want++
	}
	return want
}

// Rules are the API calls the in-cluster agent (agent.Run with Embedded
// false, including the record.CleanupAgentInPod it runs when it ends)
// makes, pinned to the agent's and the Service's names wherever RBAC can
// pin them. The embedded-only calls (the service router's Service,
// EndpointSlice and Pod informers, creating its kwok pod) are not granted:
// in a pod the agent uses cluster DNS and pod IPs.
//
// Not granted on purpose: listing Secrets, which would let the agent read
// every Secret of its namespace (the cleanup gets the agent's Secret by
// name instead), and deleting pods, its own included (the garbage
// collector removes the pod once the agent has deleted its Lease; deleting
// it first would have the kubelet kill the agent mid-cleanup).
func Rules(rec *record.Record) []rbacv1.PolicyRule {
	names := func(ns ...string) []string {
		var out []string
		for _, n := range ns {
			if n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	agent := agentName(rec)
	rules := []rbacv1.PolicyRule{
		// The informer over the original pods (their IPs are where
		// non-intercepted traffic goes). list and watch cannot be
		// pinned by name.
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		// record.Restore reads the Service and puts its selector back.
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "update"}, ResourceNames: names(rec.Service)},
		// The intercept Leases of the Service are listed every second
		// (routes, liveness), and the agent deletes those whose
		// workbench stopped renewing them; their names are the
		// intercepts' (any name, started later by any workbench), so the
		// delete cannot be pinned either. Leases hold no secrets.
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"list", "delete"}},
		// The agent's own Lease: renewed with its counters.
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "update"}, ResourceNames: names(agent, rec.Lease)},
		// The agent's token Secret, by name only: the cleanup reads it
		// (to check it is this instance's) and deletes it.
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "delete"}, ResourceNames: names(agent)},
		// The cleanup lists the agent's Deployments (none: the agent is a
		// bare pod).
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"list"}},
	}
	if rec.AgentDeployment != "" {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"delete"}, ResourceNames: names(rec.AgentDeployment)})
	}
	return rules
}

// agentName names the agent's ServiceAccount, Role, RoleBinding and
// Secret: record.Record.Agent, or the pod's name for records without one.
func agentName(rec *record.Record) string {
	if rec.Agent != "" {
		return rec.Agent
	}
	return rec.AgentPod
}

// podName is the pod the workbench waits for.
func podName(rec *record.Record) string {
	if rec.AgentPod != "" {
		return rec.AgentPod
	}
	return rec.Agent
}

// ownerLease names the Lease the agent's objects hang off: the agent's own
// Lease when the record names one, else the intercept's.
func ownerLease(rec *record.Record) string {
	if rec.Agent != "" {
		return rec.Agent
	}
	return rec.Lease
}

// Labels are the labels of every object of rec's agent: the agent labels
// of the Service (record.AgentLabels), which uninstall and
// record.CleanupAgent select on.
func Labels(rec *record.Record) map[string]string { return record.AgentLabels(rec.Service) }

// AgentArgs is the agent's command line after the image's entrypoint (the
// tether binary): in a pod it serves the target ports on every address and
// the control port at a fixed number, and finds the API through its
// ServiceAccount.
func AgentArgs(rec *record.Record, controlPort int32, extra ...string) ([]string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("intercept %s: encode record: %w", rec.Name, err)
	}
	args := []string{"intercept", "agent", "--record", string(b), "--listen-host=", "--control", ":" + strconv.Itoa(int(controlPort))}
	return append(args, extra...), nil
}

// Objects returns the traffic-agent's objects for rec, with token in a
// Secret the container reads as TokenEnv.
func Objects(rec *record.Record, token string, opts Options) (*Set, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"name", rec.Name}, {"namespace", rec.Namespace}, {"service", rec.Service}, {"lease", rec.Lease}, {"agent or agentPod", podName(rec)},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("intercept %q: record lacks %v; it must come from intercept.Start", rec.Name, missing)
	}
	if opts.Image == "" {
		return nil, errors.New("traffic-agent image is not set: give tether's image reference (cluster/image.Ref), the one bringing the GitOps system up loads into the kind nodes")
	}
	if token == "" {
		return nil, fmt.Errorf("intercept %s: empty session token", rec.Name)
	}
	if len(rec.Ports) == 0 {
		return nil, fmt.Errorf("intercept %s: the record lists no Service ports for the agent to serve", rec.Name)
	}
	control := ControlPort(rec, opts.ControlPort)
	args, err := AgentArgs(rec, control, opts.Args...)
	if err != nil {
		return nil, err
	}
	name, ns := agentName(rec), rec.Namespace
	meta := func() metav1.ObjectMeta {
		m := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: Labels(rec)}
		if rec.AgentID != "" {
			// record.CleanupAgent deletes only its own instance's objects.
			m.Annotations = map[string]string{record.AnnotationAgentID: rec.AgentID}
		}
		return m
	}

	// The container declares every target port (named as the Service
	// names them) so the EndpointSlice controller maps the Service's
	// ports onto the agent, plus the control port.
	var ports []corev1.ContainerPort
	seen := map[int32]bool{}
	low := false
	for _, p := range rec.Ports {
		if seen[p.TargetPort] {
			continue // two Service ports on one container port: one listener
		}
		seen[p.TargetPort] = true
		ports = append(ports, corev1.ContainerPort{Name: p.TargetPortName, ContainerPort: p.TargetPort, Protocol: corev1.ProtocolTCP})
		low = low || p.TargetPort < 1024
	}
	ports = append(ports, corev1.ContainerPort{Name: ControlPortName, ContainerPort: control, Protocol: corev1.ProtocolTCP})

	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	if opts.Resources != nil {
		res = *opts.Resources
	}
	pull := opts.PullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	psc := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr(true),
		RunAsUser:      ptr(runAs),
		RunAsGroup:     ptr(runAs),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if low {
		// The agent listens on the target ports themselves and runs as
		// non-root without capabilities: a Service targeting port 80
		// needs the (namespaced, "safe") sysctl that lets any user bind
		// low ports in the pod's network namespace.
		psc.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}
	}
	podMeta := meta()
	podMeta.Name = podName(rec)
	podMeta.Labels = maps.Clone(rec.AgentLabels)
	if podMeta.Labels == nil {
		podMeta.Labels = map[string]string{}
	}
	maps.Copy(podMeta.Labels, Labels(rec))

	set := &Set{
		ServiceAccount: &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta()},
		Role:           &rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(), Rules: Rules(rec)},
		RoleBinding: &rbacv1.RoleBinding{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
			ObjectMeta: meta(),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
		},
		Secret: &corev1.Secret{
			TypeMeta: typeMeta("v1", "Secret"), ObjectMeta: meta(),
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{TokenKey: []byte(token)},
		},
		Pod: &corev1.Pod{
			TypeMeta:   typeMeta("v1", "Pod"),
			ObjectMeta: podMeta,
			Spec: corev1.PodSpec{
				ServiceAccountName: name,
				// The agent talks to the API with its ServiceAccount.
				AutomountServiceAccountToken: ptr(true),
				// See doc.go: a restarted agent could not resume the
				// session and would find a dead Lease.
				RestartPolicy: corev1.RestartPolicyNever,
				// Nothing reads the Service env vars; in a namespace with
				// many Services they only bloat the environment.
				EnableServiceLinks: ptr(false),
				SecurityContext:    psc,
				Containers: []corev1.Container{{
					Name:            ContainerName,
					Image:           opts.Image,
					ImagePullPolicy: pull,
					Args:            args,
					Env: []corev1.EnvVar{{Name: TokenEnv, ValueFrom: &corev1.EnvVarSource{
						SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: TokenKey},
					}}},
					Ports:     ports,
					Resources: res,
					// Ready means listening: the control listener opens
					// first and the service ports right after. A TCP probe
					// costs the agent one empty connection per period
					// (logged at debug level only); a
					// probe on a service port would instead be carried to
					// the laptop as an intercepted connection.
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(ControlPortName)}},
						PeriodSeconds:    1,
						TimeoutSeconds:   1,
						FailureThreshold: 3,
					},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr(false),
						ReadOnlyRootFilesystem:   ptr(true),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
				}},
			},
		},
	}
	return set, nil
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func ptr[T any](v T) *T { return &v }
