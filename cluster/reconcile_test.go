package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The steps of up have names, each once, so a log or a wrapped error says
// which one ran or failed.
func TestUpStepsAreNamed(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range upSteps() {
		if s.name == "" || s.run == nil {
			t.Fatalf("step %+v has no name or no function", s)
		}
		if seen[s.name] {
			t.Errorf("two steps are named %q", s.name)
		}
		seen[s.name] = true
	}
}

// A step whose error says nothing of what up was doing is wrapped with the
// step's name; the kind clusters are not touched when the CA cannot be had.
func TestUpWrapsAStepsErrorWithItsName(t *testing.T) {
	wb, k := kindWorkbench(t, nil)
	if err := os.MkdirAll(wb.StateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	// A file where the CA's folder belongs: the CA cannot be made.
	if err := os.WriteFile(filepath.Join(wb.StateDir(), "pki"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Provider = ProviderKind
	_, err := wb.Up(context.Background(), cfg)
	if err == nil || !strings.HasPrefix(err.Error(), "load the workbench CA: ") {
		t.Fatalf("Up = %v, want an error naming the step that failed", err)
	}
	if len(k.ensured) != 0 {
		t.Errorf("clusters ensured without a CA: %q", k.ensured)
	}
}
