package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// runAs is the image's user (cluster/image.User); repeating it in the pod
// lets the kubelet enforce runAsNonRoot without inspecting the image.
const runAs int64 = 65532

// Labels are the labels of every object of the named component; the first
// two also select its pods.
func Labels(name string) map[string]string {
	return map[string]string{
		LabelName:      name,
		LabelPartOf:    "tether",
		LabelManagedBy: "tether",
	}
}

// selector matches a component's pods. It leaves out managed-by, so another
// tool taking over the objects does not orphan the pods (a Deployment's
// selector cannot change).
func selector(name string) map[string]string {
	return map[string]string{LabelName: name, LabelPartOf: "tether"}
}

// DefaultArgs are the arguments each component runs with unless
// Options.Args says otherwise.
func DefaultArgs(name string, opts Options) []string {
	opts, _ = opts.withDefaults()
	health := fmt.Sprintf(":%d", opts.HealthPort)
	switch name {
	case PrincipalName:
		return []string{"principal",
			"--listen", fmt.Sprintf(":%d", PrincipalPort),
			"--http", health,
			"--tls-dir", TLSMountPath,
			"--namespace", opts.Namespace,
			// kube-proxy keeps an open connection on the pod it chose:
			// agents re-dial now and then, so an intercept of the
			// principal's Service gets them (docs/debugging.md).
			"--max-stream-age", PrincipalMaxStreamAge.String(),
			// Connections, pushes and operations at info: what `kubectl
			// logs` of a component is read for.
			"-v",
		}
	case AgentName:
		return []string{"agent",
			"--name", opts.Spoke,
			"--principal", opts.PrincipalAddress,
			"--health-addr", health,
			"--tls-dir", TLSMountPath,
			"--namespace", opts.Namespace,
			"-v",
		}
	case GitName:
		return []string{"git", "serve",
			"--root", GitDataPath,
			"--addr", fmt.Sprintf(":%d", GitPort),
			"--health-addr", health,
		}
	}
	return nil
}

// Principal is the hub's end of the agents' connections: it keeps the
// Applications and Agents on the hub and streams them to the spokes.
func Principal(opts Options) ([]*unstructured.Unstructured, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkTLS(opts.TLS, ""); err != nil {
		return nil, err
	}
	c := component{name: PrincipalName, role: "principal", opts: opts,
		defaults: requests("50m", "64Mi"),
		ports:    []corev1.ContainerPort{{Name: "grpc", ContainerPort: PrincipalPort, Protocol: corev1.ProtocolTCP}},
		env:      envFrom(map[string]string{"TETHER_GIT_URL": opts.GitURL}),
		tls:      true,
		webhook:  true,
		rules:    PrincipalRules(),
	}
	return c.objects()
}

// PrincipalRules are the principal's rights on the hub: the tether API, the
// namespaces Applications live in, and leases for leader election.
func PrincipalRules() []rbacv1.PolicyRule {
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	return []rbacv1.PolicyRule{
		{
			APIGroups: []string{v1alpha1.Group},
			// The status subresources are separate resources to RBAC:
			// without them the principal could not report sync state or
			// agent connections.
			Resources: []string{"applications", "applications/status", "agents", "agents/status"},
			Verbs:     all,
		},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: all},
		// Events are how the principal explains itself to kubectl describe.
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// Agent runs on a spoke: it connects out to the principal, receives the
// spoke's Applications and runs the sync engine on them.
func Agent(opts Options) ([]*unstructured.Unstructured, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.Spoke == "" {
		return nil, fmt.Errorf("deploy: the agent needs Options.Spoke")
	}
	if opts.PrincipalAddress == "" {
		return nil, fmt.Errorf("deploy: the agent of %s needs Options.PrincipalAddress", opts.Spoke)
	}
	if err := checkTLS(opts.TLS, opts.Spoke); err != nil {
		return nil, err
	}
	c := component{name: AgentName, role: "agent", opts: opts,
		// The sync engine keeps informers on every kind it manages.
		defaults: requests("50m", "128Mi"),
		env: envFrom(map[string]string{
			"TETHER_SPOKE":             opts.Spoke,
			"TETHER_PRINCIPAL_ADDRESS": opts.PrincipalAddress,
			"TETHER_GIT_URL":           opts.GitURL,
		}),
		tls:   true,
		rules: AgentRules(),
	}
	return c.objects()
}

// AgentRules are cluster-admin's: the sync engine applies whatever manifests
// an Application's Git path holds (CRDs, ClusterRoles, workloads in any
// namespace), watches every kind it applied and prunes them. A narrower role
// would fail on the first manifest of an unforeseen kind, and the API server
// refuses to let a subject create RBAC granting rights it does not hold
// itself, so applying an application's own Roles needs those rights too.
// Argo CD's application controller is bound to the same for the same
// reasons; the trust boundary is write access to the Git repository.
func AgentRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
		{NonResourceURLs: []string{"*"}, Verbs: []string{"*"}},
	}
}

