package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/intercept"
)

// TestHint checks that each cause a library marks gets the hint a user
// types, wherever it sits in the chain, and that the cause stays findable.
func TestHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no cause", errors.New("boom"), "boom"},
		{"hub", fmt.Errorf("cannot remove %q: %w", "hub", cluster.ErrIsHub),
			`cannot remove "hub": it is the hub, which every spoke depends on; ` + "`tether down` removes the whole workbench"},
		{"no clusters", fmt.Errorf("cannot add spoke %q: %w", "s", &cluster.NoClustersError{StateDir: "/st"}),
			`cannot add spoke "s": the workbench in /st has no clusters; run ` + "`tether up` first"},
		{"no CA", cluster.ErrNoCA, "the workbench has no CA yet: run `tether up` first"},
		{"unknown cluster", fmt.Errorf("kube: %w", &cluster.UnknownClusterError{Name: "x", StateDir: "/st"}),
			`kube: no cluster "x" in the workbench (/st): run ` + "`tether up` or `tether status`"},
		{"provider switch", &cluster.ProviderSwitchError{StateDir: "/st", Recorded: "kind", Requested: "embedded"},
			"the workbench in /st runs on the kind provider, not embedded: run `tether down` before switching to embedded"},
		{"engine", fmt.Errorf("the kind provider needs a Docker engine: %w", &cluster.DockerEngineError{Answer: "exit status 1"}),
			"the kind provider needs a Docker engine: no Docker engine answers (docker version: exit status 1): start Docker, or use --provider embedded"},
		{"kind cluster gone", fmt.Errorf("up: %w", &cluster.RepairError{Err: errors.New(`kind cluster "x" has no nodes`), Down: true, Up: true}),
			`up: kind cluster "x" has no nodes; ` + "`tether down` then `tether up` recreates it"},
		{"damaged state", &cluster.StateError{Path: "/st/state.json", Err: errors.New("bad json")},
			"workbench state /st/state.json is damaged (bad json): run `tether down` to clean up, or remove the file"},
		{"build needs root", fmt.Errorf("prepare: %w", &cluster.CannotBuildError{Err: errors.New("building the kind node image runs debootstrap, which needs root"), NeedsRoot: true}),
			"prepare: building the kind node image runs debootstrap, which needs root: run `sudo tether prepare --provider kind` once (the result is cached), or give --node-image"},
		{"node image for kind only", &cluster.FieldError{Field: "kind.nodeImage", Provider: "kind", Err: errors.New(`kind.nodeImage "k" is for the kind provider, and the provider is embedded: drop it, or choose the kind provider`)},
			`kind.nodeImage "k" is for the kind provider, and the provider is embedded: drop it, or choose the kind provider (--node-image on the command line; --provider kind chooses it)`},
		{"not up", fmt.Errorf("commit: %w", fleet.ErrNotUp), "commit: the GitOps system is not up: run `tether up`"},
		{"damaged", &fleet.DamagedError{Err: errors.New("fleet state f is damaged (x)")},
			"fleet state f is damaged (x): run `tether down` and `tether up` again"},
		{"removal interrupted", &fleet.IncompleteError{Err: errors.New("cannot remove spoke s: boom; interrupted"), Up: true, RemoveSpoke: "s"},
			"cannot remove spoke s: boom; interrupted: run `tether up`, then `tether spoke remove s` again"},
		{"removal undone", &fleet.IncompleteError{Err: errors.New("cannot remove spoke s: boom"), RemoveSpoke: "s"},
			"cannot remove spoke s: boom; fix the cause and run `tether spoke remove s` again"},
		{"nested causes", &fleet.IncompleteError{Err: fmt.Errorf("spoke s is removed, but: %w", fleet.ErrNotUp), Up: true},
			"spoke s is removed, but: the GitOps system is not up; run `tether up` to bring it back"},
		{"field by its flag", fmt.Errorf("start: %w", &intercept.FieldError{Field: "To", Before: "nothing is listening at ", After: " 127.0.0.1:1: start your local process first"}),
			"start: nothing is listening at --to 127.0.0.1:1: start your local process first"},
		{"name taken", &intercept.ConflictError{Names: []string{"web-80"}, Err: &intercept.FieldError{Field: "Name", Before: `an intercept named "web-80" already exists in hub/shop: choose another `}},
			`an intercept named "web-80" already exists in hub/shop: choose another --name (stop it first: tether intercept stop web-80)`},
		{"personal intercepts in the way", &intercept.ConflictError{Names: []string{"a", "b"}, Err: errors.New("port 80 has personal intercepts (a, b)")},
			"port 80 has personal intercepts (a, b) (stop them first: tether intercept stop a; tether intercept stop b)"},
		{"no agent image", fmt.Errorf("tether's image (%w: no deployment)", intercept.ErrNoAgentImage),
			"tether's image (no traffic-agent image: no deployment): run `tether up` first, or pass --agent-image with a tether image its nodes can pull"},
		{"joined contexts", errors.Join(
			&cluster.FieldError{Field: "context", Cluster: "hub", Err: errors.New("needs a context")},
			&cluster.FieldError{Field: "context", Cluster: "s", Err: errors.New("needs a context")}),
			"cluster \"hub\": needs a context\ncluster \"s\": needs a context; pass --context hub=<context>; pass --context s=<context>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hint(tt.err)
			if got.Error() != tt.want {
				t.Errorf("hint(%v)\n got %q\nwant %q", tt.err, got.Error(), tt.want)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("hint(%v) hides its cause", tt.err)
			}
		})
	}
	if hint(nil) != nil {
		t.Error("hint(nil) != nil")
	}
}

// TestHintsReachTheUser runs commands whose refusal comes from a library
// and checks the printed error names the flag and the command to type.
func TestHintsReachTheUser(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"intercept", "start", "hub/default/web", "--to", "127.0.0.1:1"}, []string{"--port is required: the Service port to intercept"}},
		{[]string{"intercept", "start", "hub/default/web", "--port", "80", "--to", "127.0.0.1:1"}, []string{`no cluster "hub": the workbench has no clusters; run ` + "`tether up` first"}},
		{[]string{"up", "--provider", "existing", "--spokes", "0"}, []string{`cluster "hub": the existing provider needs a kubeconfig context`, "; pass --context hub=<context>"}},
		{[]string{"up", "--node-image", "Not An Image"}, []string{`kind.nodeImage "Not An Image" is not an image reference`, "--node-image on the command line"}},
	} {
		e := newEnv(t)
		_, _, err := e.run(t, tc.args...)
		if err == nil {
			t.Fatalf("tether %v succeeded", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("tether %v: %q lacks %q", tc.args, err, w)
			}
		}
	}
}

// TestDoctorHintsProviders: doctor prints a provider's refusal with the
// hint, as the docs show it.
func TestDoctorHintsProviders(t *testing.T) {
	engine := &cluster.DockerEngineError{Answer: "Cannot connect to the Docker daemon"}
	var b strings.Builder
	printProviders(&b, []cluster.Check{{Provider: cluster.ProviderKind, Detail: engine.Error(), Err: engine}})
	want := "✗ kind      no Docker engine answers (docker version: Cannot connect to the Docker daemon): start Docker, or use --provider embedded\n"
	if b.String() != want {
		t.Errorf("doctor printed\n%q\nwant\n%q", b.String(), want)
	}
}
