package fleet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/progress"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
)

// fakeHub is a hub with the objects a workbench leaves: namespaces (made by
// tether or not), Applications and Agent objects.
type fakeHub struct {
	h   hubSide
	cs  *fake.Clientset
	dyn *dynamicfake.FakeDynamicClient
}

func newFakeHub(t *testing.T, tetherNS, userNS []string, apps map[string][]string, agents []string) fakeHub {
	t.Helper()
	var nss []runtime.Object
	for _, n := range append(tetherNS, cluster.SystemNamespace) {
		nss = append(nss, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{deploy.LabelManagedBy: managedBy}}})
	}
	for _, n := range userNS {
		nss = append(nss, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	var objs []runtime.Object
	for ns, names := range apps {
		for _, n := range names {
			objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Application",
				"metadata": map[string]any{"name": n, "namespace": ns},
			}})
		}
	}
	for _, n := range agents {
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Agent",
			"metadata": map[string]any{"name": n, "namespace": cluster.SystemNamespace},
		}})
	}
	cs := fake.NewClientset(nss...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		v1alpha1.ApplicationsResource: "ApplicationList",
		v1alpha1.AgentsResource:       "AgentList",
	}, objs...)
	return fakeHub{h: hubSide{cs: cs, dyn: dyn, context: "tether-hub", namespaceGone: 5 * time.Second}, cs: cs, dyn: dyn}
}

