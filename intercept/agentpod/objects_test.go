package agentpod

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/intercept/record"
)

func testRecord() *record.Record {
	return &record.Record{
		Name: "web-80", Cluster: "hub", Namespace: "shop", Service: "web", Port: 80,
		Ports: []record.Port{
			{Name: "http", Port: 80, TargetPort: 8080, TargetPortName: "http"},
			{Name: "alt", Port: 81, TargetPort: 8080, TargetPortName: "http"},
			{Name: "metrics", Port: 9090, TargetPort: 9090},
		},
		OriginalSelector: map[string]string{"app": "web"},
		AgentLabels:      record.AgentLabels("web"),
		Lease:            record.LeaseName("web-80"),
		Agent:            record.AgentName("web"),
		AgentID:          "id-1",
		AgentPod:         record.AgentName("web"),
		Holder:           "laptop/1",
		Created:          time.Unix(1700000000, 0).UTC(),
	}
}

func TestObjects(t *testing.T) {
	rec := testRecord()
	set, err := Objects(rec, "s3cret", Options{Image: "tether.local/tether:abc", Args: []string{"-v"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range set.List() {
		m := obj.(metav1.Object)
		kind := obj.GetObjectKind().GroupVersionKind().Kind
		if kind == "" {
			t.Errorf("%T has no kind: apply needs apiVersion and kind", obj)
		}
		if m.GetNamespace() != "shop" {
			t.Errorf("%s in namespace %q, want the Service's", kind, m.GetNamespace())
		}
		if m.GetName() != "tether-agent-web" {
			t.Errorf("%s named %q", kind, m.GetName())
		}
		for k, v := range record.AgentLabels("web") {
			if m.GetLabels()[k] != v {
				t.Errorf("%s lacks label %s=%s (uninstall and CleanupAgent select on it): %v", kind, k, v, m.GetLabels())
			}
		}
		if m.GetLabels()[record.LabelIntercept] != "" {
			t.Errorf("%s carries %s: record.AgentSelector would miss it", kind, record.LabelIntercept)
		}
		if m.GetAnnotations()[record.AnnotationAgentID] != "id-1" {
			t.Errorf("%s lacks the agent-id annotation", kind)
		}
	}

	pod := set.Pod
	if pod.Spec.ServiceAccountName != set.ServiceAccount.Name || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("pod spec: sa %q restart %q", pod.Spec.ServiceAccountName, pod.Spec.RestartPolicy)
	}
	for k, v := range rec.AgentLabels {
		if pod.Labels[k] != v {
			t.Errorf("pod lacks selector label %s=%s: the swapped Service would not select it", k, v)
		}
	}
	c := pod.Spec.Containers[0]
	if c.Image != "tether.local/tether:abc" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q pull %q", c.Image, c.ImagePullPolicy)
	}
	want := []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		{ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
		{Name: ControlPortName, ContainerPort: DefaultControlPort, Protocol: corev1.ProtocolTCP},
	}
	if !slices.Equal(c.Ports, want) {
		t.Errorf("ports %+v, want %+v", c.Ports, want)
	}
	if pod.Spec.SecurityContext.Sysctls != nil {
		t.Errorf("no low port, yet sysctls %v", pod.Spec.SecurityContext.Sysctls)
	}
	if p := c.ReadinessProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port != intstr.FromString(ControlPortName) {
		t.Errorf("readiness probe %+v, want TCP on the control port", p)
	}
	if c.Resources.Requests.Cpu().MilliValue() > 100 || c.Resources.Requests.Memory().Value() > 64<<20 {
		t.Errorf("requests too large: %v", c.Resources.Requests)
	}
	if len(c.Env) != 1 || c.Env[0].Name != TokenEnv || c.Env[0].ValueFrom.SecretKeyRef.Name != set.Secret.Name || c.Env[0].ValueFrom.SecretKeyRef.Key != TokenKey {
		t.Errorf("token env %+v", c.Env)
	}
	if string(set.Secret.Data[TokenKey]) != "s3cret" {
		t.Errorf("secret data %v", set.Secret.Data)
	}
	for _, a := range c.Args {
		if strings.Contains(a, "s3cret") {
			t.Errorf("the token is on the command line: %v", c.Args)
		}
	}
	i := slices.Index(c.Args, "--record")
	if i < 0 || c.Args[0] != "intercept" || c.Args[1] != "agent" {
		t.Fatalf("args %v", c.Args)
	}
	var back record.Record
	if err := json.Unmarshal([]byte(c.Args[i+1]), &back); err != nil || back.Name != rec.Name || len(back.Ports) != 3 {
		t.Errorf("--record does not round-trip: %v %+v", err, back)
	}
	for _, a := range []string{"--listen-host=", "--control", ":7070", "-v"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args lack %q: %v", a, c.Args)
		}
	}
	if slices.Contains(c.Args, "--embedded") {
		t.Errorf("in-cluster agent started with --embedded")
	}
	rb := set.RoleBinding
	if rb.RoleRef.Name != set.Role.Name || rb.Subjects[0].Name != set.ServiceAccount.Name || rb.Subjects[0].Namespace != "shop" {
		t.Errorf("binding %+v", rb)
	}
}