// GitServer serves the workbench's repositories to the agents. Its
// repositories live on the hub's node (GitHostPath), not in the pod: a pod
// replaced by a new tether image or a node restart finds the repositories
// as they were, and `up` keeps their commits instead of seeding afresh. On
// kind, /var of a node is a Docker volume, so they survive a restart of the
// node's container too, and go with the cluster on `tether down`. The
// Deployment's Recreate strategy matters twice here: two servers would
// write the same folder at once.
func GitServer(opts Options) ([]*unstructured.Unstructured, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := component{name: GitName, role: "git-server", opts: opts,
		defaults: requests("10m", "32Mi"),
		ports:    []corev1.ContainerPort{{Name: "http", ContainerPort: GitPort, Protocol: corev1.ProtocolTCP}},
		env:      envFrom(map[string]string{"TETHER_GIT_URL": opts.GitURL}),
		volumes: []volume{{
			Volume: corev1.Volume{Name: "repositories", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: GitHostPath,
				Type: ptr(corev1.HostPathDirectoryOrCreate),
			}}},
			mount: corev1.VolumeMount{Name: "repositories", MountPath: GitDataPath},
		}},
		// The kubelet creates a DirectoryOrCreate hostPath owned by root,
		// mode 0755, and fsGroup does not apply to hostPath volumes, so the
		// image's user (65532) could not write there. The image has no
		// shell for an init container to chown it with, so the Git server
		// runs as uid 0, the folder's owner, and that is all root is here:
		// every capability dropped (no CAP_DAC_OVERRIDE, CAP_CHOWN or
		// CAP_SYS_ADMIN), no privilege escalation, a read-only root
		// filesystem and no ServiceAccount token, so it writes only its two
		// writable mounts, this folder and /tmp, as 65532 would. Secure
		// enough for a local workbench whose server only the agents and the
		// user's Git reach; the other components keep running as 65532.
		runAsRoot: true,
	}
	return c.objects()
}

// component is what differs between the three; objects does the rest.
type component struct {
	name, role string
	opts       Options
	defaults   corev1.ResourceRequirements
	ports      []corev1.ContainerPort // the Service exposes these; none, no Service
	webhook    bool                   // the Service also exposes the health port as "webhook"
	env        []corev1.EnvVar
	volumes    []volume
	tls        bool                // mount <name>-tls
	rules      []rbacv1.PolicyRule // none: no ServiceAccount token at all
	// runAsRoot runs the container as uid 0, still without capabilities:
	// for a hostPath volume the image's user cannot write (see GitServer).
	runAsRoot bool
}

type volume struct {
	corev1.Volume
	mount corev1.VolumeMount
}

func (c component) meta(name string, namespaced bool) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Labels: Labels(c.name)}
	m.Labels[LabelComponent] = c.role
	if namespaced {
		m.Namespace = c.opts.Namespace
	}
	return m
}

// objects returns the component's objects in an order Apply can follow as
// is: identities and secrets before the workload that uses them.
func (c component) objects() ([]*unstructured.Unstructured, error) {
	var objs []runtime.Object
	if len(c.rules) > 0 {
		objs = append(objs,
			&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: c.meta(c.name, true)},
			// ClusterRoles are cluster-wide, so their names carry the
			// namespace: two installations must not share (and delete) one.
			&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: c.meta(c.clusterName(), false), Rules: c.rules},
			&rbacv1.ClusterRoleBinding{
				TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
				ObjectMeta: c.meta(c.clusterName(), false),
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: c.clusterName()},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: c.name, Namespace: c.opts.Namespace}},
			},
		)
	}
	if c.tls && c.opts.TLS != nil {
		objs = append(objs, &corev1.Secret{
			TypeMeta:   typeMeta("v1", "Secret"),
			ObjectMeta: c.meta(c.secretName(), true),
			Type:       corev1.SecretTypeTLS,
			Data:       maps.Clone(c.opts.TLS),
		})
	}
	if len(c.ports) > 0 {
		objs = append(objs, c.service())
	}
	objs = append(objs, c.deployment())

	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func (c component) clusterName() string {
	if c.opts.Namespace == DefaultNamespace {
		return c.name
	}
	return c.name + ":" + c.opts.Namespace
}

func (c component) secretName() string { return c.name + "-tls" }

