package deploy

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tether-dev/tether/cluster/pki"
)

const testImage = "tether.local/tether:0123456789ab"

// tlsFor issues a certificate like the workbench would: a server
// certificate for the principal, a client certificate named after the spoke
// for an agent.
func tlsFor(t *testing.T, cn string, server bool) map[string][]byte {
	t.Helper()
	ca, _, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(pki.Request{CommonName: cn, Server: server, Client: !server, DNSNames: []string{cn}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"tls.crt": pair.CertPEM, "tls.key": pair.KeyPEM, "ca.crt": ca.CertPEM}
}

func mustObjects(t *testing.T, f func(Options) ([]*unstructured.Unstructured, error), opts Options) []*unstructured.Unstructured {
	t.Helper()
	objs, err := f(opts)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// get finds the object of kind and name and converts it to out.
func get(t *testing.T, objs []*unstructured.Unstructured, kind, name string, out runtime.Object) bool {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatal(err)
			}
			return true
		}
	}
	return false
}

func kinds(objs []*unstructured.Unstructured) []string {
	var k []string
	for _, o := range objs {
		k = append(k, o.GetKind()+"/"+o.GetName())
	}
	return k
}

// allows reports whether rules grant verb on group/resource, the way the
// RBAC authorizer matches them (including "*").
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	match := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	for _, r := range rules {
		if match(r.APIGroups, group) && match(r.Resources, resource) && match(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// checkCommon holds for every component: labels, namespace, selectors,
// image, probe, requests and the hardening the image expects.
func checkCommon(t *testing.T, objs []*unstructured.Unstructured, name, namespace string) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
			t.Errorf("incomplete object %v", o.Object)
		}
		l := o.GetLabels()
		if l[LabelName] != name || l[LabelPartOf] != "tether" || l[LabelManagedBy] != "tether" {
			t.Errorf("%s/%s labels %v", o.GetKind(), o.GetName(), l)
		}
		clusterScoped := strings.HasPrefix(o.GetKind(), "Cluster")
		if clusterScoped != (o.GetNamespace() == "") || (!clusterScoped && o.GetNamespace() != namespace) {
			t.Errorf("%s/%s in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		}
		if _, ok := o.Object["status"]; ok {
			t.Errorf("%s/%s carries a status", o.GetKind(), o.GetName())
		}
	}

	var d appsv1.Deployment
	if !get(t, objs, "Deployment", name, &d) {
		t.Fatalf("no Deployment %s in %v", name, kinds(objs))
	}
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) || d.Spec.Selector.MatchLabels[LabelName] != name {
		t.Errorf("selector %v does not match pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d strategy %s", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != testImage || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q pull policy %q", c.Image, c.ImagePullPolicy)
	}
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Fatalf("readiness probe %+v", p)
	}
	if port := containerPort(c, p.HTTPGet.Port.String()); port != DefaultHealthPort {
		t.Errorf("probe port %s resolves to %d", p.HTTPGet.Port.String(), port)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("requests %v", c.Resources.Requests)
	}
	if pod.SecurityContext == nil || !*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.RunAsUser != 65532 {
		t.Errorf("pod security context %+v", pod.SecurityContext)
	}
	if c.SecurityContext == nil || !*c.SecurityContext.ReadOnlyRootFilesystem || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v", c.SecurityContext)
	}
	if mountOf(pod, c, "/tmp") == nil {
		t.Error("no writable /tmp with a read-only root filesystem")
	}
	for _, m := range c.VolumeMounts {
		if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
			t.Errorf("mount %s has no volume", m.Name)
		}
	}
	return &d
}

func containerPort(c corev1.Container, nameOrNumber string) int32 {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber {
			return p.ContainerPort
		}
	}
	return -1
}

