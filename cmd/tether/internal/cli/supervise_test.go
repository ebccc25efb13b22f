package cli

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-dev/tether/cluster/process"
)

// The component's own flags after "--" reach it untouched (here sh's -c,
// which cobra would otherwise take for a flag of supervise), and the end
// of the command's context stops the component without a restart.
func TestSuperviseRunsTheCommandAfterDashes(t *testing.T) {
	status := filepath.Join(t.TempDir(), "c.status.json")
	cmd := New(io.Discard, io.Discard)
	cmd.SetArgs([]string{"supervise", "--name", "c", "--status-file", status, "--", "/bin/sh", "-c", "exec sleep 60"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var s process.Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if s, err = process.ReadStatus(status); err == nil && s.ChildAlive() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no child running: status %+v, err %v", s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("supervise did not return after its context ended")
	}
	if s.ChildAlive() {
		t.Errorf("child %d still runs after supervise returned", s.PID)
	}
	if after, _ := process.ReadStatus(status); after.Restarts != 0 || after.PID != s.PID {
		t.Errorf("status after stop %+v: the child was restarted", after)
	}
}