func (c component) service() *corev1.Service {
	s := &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: c.meta(c.name, true),
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector(c.name)},
	}
	for i, p := range c.ports {
		sp := corev1.ServicePort{Name: p.Name, Port: p.ContainerPort, TargetPort: intstr.FromString(p.Name), Protocol: p.Protocol}
		// Only the main port is exposed on the node: that is what other
		// clusters dial.
		if c.opts.NodePort != 0 && i == 0 {
			s.Spec.Type = corev1.ServiceTypeNodePort
			sp.NodePort = c.opts.NodePort
		}
		s.Spec.Ports = append(s.Spec.Ports, sp)
	}
	if c.webhook {
		// The principal's HTTP side (health and the Git push webhook)
		// shares the health port; in-cluster callers reach it by name.
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "webhook", Port: c.opts.HealthPort, TargetPort: intstr.FromString("health"), Protocol: corev1.ProtocolTCP})
	}
	return s
}

func (c component) deployment() *appsv1.Deployment {
	o := c.opts
	args := o.Args
	if args == nil {
		args = DefaultArgs(c.name, o)
	}
	res := c.defaults
	if o.Resources != nil {
		res = *o.Resources
	}
	env := append([]corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
	}, c.env...)

	// The root filesystem is read-only, so the process's only scratch
	// space (HOME, the sync engine's Git cache) is this emptyDir.
	vols := append([]volume{{
		Volume: corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		mount:  corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"},
	}}, c.volumes...)
	// A copy: the caller's map must not pick up the TLS checksum.
	annotations := maps.Clone(o.PodAnnotations)
	if c.tls {
		vols = append(vols, volume{
			Volume: corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: c.secretName(),
				// Readable by the pod's fsGroup only: the key is secret
				// even from other users in the container.
				DefaultMode: ptr(int32(0o440)),
			}}},
			mount: corev1.VolumeMount{Name: "tls", MountPath: TLSMountPath, ReadOnly: true},
		})
		if o.TLS != nil {
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[TLSChecksumAnnotation] = checksum(o.TLS)
		}
	}
	var podVols []corev1.Volume
	var mounts []corev1.VolumeMount
	for _, v := range vols {
		podVols = append(podVols, v.Volume)
		mounts = append(mounts, v.mount)
	}

	ports := append(slices.Clone(c.ports), corev1.ContainerPort{Name: "health", ContainerPort: o.HealthPort, Protocol: corev1.ProtocolTCP})
	podMeta := c.meta("", false)
	podMeta.Annotations = annotations

	spec := corev1.PodSpec{
		// Components without RBAC rules get no token: the Git server never
		// talks to the API server.
		AutomountServiceAccountToken: ptr(len(c.rules) > 0),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			RunAsUser:      ptr(runAs),
			RunAsGroup:     ptr(runAs),
			FSGroup:        ptr(runAs),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            c.role,
			Image:           o.Image,
			ImagePullPolicy: o.PullPolicy,
			Args:            args,
			Env:             env,
			Ports:           ports,
			VolumeMounts:    mounts,
			Resources:       res,
			ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromString("health"), Scheme: corev1.URISchemeHTTP,
				}},
				PeriodSeconds:    5,
				FailureThreshold: 3,
			},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr(false),
				ReadOnlyRootFilesystem:   ptr(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
		Volumes: podVols,
	}
	if len(c.rules) > 0 {
		spec.ServiceAccountName = c.name
	}
	if c.runAsRoot {
		// The container's settings override the pod's for this container
		// only; the pod keeps fsGroup for its emptyDir and Secret volumes.
		sc := spec.Containers[0].SecurityContext
		sc.RunAsNonRoot = ptr(false)
		sc.RunAsUser = ptr(int64(0))
	}

	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: c.meta(c.name, true),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			// Each component is a singleton identity: two agents for one
			// spoke would fight over its connection, and two Git servers
			// would each hold half of the pushes. Recreate never runs the
			// old and the new pod side by side.
			Strategy:             appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			RevisionHistoryLimit: ptr(int32(3)),
			Selector:             &metav1.LabelSelector{MatchLabels: selector(c.name)},
			Template:             corev1.PodTemplateSpec{ObjectMeta: podMeta, Spec: spec},
		},
	}
}

// envFrom turns the set values into env vars, in name order so the
// Deployment does not change (and roll) from one build to the next.
func envFrom(vars map[string]string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if vars[k] != "" {
			env = append(env, corev1.EnvVar{Name: k, Value: vars[k]})
		}
	}
	return env
}

func checksum(data map[string][]byte) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(h, "%s\x00%d\x00", k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// toUnstructured converts a typed object for the dynamic client, dropping
// the empty status and null creationTimestamps the typed structs carry:
// applying them would only make the field manager claim fields it does not
// mean to set.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("deploy: convert %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	return u, nil
}

func ptr[T any](v T) *T { return &v }
