package cli

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tether-dev/tether/gitops/sample"
)

func TestSampleScaleRejectsBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sample", "scale"}, "give the replica count"},
		{[]string{"sample", "scale", "three"}, `replicas "three"`},
		{[]string{"sample", "scale", "--", "-1"}, "from 0 to 20"},
		{[]string{"sample", "scale", "2"}, "tether up"}, // no workbench here
	}
	for _, tt := range tests {
		e := newEnv(t)
		_, _, err := e.run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
}

// The sample's Deployment runs tether's image with TetherWorkload's args:
// they must name this command and flags it has.
func TestSampleWorkloadArgsAreSampleServe(t *testing.T) {
	args := sample.TetherWorkload("").Args
	root := New(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.CommandPath() != "tether sample serve" {
		t.Fatalf("%q runs %q", args, cmd.CommandPath())
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if got, _ := cmd.Flags().GetString("listen"); got != fmt.Sprintf(":%d", sample.ServerPort) {
		t.Errorf("--listen %q, want :%d", got, sample.ServerPort)
	}
}

func TestSampleServeRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.run(t, "sample", "serve", "extra"); err == nil || !strings.Contains(err.Error(), "unknown command") && !strings.Contains(err.Error(), "accepts 0 arg") {
		t.Errorf("an extra argument: %v", err)
	}
	if _, _, err := e.run(t, "sample", "serve", "--listen", "not an address"); err == nil || !strings.Contains(err.Error(), "sample server") {
		t.Errorf("a bad --listen: %v", err)
	}
}