// mountOf returns the volume mounted at path.
func mountOf(pod corev1.PodSpec, c corev1.Container, path string) *corev1.Volume {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			for i := range pod.Volumes {
				if pod.Volumes[i].Name == m.Name {
					return &pod.Volumes[i]
				}
			}
		}
	}
	return nil
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func checkService(t *testing.T, objs []*unstructured.Unstructured, d *appsv1.Deployment, name, portName string, port int32) {
	t.Helper()
	var s corev1.Service
	if !get(t, objs, "Service", name, &s) {
		t.Fatalf("no Service %s in %v", name, kinds(objs))
	}
	if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(s.Spec.Selector) == 0 {
		t.Errorf("service selector %v misses pod labels %v", s.Spec.Selector, d.Spec.Template.Labels)
	}
	if len(s.Spec.Ports) == 0 {
		t.Fatalf("ports %+v", s.Spec.Ports)
	}
	for _, extra := range s.Spec.Ports[1:] {
		// Extra ports (the principal's webhook) must resolve too.
		if containerPort(d.Spec.Template.Spec.Containers[0], extra.TargetPort.String()) == 0 {
			t.Errorf("service port %s targets %s, which the pod does not name", extra.Name, extra.TargetPort.String())
		}
	}
	sp := s.Spec.Ports[0]
	if sp.Name != portName || sp.Port != port || s.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("service port %+v type %s", sp, s.Spec.Type)
	}
	if got := containerPort(d.Spec.Template.Spec.Containers[0], sp.TargetPort.String()); got != port {
		t.Errorf("target port %s resolves to %d, want %d", sp.TargetPort.String(), got, port)
	}
}

// checkRBAC finds the ServiceAccount, ClusterRole and binding, checks that
// they are wired to each other and to the pod, and returns the rules.
func checkRBAC(t *testing.T, objs []*unstructured.Unstructured, d *appsv1.Deployment, name, namespace string) []rbacv1.PolicyRule {
	t.Helper()
	var sa corev1.ServiceAccount
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	if !get(t, objs, "ServiceAccount", name, &sa) || !getKind(t, objs, "ClusterRole", &role) || !getKind(t, objs, "ClusterRoleBinding", &binding) {
		t.Fatalf("RBAC objects missing in %v", kinds(objs))
	}
	if d.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("pod runs as %q, not %q", d.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	if binding.RoleRef.Kind != "ClusterRole" || binding.RoleRef.Name != role.Name || binding.RoleRef.APIGroup != rbacv1.GroupName {
		t.Errorf("binding refers to %+v, role is %s", binding.RoleRef, role.Name)
	}
	want := rbacv1.Subject{Kind: "ServiceAccount", Name: sa.Name, Namespace: namespace}
	if !slices.Equal(binding.Subjects, []rbacv1.Subject{want}) {
		t.Errorf("subjects %+v", binding.Subjects)
	}
	return role.Rules
}

func getKind(t *testing.T, objs []*unstructured.Unstructured, kind string, out runtime.Object) bool {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return get(t, objs, kind, o.GetName(), out)
		}
	}
	return false
}

func checkTLSSecret(t *testing.T, objs []*unstructured.Unstructured, d *appsv1.Deployment, name string, data map[string][]byte) {
	t.Helper()
	var s corev1.Secret
	if !get(t, objs, "Secret", name, &s) {
		t.Fatalf("no Secret %s in %v", name, kinds(objs))
	}
	if s.Type != corev1.SecretTypeTLS || !reflect.DeepEqual(s.Data, data) {
		t.Errorf("secret type %s keys %v", s.Type, slices.Sorted(maps.Keys(s.Data)))
	}
	pod := d.Spec.Template.Spec
	v := mountOf(pod, pod.Containers[0], TLSMountPath)
	if v == nil || v.Secret == nil || v.Secret.SecretName != name {
		t.Errorf("%s is not mounted at %s", name, TLSMountPath)
	}
	if d.Spec.Template.Annotations[TLSChecksumAnnotation] == "" {
		t.Error("no TLS checksum on the pod template")
	}
}

