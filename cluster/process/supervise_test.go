package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the supervisor and its child, chosen by
// testRole, so the tests supervise real processes with real signals.
const testRole = "TETHER_PROCESS_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(testRole) {
	case "child":
		// Says which start this is, then runs until killed.
		fmt.Printf("child started with %s=%s\n", RestartsEnv, os.Getenv(RestartsEnv))
		time.Sleep(time.Hour)
		os.Exit(0)
	case "supervisor":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		os.Setenv(testRole, "child")
		err := Supervise(ctx, Spec{Name: "child", Bin: os.Args[0], StatusPath: os.Getenv("STATUS_PATH"),
			FirstBackoff: 100 * time.Millisecond}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startSupervisor runs the test binary as a supervisor of itself the way
// fleet runs `tether supervise`: detached, in its own process group.
func startSupervisor(t *testing.T) (Record, string, string) {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "child.log")
	statusPath := StatusPath(logPath)
	rec, _, err := Start("supervisor", os.Args[0], []string{"-test.run=^$"}, logPath,
		[]string{testRole + "=supervisor", "STATUS_PATH=" + statusPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(context.Background(), rec, 5*time.Second) })
	return rec, statusPath, logPath
}

// waitStatus polls the status file until ok accepts it.
func waitStatus(t *testing.T, path, what string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last Status
	var err error
	for time.Now().Before(deadline) {
		if last, err = ReadStatus(path); err == nil && ok(last) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: last status %+v, err %v", what, last, err)
	return last
}

func waitLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, _ := os.ReadFile(path)
		if strings.Contains(string(log), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gone(t *testing.T, what string, p Record) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for Alive(p) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs", what, p.PID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSuperviseRestartsAKilledChild(t *testing.T) {
	sup, statusPath, logPath := startSupervisor(t)
	first := waitStatus(t, statusPath, "the first child runs", func(s Status) bool { return s.ChildAlive() })
	if first.Restarts != 0 || first.LastExit != nil {
		t.Fatalf("first start: %+v, want no restarts and no last exit", first)
	}
	for n := 1; n <= 2; n++ {
		// Each child says which start it is before it is killed.
		waitLog(t, logPath, fmt.Sprintf("child started with %s=%d", RestartsEnv, n-1))
		before, _ := ReadStatus(statusPath)
		if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s := waitStatus(t, statusPath, fmt.Sprintf("restart %d", n), func(s Status) bool {
			return s.ChildAlive() && s.PID != before.PID
		})
		if s.Restarts != n {
			t.Fatalf("after %d kills: restarts %d, want %d", n, s.Restarts, n)
		}
		if s.LastExit == nil || s.LastExit.Signal != "killed" || s.LastExit.Code != -1 {
			t.Fatalf("after %d kills: last exit %+v, want signal killed", n, s.LastExit)
		}
		if Alive(Record{PID: before.PID, StartTime: before.StartTime}) {
			t.Fatalf("the killed child %d still runs", before.PID)
		}
	}
	if !Alive(sup) {
		t.Fatal("the supervisor exited")
	}
	waitLog(t, logPath, fmt.Sprintf("child started with %s=2", RestartsEnv))
}

func TestStopEndsSupervisorAndChildWithoutRestart(t *testing.T) {
	sup, statusPath, _ := startSupervisor(t)
	s := waitStatus(t, statusPath, "the child runs", func(s Status) bool { return s.ChildAlive() })
	if err := Stop(context.Background(), sup, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	gone(t, "the child", Record{PID: s.PID, StartTime: s.StartTime})
	after, err := ReadStatus(statusPath)
	if err != nil {
		t.Fatal(err)
	}
	if after.PID != s.PID || after.Restarts != 0 {
		t.Fatalf("status after stop %+v: the supervisor restarted its child (was %+v)", after, s)
	}
}

func TestChildDiesWithItsSupervisor(t *testing.T) {
	sup, statusPath, _ := startSupervisor(t)
	s := waitStatus(t, statusPath, "the child runs", func(s Status) bool { return s.ChildAlive() })
	// The supervisor alone: the group signal Stop sends would reach the
	// child directly and prove nothing.
	if err := syscall.Kill(sup.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone(t, "the supervisor", sup)
	gone(t, "the child of a SIGKILLed supervisor", Record{PID: s.PID, StartTime: s.StartTime})
}

func TestSuperviseBacksOffAndStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	statusPath := filepath.Join(dir, "crash.status.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	spec := Spec{Name: "crash", Bin: "/bin/sh", Args: []string{"-c", "exit 3"}, StatusPath: statusPath,
		FirstBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
	t0 := time.Now()
	go func() { done <- Supervise(ctx, spec, slog.New(slog.DiscardHandler)) }()
	s := waitStatus(t, statusPath, "four crashes", func(s Status) bool { return s.Restarts >= 4 })
	// Waits of 20, 40, 80 and 80 ms at least separate the first start from
	// the fifth.
	if el := time.Since(t0); el < 220*time.Millisecond {
		t.Errorf("four restarts after %s: the backoff did not grow", el)
	}
	if s.LastExit == nil || s.LastExit.Code != 3 || s.LastExit.Signal != "" {
		t.Fatalf("last exit %+v, want code 3", s.LastExit)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Supervise did not return after its context ended")
	}
}

func TestSuperviseFailsWhenTheFirstStartFails(t *testing.T) {
	spec := Spec{Name: "missing", Bin: filepath.Join(t.TempDir(), "no-such-binary"), StatusPath: filepath.Join(t.TempDir(), "s.json")}
	err := Supervise(context.Background(), spec, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "no-such-binary") {
		t.Fatalf("err %v, want one naming the missing binary", err)
	}
}
