package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/scenarios/harness"
)

// fakeDocker records docker commands and answers them from a function.
type fakeDocker struct {
	calls  [][]string
	answer func(args []string) (stdout, stderr string, err error)
}

func (f *fakeDocker) run(_ context.Context, args ...string) ([]byte, []byte, error) {
	f.calls = append(f.calls, args)
	if f.answer == nil {
		return nil, nil, nil
	}
	out, errOut, err := f.answer(args)
	return []byte(out), []byte(errOut), err
}

func TestKindCutRules(t *testing.T) {
	rules := kindCutRules("172.18.0.3", 30443, "tether scenario x")
	if len(rules) != 2 {
		t.Fatalf("want a rule each way, got %v", rules)
	}
	out, back := strings.Join(rules[0], " "), strings.Join(rules[1], " ")
	for _, want := range []string{"-p tcp -d 172.18.0.3 --dport 30443", "-j REJECT --reject-with tcp-reset", "--comment tether scenario x"} {
		if !strings.Contains(out, want) {
			t.Errorf("agent-to-principal rule %q lacks %q", out, want)
		}
	}
	for _, want := range []string{"-p tcp -s 172.18.0.3 --sport 30443", "-j REJECT --reject-with tcp-reset"} {
		if !strings.Contains(back, want) {
			t.Errorf("principal-to-agent rule %q lacks %q", back, want)
		}
	}
}

func TestKindCutInsertsOnceAndRemovesWhatItInserted(t *testing.T) {
	ctx := context.Background()
	d := &fakeDocker{}
	var seen, held int
	c := &kindCut{docker: d.run, node: "tether-abc123-spoke-1-control-plane", rules: kindCutRules("172.18.0.3", 30443, "c")}
	c.inserted = make([]bool, len(c.rules))
	c.cutSeen = func(context.Context) error { seen++; return nil }
	c.held = func(context.Context) error { held++; return nil }

	if err := c.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if len(d.calls) != 2 || seen != 2 {
		t.Fatalf("two cuts: want each rule inserted once and the cut checked each time, got %d calls, %d checks: %v", len(d.calls), seen, d.calls)
	}
	for i, call := range d.calls {
		want := append([]string{"exec", c.node, "iptables", "-w", "-I", "FORWARD", "1"}, c.rules[i]...)
		if !slices.Equal(call, want) {
			t.Errorf("insert %d: got %v, want %v", i, call, want)
		}
	}
	d.calls = nil
	if err := c.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if held != 1 || len(d.calls) != 2 || !slices.Contains(d.calls[0], "-D") || !slices.Equal(d.calls[0][6:], c.rules[1]) {
		t.Fatalf("restore: want the hold checked and both rules deleted last-first, got %d checks, %v", held, d.calls)
	}
	d.calls = nil
	if err := c.Close(ctx); err != nil || len(d.calls) != 0 {
		t.Fatalf("close after restore: want nothing to do, got %v, %v", err, d.calls)
	}
}

func TestKindCutRestoreReportsABrokenCutAfterRemovingTheRules(t *testing.T) {
	ctx := context.Background()
	d := &fakeDocker{}
	c := &kindCut{docker: d.run, node: "n-control-plane", rules: kindCutRules("172.18.0.3", 30443, "c")}
	c.inserted = make([]bool, len(c.rules))
	c.held = func(context.Context) error { return errors.New("the cut did not hold") }
	if err := c.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	d.calls = nil
	if err := c.Restore(ctx); err == nil || !strings.Contains(err.Error(), "did not hold") {
		t.Fatalf("want the broken cut reported, got %v", err)
	}
	if len(d.calls) != 2 || slices.Contains(c.inserted, true) {
		t.Fatalf("the rules must go even so: %v, inserted %v", d.calls, c.inserted)
	}
}

func TestKindCutPartialInsertAndVanishedRules(t *testing.T) {
	ctx := context.Background()
	d := &fakeDocker{}
	inserts := 0
	d.answer = func(args []string) (string, string, error) {
		switch {
		case slices.Contains(args, "-I"):
			inserts++
			if inserts == 2 {
				return "", "iptables: No chain/target/match by that name.", errors.New("exit status 1")
			}
		case slices.Contains(args, "-D"):
			return "", "iptables: Bad rule (does a matching rule exist in that chain?).", errors.New("exit status 1")
		}
		return "", "", nil
	}
	c := &kindCut{docker: d.run, node: "n-control-plane", rules: kindCutRules("172.18.0.3", 30443, "c")}
	c.inserted = make([]bool, len(c.rules))
	err := c.Cut(ctx)
	if err == nil || !strings.Contains(err.Error(), "No chain/target/match") || !strings.Contains(err.Error(), "docker exec n-control-plane iptables") {
		t.Fatalf("a failed insert: want the command and iptables' words, got %v", err)
	}
	if !slices.Equal(c.inserted, []bool{true, false}) {
		t.Fatalf("inserted %v, want only the first rule", c.inserted)
	}
	d.calls = nil
	if err := c.Close(ctx); err != nil {
		t.Fatalf("a rule already gone is not an error: %v", err)
	}
	if len(d.calls) != 1 || slices.Contains(c.inserted, true) {
		t.Fatalf("close: want one delete (the inserted rule), got %v, inserted %v", d.calls, c.inserted)
	}

	d.answer = func([]string) (string, string, error) { return "", "permission denied", errors.New("exit status 1") }
	c.inserted[0] = true
	if err := c.Close(ctx); err == nil || !strings.Contains(err.Error(), "iptables -S FORWARD") || !c.inserted[0] {
		t.Fatalf("a failed delete: want an error saying where to look and the rule still counted, got %v, %v", err, c.inserted)
	}
}