func TestPrincipal(t *testing.T) {
	tlsData := tlsFor(t, PrincipalName, true)
	objs := mustObjects(t, Principal, Options{Image: testImage, TLS: tlsData, GitURL: "http://tether-git:3000"})
	d := checkCommon(t, objs, PrincipalName, DefaultNamespace)
	checkService(t, objs, d, PrincipalName, "grpc", 8443)
	checkTLSSecret(t, objs, d, "tether-principal-tls", tlsData)

	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args[:3], []string{"principal", "--listen", ":8443"}) {
		t.Errorf("args %q", c.Args)
	}
	if v, _ := env(c, "TETHER_GIT_URL"); v != "http://tether-git:3000" {
		t.Errorf("TETHER_GIT_URL %q", v)
	}

	rules := checkRBAC(t, objs, d, PrincipalName, DefaultNamespace)
	for _, need := range []struct{ group, resource, verb string }{
		{"gitops.tether.dev", "applications", "create"},
		{"gitops.tether.dev", "applications", "watch"},
		{"gitops.tether.dev", "applications", "delete"},
		{"gitops.tether.dev", "applications/status", "patch"},
		{"gitops.tether.dev", "agents", "update"},
		{"gitops.tether.dev", "agents/status", "update"},
		{"", "namespaces", "create"},
		{"", "namespaces", "watch"},
		{"coordination.k8s.io", "leases", "update"},
	} {
		if !allows(rules, need.group, need.resource, need.verb) {
			t.Errorf("principal may not %s %s.%s", need.verb, need.resource, need.group)
		}
	}
	for _, deny := range []struct{ group, resource, verb string }{
		{"", "secrets", "get"},
		{"", "namespaces", "delete"},
		{"apps", "deployments", "create"},
	} {
		if allows(rules, deny.group, deny.resource, deny.verb) {
			t.Errorf("principal may %s %s.%s, which it does not need", deny.verb, deny.resource, deny.group)
		}
	}
}