func TestObjectsLowPortAndControlCollision(t *testing.T) {
	rec := testRecord()
	rec.Ports = []record.Port{{Port: 80, TargetPort: 80}, {Port: 7070, TargetPort: 7070}, {Port: 7071, TargetPort: 7071}}
	set, err := Objects(rec, "t", Options{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	if got := namedPort(set.Pod, ControlPortName); got != 7072 {
		t.Errorf("control port %d, want 7072 (7070 and 7071 are target ports)", got)
	}
	if !slices.Contains(set.Pod.Spec.Containers[0].Args, ":7072") {
		t.Errorf("args do not follow the control port: %v", set.Pod.Spec.Containers[0].Args)
	}
	sc := set.Pod.Spec.SecurityContext.Sysctls
	if len(sc) != 1 || sc[0].Name != "net.ipv4.ip_unprivileged_port_start" || sc[0].Value != "0" {
		t.Errorf("a non-root agent on port 80 needs the unprivileged-port sysctl: %v", sc)
	}
}

func TestObjectsRefusesIncompleteInput(t *testing.T) {
	rec := testRecord()
	if _, err := Objects(rec, "t", Options{}); err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("no image: %v", err)
	}
	if _, err := Objects(rec, "", Options{Image: "i"}); err == nil {
		t.Error("empty token accepted")
	}
	rec.Lease = ""
	if _, err := Objects(rec, "t", Options{Image: "i"}); err == nil || !strings.Contains(err.Error(), "lease") {
		t.Errorf("no lease: %v", err)
	}
}

func TestLaunchAppliesOwnedObjectsAndKillRemovesThem(t *testing.T) {
	rec := testRecord()
	ctx := context.Background()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: rec.Agent, Namespace: "shop", UID: "lease-uid"}}
	cs := fake.NewClientset(lease)
	l := &Launcher{Client: cs, Options: Options{Image: "img"}}
	kill, err := l.Launch(ctx, rec, "tok")
	if err != nil {
		t.Fatal(err)
	}
	// Launching again (a retried start) applies the same objects.
	if _, err := l.Launch(ctx, rec, "tok"); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	pod, err := cs.CoreV1().Pods("shop").Get(ctx, rec.AgentPod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(kind string, m metav1.Object) {
		t.Helper()
		refs := m.GetOwnerReferences()
		if len(refs) != 1 || refs[0].Kind != "Lease" || refs[0].UID != "lease-uid" || refs[0].Name != rec.Agent {
			t.Errorf("%s owners %+v, want the agent Lease", kind, refs)
		}
	}
	check("pod", pod)
	sa, err := cs.CoreV1().ServiceAccounts("shop").Get(ctx, rec.Agent, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("serviceaccount", sa)
	sec, err := cs.CoreV1().Secrets("shop").Get(ctx, rec.Agent, metav1.GetOptions{})
	if err != nil || string(sec.Data[TokenKey]) != "tok" {
		t.Fatalf("secret: %v %v", err, sec)
	}
	role, err := cs.RbacV1().Roles("shop").Get(ctx, rec.Agent, metav1.GetOptions{})
	if err != nil || len(role.Rules) == 0 {
		t.Fatalf("role: %v", err)
	}
	if _, err := cs.RbacV1().RoleBindings("shop").Get(ctx, rec.Agent, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	kill()
	for _, list := range []func() (runtime.Object, error){
		func() (runtime.Object, error) { return cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}) },
		func() (runtime.Object, error) { return cs.CoreV1().Secrets("shop").List(ctx, metav1.ListOptions{}) },
		func() (runtime.Object, error) {
			return cs.CoreV1().ServiceAccounts("shop").List(ctx, metav1.ListOptions{})
		},
		func() (runtime.Object, error) { return cs.RbacV1().Roles("shop").List(ctx, metav1.ListOptions{}) },
		func() (runtime.Object, error) {
			return cs.RbacV1().RoleBindings("shop").List(ctx, metav1.ListOptions{})
		},
	} {
		o, err := list()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(mustItems(t, o)); n != 0 {
			t.Errorf("%T: %d left after kill", o, n)
		}
	}
	kill() // twice: nothing left is not an error
}

func mustItems(t *testing.T, o runtime.Object) []runtime.Object {
	t.Helper()
	items, err := apimeta.ExtractList(o)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestLaunchWithoutLeaseRefuses(t *testing.T) {
	rec := testRecord()
	cs := fake.NewClientset()
	l := &Launcher{Client: cs, Options: Options{Image: "img"}}
	if _, err := l.Launch(context.Background(), rec, "tok"); err == nil || !strings.Contains(err.Error(), "stopped while starting") {
		t.Fatalf("launch without lease: %v", err)
	}
	pods, _ := cs.CoreV1().Pods("shop").List(context.Background(), metav1.ListOptions{})
	if len(pods.Items) != 0 {
		t.Error("a pod was created without its owner Lease")
	}
}