const inspectJSON = `[{"Name":"/tether-abc123-spoke-1-control-plane","State":{"Running":%RUNNING%},
 "Config":{"Labels":{"io.x-k8s.kind.cluster":"%LABEL%","io.x-k8s.kind.role":"control-plane"}},
 "NetworkSettings":{"Networks":{"kind":{"IPAddress":"172.18.0.4","GlobalIPv6Address":"fc00:f853:ccd:e793::4"},"other":{"IPAddress":"10.9.0.2"}}}}]`

func TestInspectKindNode(t *testing.T) {
	ctx := context.Background()
	const node = "tether-abc123-spoke-1-control-plane"
	answer := func(running, label string) func([]string) (string, string, error) {
		return func(args []string) (string, string, error) {
			if !slices.Equal(args, []string{"inspect", "--type", "container", node}) {
				t.Errorf("unexpected docker %v", args)
			}
			return strings.NewReplacer("%RUNNING%", running, "%LABEL%", label).Replace(inspectJSON), "", nil
		}
	}
	d := &fakeDocker{answer: answer("true", "tether-abc123-spoke-1")}
	info, err := inspectKindNode(ctx, d.run, node)
	if err != nil {
		t.Fatal(err)
	}
	if info.Networks["kind"] != "172.18.0.4" || info.Networks["other"] != "10.9.0.2" {
		t.Fatalf("networks %v", info.Networks)
	}
	if ip, err := info.addressFor(nil); err != nil || ip != "172.18.0.4" {
		t.Errorf("address from the host: %q, %v; want the kind network's", ip, err)
	}
	hub := kindNodeInfo{Name: "tether-abc123-hub-control-plane", Networks: map[string]string{"other": "10.9.0.3"}}
	if ip, err := hub.addressFor(&info); err != nil || ip != "10.9.0.3" {
		t.Errorf("address on the shared network: %q, %v", ip, err)
	}
	lonely := kindNodeInfo{Name: "x-control-plane", Networks: map[string]string{"elsewhere": "10.1.0.2"}}
	if _, err := lonely.addressFor(&info); err == nil || !strings.Contains(err.Error(), "share no Docker network") {
		t.Errorf("no shared network: got %v", err)
	}

	d.answer = answer("true", "someone-else")
	if _, err := inspectKindNode(ctx, d.run, node); err == nil || !strings.Contains(err.Error(), "leaves it alone") {
		t.Errorf("a container of another kind cluster must be refused, got %v", err)
	}
	d.answer = answer("false", "tether-abc123-spoke-1")
	if _, err := inspectKindNode(ctx, d.run, node); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("a stopped node: got %v", err)
	}
	d.answer = func([]string) (string, string, error) {
		return "", "Error: No such container: " + node, errors.New("exit status 1")
	}
	if _, err := inspectKindNode(ctx, d.run, node); err == nil || !strings.Contains(err.Error(), "No such container") {
		t.Errorf("a missing node: got %v", err)
	}
}

func TestKindNodeOf(t *testing.T) {
	c := cluster.Cluster{Name: "spoke-1", Provider: cluster.ProviderKind, InternalEndpoint: "https://tether-abc123-spoke-1-control-plane:6443"}
	if n, err := kindNodeOf(c); err != nil || n != "tether-abc123-spoke-1-control-plane" {
		t.Fatalf("got %q, %v", n, err)
	}
	c = cluster.Cluster{Name: "spoke-1", Provider: cluster.ProviderEmbedded, InternalEndpoint: "https://127.0.0.1:40001"}
	if _, err := kindNodeOf(c); err == nil {
		t.Fatal("an embedded cluster has no kind node")
	}
	c = cluster.Cluster{Name: "spoke-1", Provider: cluster.ProviderKind, InternalEndpoint: "https://tether-abc123-spoke-2-control-plane:6443"}
	if _, err := kindNodeOf(c); err == nil || !strings.Contains(err.Error(), "tether status") {
		t.Fatalf("another cluster's node: got %v", err)
	}
}

// The embedded proxy is a link like the kind cut, so the partition steps
// are the same on both providers.
func TestProxyLink(t *testing.T) {
	px, err := harness.NewProxy("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	var l link = proxyLink{px}
	ctx := context.Background()
	if err := l.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