func TestAgent(t *testing.T) {
	tlsData := tlsFor(t, "spoke-1", false)
	opts := Options{Image: testImage, Spoke: "spoke-1", PrincipalAddress: "172.18.0.2:30443", TLS: tlsData}
	objs := mustObjects(t, Agent, opts)
	d := checkCommon(t, objs, AgentName, DefaultNamespace)
	checkTLSSecret(t, objs, d, "tether-agent-tls", tlsData)
	if get(t, objs, "Service", AgentName, &corev1.Service{}) {
		t.Error("the agent connects out; it needs no Service")
	}

	c := d.Spec.Template.Spec.Containers[0]
	if c.Args[0] != "agent" || !containsPair(c.Args, "--name", "spoke-1") || !containsPair(c.Args, "--principal", "172.18.0.2:30443") {
		t.Errorf("args %q", c.Args)
	}
	for k, want := range map[string]string{"TETHER_SPOKE": "spoke-1", "TETHER_PRINCIPAL_ADDRESS": "172.18.0.2:30443"} {
		if v, _ := env(c, k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if _, ok := env(c, "TETHER_GIT_URL"); ok {
		t.Error("an unset GitURL should leave no env var")
	}

	rules := checkRBAC(t, objs, d, AgentName, DefaultNamespace)
	for _, need := range [][3]string{
		{"apps", "deployments", "create"},
		{"apiextensions.k8s.io", "customresourcedefinitions", "patch"},
		{"rbac.authorization.k8s.io", "clusterroles", "escalate"},
		{"example.com", "widgets", "delete"},
	} {
		if !allows(rules, need[0], need[1], need[2]) {
			t.Errorf("agent may not %s %s.%s, which a synced manifest may need", need[2], need[1], need[0])
		}
	}
}

func containsPair(args []string, flag, value string) bool {
	i := slices.Index(args, flag)
	return i >= 0 && i+1 < len(args) && args[i+1] == value
}

func TestAgentRefusesWhatCannotWork(t *testing.T) {
	base := Options{Image: testImage, Spoke: "spoke-1", PrincipalAddress: "hub:8443"}
	for name, tc := range map[string]struct {
		mutate func(*Options)
		want   string
	}{
		"no spoke":             {func(o *Options) { o.Spoke = "" }, "Spoke"},
		"no principal":         {func(o *Options) { o.PrincipalAddress = "" }, "PrincipalAddress"},
		"no image":             {func(o *Options) { o.Image = "" }, "Image"},
		"certificate of other": {func(o *Options) { o.TLS = tlsFor(t, "spoke-2", false) }, `"spoke-2"`},
		"no CA":                {func(o *Options) { o.TLS = tlsFor(t, "spoke-1", false); delete(o.TLS, "ca.crt") }, "ca.crt"},
		"mismatched key": {func(o *Options) {
			o.TLS = tlsFor(t, "spoke-1", false)
			o.TLS["tls.key"] = tlsFor(t, "spoke-1", false)["tls.key"]
		}, "key"},
		"bad node port": {func(o *Options) { o.NodePort = 70000 }, "NodePort"},
	} {
		t.Run(name, func(t *testing.T) {
			opts := base
			tc.mutate(&opts)
			_, err := Agent(opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %s", err, tc.want)
			}
		})
	}
}

func TestGitServer(t *testing.T) {
	objs := mustObjects(t, GitServer, Options{Image: testImage})
	d := checkCommon(t, objs, GitName, DefaultNamespace)
	checkService(t, objs, d, GitName, "http", 3000)
	if got := kinds(objs); !slices.Equal(got, []string{"Service/tether-git", "Deployment/tether-git"}) {
		t.Errorf("objects %v: the Git server needs no RBAC and no Secret", got)
	}
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the Git server never talks to the API server and should get no token")
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args[:2], []string{"git", "serve"}) || !containsPair(c.Args, "--root", GitDataPath) || !containsPair(c.Args, "--addr", ":3000") {
		t.Errorf("args %q", c.Args)
	}
}

// The repositories outlive the Git server's pod: they are a folder on the
// hub's node, mounted where `git serve --root` keeps them, written by one
// pod at a time, and writable by the container.
func TestGitServerKeepsRepositoriesOnTheNode(t *testing.T) {
	d := checkCommon(t, mustObjects(t, GitServer, Options{Image: testImage}), GitName, DefaultNamespace)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]

	v := mountOf(pod, c, GitDataPath)
	if v == nil {
		t.Fatalf("nothing mounted at %s, where the server keeps its repositories; mounts %+v", GitDataPath, c.VolumeMounts)
	}
	if v.EmptyDir != nil || v.HostPath == nil {
		t.Fatalf("%s is not a hostPath volume (emptyDir: %v): a pod-lived volume loses the user's commits whenever the pod is replaced", GitDataPath, v.EmptyDir != nil)
	}
	if v.HostPath.Path != GitHostPath || GitHostPath != "/var/lib/tether/git" {
		t.Errorf("hostPath %q, want %q (under /var, which kind keeps in a Docker volume)", v.HostPath.Path, GitHostPath)
	}
	if v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("hostPath type %v: a fresh node has no such folder yet", v.HostPath.Type)
	}
	for _, m := range c.VolumeMounts {
		if m.Name == v.Name && (m.ReadOnly || m.SubPath != "") {
			t.Errorf("mount %+v: the server writes the repositories' root itself", m)
		}
	}
	if !containsPair(DefaultArgs(GitName, Options{}), "--root", GitDataPath) {
		t.Errorf("the server's --root is not the mounted folder: %q", DefaultArgs(GitName, Options{}))
	}

	// Two servers on one folder would corrupt it: the old pod is gone
	// before the new one starts.
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil || *d.Spec.Replicas != 1 {
		t.Errorf("strategy %+v replicas %d: two Git server pods could write the folder at once", d.Spec.Strategy, *d.Spec.Replicas)
	}

	// The kubelet makes the folder root-owned, 0755, and fsGroup does not
	// reach hostPath volumes: the container runs as its owner, still
	// without capabilities or privilege escalation.
	sc := c.SecurityContext
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot {
		t.Errorf("container runs as %v (runAsNonRoot %v): it could not write the root-owned folder", sc.RunAsUser, sc.RunAsNonRoot)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.Privileged != nil && *sc.Privileged {
		t.Errorf("root in the Git server must hold no capabilities: %+v", sc)
	}

	// Only the Git server gets this: the others keep the image's user.
	for name, objs := range map[string][]*unstructured.Unstructured{
		PrincipalName: mustObjects(t, Principal, Options{Image: testImage}),
		AgentName:     mustObjects(t, Agent, Options{Image: testImage, Spoke: "spoke-1", PrincipalAddress: "hub:8443"}),
	} {
		var other appsv1.Deployment
		get(t, objs, "Deployment", name, &other)
		spec := other.Spec.Template.Spec
		if csc := spec.Containers[0].SecurityContext; csc.RunAsUser != nil || csc.RunAsNonRoot != nil {
			t.Errorf("%s overrides the pod's user: %+v", name, csc)
		}
		for _, pv := range spec.Volumes {
			if pv.HostPath != nil {
				t.Errorf("%s mounts hostPath %s", name, pv.HostPath.Path)
			}
		}
	}
}

