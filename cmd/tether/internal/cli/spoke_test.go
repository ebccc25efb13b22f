package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeState records a workbench of a hub and two spokes without making
// any cluster, so the refusals can be checked without starting one.
func (e env) writeState(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(e.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := `{"version":1,"provider":"embedded","clusters":[
  {"name":"hub","role":"hub","provider":"embedded","endpoint":"","kubeconfig":"","created":"2026-01-01T00:00:00Z"},
  {"name":"spoke-1","role":"spoke","provider":"embedded","endpoint":"","kubeconfig":"","created":"2026-01-01T00:00:00Z"},
  {"name":"spoke-2","role":"spoke","provider":"embedded","endpoint":"","kubeconfig":"","created":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(e.stateDir, "state.json"), []byte(st), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSpokeRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		up   bool // a workbench is recorded
		args []string
		want []string
	}{
		{"add without a name", true, []string{"spoke", "add"}, []string{"give one spoke name", "tether spoke add <name>", "got 0"}},
		{"add two names", true, []string{"spoke", "add", "a", "b"}, []string{"give one spoke name", "got 2"}},
		{"remove without a name", true, []string{"spoke", "remove"}, []string{"tether spoke remove <name>"}},
		{"add the hub", true, []string{"spoke", "add", "hub"}, []string{`"hub"`, "name of the hub"}},
		{"add an existing spoke", true, []string{"spoke", "add", "spoke-2"}, []string{`"spoke-2"`, "has it already", "spoke-1, spoke-2"}},
		{"add a bad name", true, []string{"spoke", "add", "Spoke_3"}, []string{`"Spoke_3"`, "not DNS-safe"}},
		{"remove the hub", true, []string{"spoke", "remove", "hub"}, []string{`"hub"`, "it is the hub", "tether down"}},
		{"remove an unknown spoke", true, []string{"spoke", "rm", "spoke-9"}, []string{`"spoke-9"`, "no spoke of that name", "spoke-1, spoke-2"}},
		{"add without a workbench", false, []string{"spoke", "add", "spoke-3"}, []string{`"spoke-3"`, "no clusters", "tether up"}},
		{"remove without a workbench", false, []string{"spoke", "remove", "spoke-1"}, []string{`"spoke-1"`, "no clusters", "tether up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.up {
				e.writeState(t)
			}
			var before []byte
			if tt.up {
				before, _ = os.ReadFile(filepath.Join(e.stateDir, "state.json"))
			}
			_, _, err := e.run(t, tt.args...)
			if err == nil {
				t.Fatalf("%v succeeded", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.up {
				after, _ := os.ReadFile(filepath.Join(e.stateDir, "state.json"))
				if string(before) != string(after) {
					t.Error("a refused spoke change rewrote the record")
				}
			} else {
				e.assertNothingMade(t)
			}
			if _, err := os.Stat(e.kubeconfig); !os.IsNotExist(err) {
				t.Errorf("a refused spoke change touched the kubeconfig: %v", err)
			}
		})
	}
}