func (f fakeHub) namespace(t *testing.T, name string) bool {
	t.Helper()
	_, err := f.cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func (f fakeHub) apps(t *testing.T, ns string) []string {
	t.Helper()
	l, err := f.dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range l.Items {
		out = append(out, a.GetName())
	}
	return out
}

func (f fakeHub) agents(t *testing.T) []string {
	t.Helper()
	l, err := f.dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range l.Items {
		out = append(out, a.GetName())
	}
	slices.Sort(out)
	return out
}

// The spokes to clean up are those something still holds (the hub, the
// previous record, the TLS folder) and that are not live; never the hub,
// tether's namespace or a user's namespace of Applications tether never
// knew as a spoke.
func TestLeftSpokes(t *testing.T) {
	seen := hubSpokes{
		Namespaces: map[string]bool{"spoke-1": true, "spoke-2": true, "eu": true},
		Apps:       map[string]int{"spoke-1": 1, "team": 3, "eu": 1},
		Agents:     map[string]bool{"spoke-2": true, "eu": true, "old": true, "hub": true},
	}
	got := leftSpokes("hub", []string{"eu", "us"}, []string{"spoke-1", "spoke-2", "us"}, []string{"spoke-4", "us", cluster.SystemNamespace}, seen)
	want := []string{"old", "spoke-1", "spoke-2", "spoke-4"}
	if !slices.Equal(got, want) {
		t.Errorf("leftSpokes = %v, want %v", got, want)
	}
	if got := leftSpokes("hub", []string{"spoke-1", "spoke-2"}, []string{"spoke-1", "spoke-2"}, nil,
		hubSpokes{Namespaces: map[string]bool{"spoke-1": true}, Agents: map[string]bool{"spoke-2": true}}); len(got) != 0 {
		t.Errorf("a fleet at rest has leftovers %v", got)
	}
}

// prune, as Up runs it: the hub keeps exactly the live spokes' objects and
// the TLS folder only theirs and the principal's.
func TestPruneLeavesOnlyTheLiveSpokes(t *testing.T) {
	wb, err := cluster.New(cluster.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"principal", "eu", "us", "spoke-1", "spoke-2"} {
		if err := os.MkdirAll(tlsDir(wb, n), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f := newFakeHub(t, []string{"spoke-1", "spoke-2", "eu", "us"}, []string{"team"},
		map[string][]string{"spoke-1": {"sample"}, "spoke-2": {"sample"}, "eu": {"sample"}, "us": {"sample"}, "team": {"x"}},
		[]string{"spoke-1", "spoke-2", "eu"})
	rep := &recordingReporter{}
	opts := Options{Workbench: wb, Progress: rep}
	if err := f.h.prune(context.Background(), opts, "hub", []string{"eu", "us"}, []string{"spoke-1", "spoke-2"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"spoke-1", "spoke-2"} {
		if f.namespace(t, n) {
			t.Errorf("namespace %s of a spoke that left is still on the hub", n)
		}
		if _, err := os.Stat(tlsDir(wb, n)); !os.IsNotExist(err) {
			t.Errorf("TLS material of %s is still there (%v)", n, err)
		}
	}
	for _, n := range []string{"eu", "us", "team"} {
		if !f.namespace(t, n) {
			t.Errorf("namespace %s was deleted", n)
		}
	}
	if got := f.apps(t, "team"); len(got) != 1 {
		t.Errorf("a user's namespace of Applications lost them: %v", got)
	}
	if got := f.agents(t); !slices.Equal(got, []string{"eu"}) {
		t.Errorf("Agents = %v, want only the live eu", got)
	}
	for _, n := range []string{"principal", "eu", "us"} {
		if _, err := os.Stat(tlsDir(wb, n)); err != nil {
			t.Errorf("TLS material of %s: %v", n, err)
		}
	}
	if len(rep.titles) != 1 || !strings.Contains(rep.titles[0], "spoke-1, spoke-2") {
		t.Errorf("progress = %q; want one step naming spoke-1, spoke-2", rep.titles)
	}

	// At rest there is nothing to do and nothing is announced.
	rep.titles = nil
	if err := f.h.prune(context.Background(), opts, "hub", []string{"eu", "us"}, []string{"eu", "us"}); err != nil {
		t.Fatal(err)
	}
	if len(rep.titles) != 0 {
		t.Errorf("a fleet at rest announced %q", rep.titles)
	}
}

func TestHoldsSpoke(t *testing.T) {
	fst := &State{Spokes: []string{"spoke-1"}}
	seen := hubSpokes{Namespaces: map[string]bool{"ns": true}, Apps: map[string]int{"apps": 1}, Agents: map[string]bool{"agent": true}}
	for _, n := range []string{"spoke-1", "tls", "ns", "apps", "agent"} {
		if !holdsSpoke(n, fst, []string{"tls"}, seen) {
			t.Errorf("%s: something is held of it, yet holdsSpoke says no", n)
		}
	}
	if holdsSpoke("typo", fst, []string{"tls"}, seen) {
		t.Error("a name nothing holds is a ghost")
	}
}

func TestPreviousAddrs(t *testing.T) {
	if got := previousAddrs(nil); len(got) != 5 || slices.ContainsFunc(got, func(s string) bool { return s != "" }) {
		t.Errorf("previousAddrs(nil) = %q", got)
	}
	st := &State{Provider: cluster.ProviderEmbedded, GitURL: "http://127.0.0.1:1001/sample.git", Principal: "127.0.0.1:1002",
		PrincipalHTTP: "127.0.0.1:1003", PrincipalService: "127.0.0.1:1004", PrincipalServiceHTTP: "127.0.0.1:1005"}
	want := []string{"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", "127.0.0.1:1004", "127.0.0.1:1005"}
	if got := previousAddrs(st); !slices.Equal(got, want) {
		t.Errorf("previousAddrs = %q, want %q", got, want)
	}
	// A record from before PrincipalHTTP was kept: that one is picked anew.
	st.PrincipalHTTP = ""
	if got := previousAddrs(st); got[2] != "" || got[3] != want[3] {
		t.Errorf("previousAddrs of an older record = %q", got)
	}
	st.Provider = cluster.ProviderKind
	if got := previousAddrs(st); slices.ContainsFunc(got, func(s string) bool { return s != "" }) {
		t.Errorf("kind's addresses are NodePorts, not loopback ones to keep: %q", got)
	}
}

// removalLog records the steps a spokeRemoval ran, in order.
type removalLog struct{ steps []string }

func (l *removalLog) step(name string, err error) func(context.Context) error {
	return func(context.Context) error { l.steps = append(l.steps, name); return err }
}

func TestSpokeRemovalBringsTheFleetBackAfterAFailure(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name           string
		stop, apps, rm error
		wantSteps      []string
		wantInErr      []string
	}{
		{"agent does not stop", boom, nil, nil,
			[]string{"stop", "up"}, []string{"spoke-1", "stop the agent", "boom", "back up"}},
		{"hub objects not deleted", nil, boom, nil,
			[]string{"stop", "apps", "up"}, []string{"spoke-1", "boom", "back up"}},
		{"cluster not removed", nil, nil, boom,
			[]string{"stop", "apps", "rm", "up"}, []string{"spoke-1", "boom", "back up"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &removalLog{}
			r := spokeRemoval{
				name:          "spoke-1",
				stopAgents:    []func(context.Context) error{l.step("stop", tc.stop)},
				deleteApps:    l.step("apps", tc.apps),
				removeCluster: l.step("rm", tc.rm),
				fleetUp:       l.step("up", nil),
			}
			err := r.run(context.Background())
			if !errors.Is(err, boom) {
				t.Fatalf("run() = %v; want the cause", err)
			}
			for _, want := range tc.wantInErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			// The command says to run `tether spoke remove spoke-1` again.
			var inc *IncompleteError
			if !errors.As(err, &inc) || inc.RemoveSpoke != "spoke-1" || inc.Up {
				t.Errorf("error %v is not an IncompleteError to remove spoke-1 again", err)
			}
			if strings.Join(l.steps, ",") != strings.Join(tc.wantSteps, ",") {
				t.Errorf("steps = %v, want %v", l.steps, tc.wantSteps)
			}
		})
	}
}

func TestSpokeRemovalSaysWhatToDoWhenTheFleetDoesNotComeBack(t *testing.T) {
	l := &removalLog{}
	r := spokeRemoval{
		name:          "spoke-1",
		deleteApps:    l.step("apps", errors.New("boom")),
		removeCluster: l.step("rm", nil),
		fleetUp:       l.step("up", errors.New("no principal")),
	}
	err := r.run(context.Background())
	var inc *IncompleteError
	if err == nil || !strings.Contains(err.Error(), "no principal") || !errors.As(err, &inc) || !inc.Up || inc.RemoveSpoke != "spoke-1" {
		t.Fatalf("run() = %v; want both failures and an IncompleteError (up, then remove spoke-1 again)", err)
	}
}

func TestSpokeRemovalRunsAllStepsWhenNothingFails(t *testing.T) {
	l := &removalLog{}
	r := spokeRemoval{
		name:          "spoke-1",
		stopAgents:    []func(context.Context) error{l.step("stop", nil)},
		deleteApps:    l.step("apps", nil),
		removeCluster: l.step("rm", nil),
		fleetUp:       l.step("up", nil),
	}
	if err := r.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.steps, ","); got != "stop,apps,rm,up" {
		t.Errorf("steps = %s", got)
	}
	// Without the GitOps system only the cluster goes, and its failure is
	// returned as is.
	l = &removalLog{}
	r = spokeRemoval{name: "spoke-1", removeCluster: l.step("rm", errors.New("boom"))}
	if err := r.run(context.Background()); err == nil || !strings.Contains(err.Error(), "spoke-1") {
		t.Errorf("run() = %v", err)
	}
}

// RemoveSpoke refuses a name nothing holds, and the hub, without touching
// anything; with no GitOps system recorded it does not ask the hub.
func TestRemoveSpokeRefusesUnknownNames(t *testing.T) {
	dir := t.TempDir()
	st := `{"version":1,"provider":"embedded","clusters":[
  {"name":"hub","role":"hub","provider":"embedded","endpoint":"","kubeconfig":"","created":"2026-01-01T00:00:00Z"},
  {"name":"spoke-1","role":"spoke","provider":"embedded","endpoint":"","kubeconfig":"","created":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(st), 0o600); err != nil {
		t.Fatal(err)
	}
	wb, err := cluster.New(cluster.Options{StateDir: dir, Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"spoke-9": {`"spoke-9"`, "no spoke of that name", "spoke-1"},
		"hub":     {`"hub"`, "it is the hub"},
	} {
		r, err := RemoveSpoke(context.Background(), Options{Workbench: wb, Bin: "tether"}, name)
		if err == nil {
			t.Fatalf("RemoveSpoke(%s) succeeded: %+v", name, r)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("RemoveSpoke(%s) = %v; want it to say %q", name, err, w)
			}
		}
	}
}

// recordingReporter keeps the titles of the steps started.
type recordingReporter struct {
	mu     sync.Mutex
	titles []string
}

func (r *recordingReporter) Start(title string) progress.Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.titles = append(r.titles, title)
	return progress.Discard().Start(title)
}