func TestOptionsOverrideDefaults(t *testing.T) {
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: requests("1", "1Gi").Requests[corev1.ResourceCPU]}}
	objs := mustObjects(t, Principal, Options{
		Image: testImage, Namespace: "other", PullPolicy: corev1.PullNever,
		Args: []string{"principal", "--debug"}, HealthPort: 9090, NodePort: 30443, Resources: &res,
	})
	var d appsv1.Deployment
	if !get(t, objs, "Deployment", PrincipalName, &d) {
		t.Fatal("no Deployment")
	}
	c := d.Spec.Template.Spec.Containers[0]
	if d.Namespace != "other" || c.ImagePullPolicy != corev1.PullNever || !slices.Equal(c.Args, []string{"principal", "--debug"}) {
		t.Errorf("namespace %s pull %s args %q", d.Namespace, c.ImagePullPolicy, c.Args)
	}
	if containerPort(c, c.ReadinessProbe.HTTPGet.Port.String()) != 9090 {
		t.Errorf("probe does not follow HealthPort: %+v", c.Ports)
	}
	if !reflect.DeepEqual(c.Resources, res) {
		t.Errorf("resources %+v", c.Resources)
	}
	var s corev1.Service
	get(t, objs, "Service", PrincipalName, &s)
	if s.Spec.Type != corev1.ServiceTypeNodePort || s.Spec.Ports[0].NodePort != 30443 {
		t.Errorf("service %s %+v", s.Spec.Type, s.Spec.Ports)
	}

	// Cluster-scoped names carry a foreign namespace, so a second
	// installation neither shares nor deletes the first one's role.
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	if !getKind(t, objs, "ClusterRole", &role) || !getKind(t, objs, "ClusterRoleBinding", &binding) {
		t.Fatal("no RBAC")
	}
	if role.Name == PrincipalName || binding.RoleRef.Name != role.Name || binding.Subjects[0].Namespace != "other" {
		t.Errorf("role %s binding %+v", role.Name, binding)
	}

	// DefaultArgs follow the options the Deployment would get.
	if got := DefaultArgs(GitName, Options{HealthPort: 9999}); !containsPair(got, "--health-addr", ":9999") {
		t.Errorf("DefaultArgs %q", got)
	}
}

func TestExternallyManagedSecret(t *testing.T) {
	objs := mustObjects(t, Principal, Options{Image: testImage})
	if get(t, objs, "Secret", "tether-principal-tls", &corev1.Secret{}) {
		t.Error("nil TLS should leave the Secret to the caller")
	}
	var d appsv1.Deployment
	get(t, objs, "Deployment", PrincipalName, &d)
	pod := d.Spec.Template.Spec
	if v := mountOf(pod, pod.Containers[0], TLSMountPath); v == nil || v.Secret.SecretName != "tether-principal-tls" {
		t.Error("the Deployment should still mount the Secret by name")
	}
}

func TestObjectsAreStable(t *testing.T) {
	tlsData := tlsFor(t, "spoke-1", false)
	opts := Options{Image: testImage, Spoke: "spoke-1", PrincipalAddress: "hub:8443", GitURL: "http://git", TLS: tlsData}
	a, b := mustObjects(t, Agent, opts), mustObjects(t, Agent, opts)
	if !reflect.DeepEqual(a, b) {
		t.Error("the same options gave different objects: every apply would roll the pods")
	}

	checksum := func(tlsData map[string][]byte) string {
		o := opts
		o.TLS = tlsData
		var d appsv1.Deployment
		get(t, mustObjects(t, Agent, o), "Deployment", AgentName, &d)
		return d.Spec.Template.Annotations[TLSChecksumAnnotation]
	}
	if checksum(tlsData) == checksum(tlsFor(t, "spoke-1", false)) {
		t.Error("new certificates should change the pod template")
	}
}

func TestApplyOrder(t *testing.T) {
	obj := func(kind string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetKind(kind)
		u.SetName(strings.ToLower(kind))
		return u
	}
	in := []*unstructured.Unstructured{
		obj("Deployment"), obj("Widget"), obj("Service"), obj("ClusterRoleBinding"),
		obj("Secret"), obj("CustomResourceDefinition"), obj("Namespace"), obj("ServiceAccount"),
	}
	var got []string
	for _, o := range sorted(in) {
		got = append(got, o.GetKind())
	}
	want := []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "Secret", "ClusterRoleBinding", "Service", "Deployment", "Widget"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if in[0].GetKind() != "Deployment" {
		t.Error("sorted changed its input")
	}
}

// The embedded provider's local-address annotation lands on the pod
// template next to the TLS checksum, without changing the caller's map;
// without it the template carries only the checksum (kind).
func TestPodAnnotations(t *testing.T) {
	tlsData := tlsFor(t, PrincipalName, true)
	extra := map[string]string{"tether.dev/local-address.8443": "127.0.0.1:40001"}
	var d appsv1.Deployment
	get(t, mustObjects(t, Principal, Options{Image: testImage, TLS: tlsData, PodAnnotations: extra}), "Deployment", PrincipalName, &d)
	if got := d.Spec.Template.Annotations["tether.dev/local-address.8443"]; got != "127.0.0.1:40001" {
		t.Errorf("local address annotation %q", got)
	}
	if d.Spec.Template.Annotations[TLSChecksumAnnotation] == "" {
		t.Error("the TLS checksum was lost")
	}
	if len(extra) != 1 {
		t.Errorf("the caller's map was changed: %v", extra)
	}
	var plain appsv1.Deployment
	get(t, mustObjects(t, Principal, Options{Image: testImage, TLS: tlsData}), "Deployment", PrincipalName, &plain)
	if len(plain.Spec.Template.Annotations) != 1 {
		t.Errorf("pod annotations without PodAnnotations: %v", plain.Spec.Template.Annotations)
	}
	var git appsv1.Deployment
	get(t, mustObjects(t, GitServer, Options{Image: testImage, PodAnnotations: map[string]string{"a": "b"}}), "Deployment", GitName, &git)
	if !maps.Equal(git.Spec.Template.Annotations, map[string]string{"a": "b"}) {
		t.Errorf("git server pod annotations %v", git.Spec.Template.Annotations)
	}
}
