package process

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RestartsEnv is the environment variable a supervised component finds its
// restart count in (decimal, restarts before this start): a component may
// report it, as a Pod's restartCount is reported on kind.
const RestartsEnv = "TETHER_RESTARTS"

// Spec is what Supervise runs and how it restarts it.
type Spec struct {
	// Name names the component in the supervisor's log lines.
	Name string
	Bin  string
	Args []string
	// StatusPath is where the supervisor keeps its Status.
	StatusPath string
	// FirstBackoff is the wait before the first restart, doubled after
	// each crash up to MaxBackoff; a child that ran ResetAfter or longer
	// starts the doubling over. Zero: 1 s, 10 s and 60 s, a kubelet's
	// CrashLoopBackOff shortened so a workbench heals in seconds.
	FirstBackoff, MaxBackoff, ResetAfter time.Duration
	// Grace is how long a child gets between SIGTERM and SIGKILL when the
	// supervisor stops. Zero: 10 s.
	Grace time.Duration
}

func (s *Spec) defaults() {
	if s.FirstBackoff <= 0 {
		s.FirstBackoff = time.Second
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = 10 * time.Second
	}
	if s.ResetAfter <= 0 {
		s.ResetAfter = time.Minute
	}
	if s.Grace <= 0 {
		s.Grace = 10 * time.Second
	}
}

// Exit is how a child ended.
type Exit struct {
	// Code is the exit code, -1 when a signal ended the child.
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

func (e Exit) String() string {
	if e.Signal != "" {
		return "signal " + e.Signal
	}
	return "exit code " + strconv.Itoa(e.Code)
}

// Status is what a supervisor records of its child, in the file next to
// the component's log.
type Status struct {
	// PID is the running child, 0 while the supervisor waits to restart it.
	PID int `json:"pid"`
	// StartTime is PID's start time from /proc, so a recycled pid is never
	// taken for the child.
	StartTime uint64    `json:"startTime,omitempty"`
	Started   time.Time `json:"started"`
	// Restarts counts the restarts before the current start.
	Restarts int   `json:"restarts"`
	LastExit *Exit `json:"lastExit,omitempty"`
}

// ChildAlive says whether the recorded child still runs.
func (s Status) ChildAlive() bool {
	return s.PID > 0 && Alive(Record{PID: s.PID, StartTime: s.StartTime})
}

// StatusPath is where a supervisor whose output goes to logPath keeps its
// Status: next to the log, so both go with the component's folder.
func StatusPath(logPath string) string {
	return strings.TrimSuffix(logPath, ".log") + ".status.json"
}

// ReadStatus reads a supervisor's Status.
func ReadStatus(path string) (Status, error) {
	var s Status
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read supervisor status %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("supervisor status %s is damaged: %w", path, err)
	}
	return s, nil
}

// writeStatus replaces the file whole (temp file and rename), so a reader
// never sees half of it.
func writeStatus(path string, s Status) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write supervisor status %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write supervisor status %s: %w", path, err)
	}
	return nil
}

// Supervise runs spec's command and runs it again whenever it exits, with
// a doubling backoff, until ctx ends; then it stops the child (SIGTERM,
// SIGKILL after Grace) and returns nil. The child shares the supervisor's
// output and process group, so Stop on the supervisor's Record reaches
// both, and it gets SIGKILL should the supervisor die without stopping it.
// An error means the first start failed or the status could not be
// written: nothing runs then.
func Supervise(ctx context.Context, spec Spec, log *slog.Logger) error {
	spec.defaults()
	backoff := spec.FirstBackoff
	var last *Exit
	for restarts := 0; ; restarts++ {
		started := time.Now()
		exit, err := runChild(ctx, spec, restarts, last, log)
		if err != nil {
			if restarts == 0 {
				return err
			}
			// A later start failing (the binary replaced mid-way) is
			// one more crash: keep trying, as a kubelet does.
			log.Error("could not start the component again", "component", spec.Name, "err", err)
			exit = Exit{Code: -1, At: time.Now()}
		}
		if ctx.Err() != nil {
			return nil
		}
		last = &exit
		if time.Since(started) >= spec.ResetAfter {
			backoff = spec.FirstBackoff
		}
		log.Warn("component exited; restarting it", "component", spec.Name, "exit", exit.String(), "restarts", restarts+1, "in", backoff)
		if err := writeStatus(spec.StatusPath, Status{Restarts: restarts, LastExit: last}); err != nil {
			log.Error("could not record the component's exit", "component", spec.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, spec.MaxBackoff)
	}
}

// runChild starts the child, records it, and waits until it exits or ctx
// ends (then stops it).
func runChild(ctx context.Context, spec Spec, restarts int, last *Exit, log *slog.Logger) (Exit, error) {
	type started struct {
		pid int
		err error
	}
	startedc := make(chan started, 1)
	exited := make(chan Exit, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits,
		// not the process: the Go runtime may end an idle thread. Locked
		// and never unlocked, this thread lives until the goroutine ends,
		// which is after the child is reaped.
		runtime.LockOSThread()
		cmd := exec.Command(spec.Bin, spec.Args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), RestartsEnv+"="+strconv.Itoa(restarts))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			startedc <- started{err: fmt.Errorf("start %s (%s): %w", spec.Name, spec.Bin, err)}
			return
		}
		startedc <- started{pid: cmd.Process.Pid}
		_ = cmd.Wait()
		exited <- exitOf(cmd.ProcessState)
	}()
	s := <-startedc
	if s.err != nil {
		return Exit{}, s.err
	}
	st := Status{PID: s.pid, Started: time.Now(), Restarts: restarts, LastExit: last}
	if _, t, err := Stat(s.pid); err == nil {
		st.StartTime = t
	}
	if err := writeStatus(spec.StatusPath, st); err != nil {
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
		<-exited
		return Exit{}, err
	}
	log.Info("component started", "component", spec.Name, "pid", s.pid, "restarts", restarts)
	select {
	case e := <-exited:
		return e, nil
	case <-ctx.Done():
	}
	_ = syscall.Kill(s.pid, syscall.SIGTERM)
	select {
	case e := <-exited:
		return e, nil
	case <-time.After(spec.Grace):
	}
	log.Warn("component ignored SIGTERM; killing it", "component", spec.Name, "pid", s.pid, "grace", spec.Grace)
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	return <-exited, nil
}

func exitOf(ps *os.ProcessState) Exit {
	e := Exit{Code: -1, At: time.Now()}
	if ps == nil {
		return e
	}
	e.Code = ps.ExitCode()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal().String()
	}
	return e
}

// CrashWatch turns a supervisor's exit channel (Start's) into one that
// also yields when its child has exited since the supervisor started: a
// component crashing while it starts is reported at once instead of after
// the caller's readiness wait, though its supervisor restarts it. It
// stops watching when ctx ends.
func CrashWatch(ctx context.Context, exited <-chan error, statusPath string) <-chan error {
	out := make(chan error, 1)
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case err := <-exited:
				out <- fmt.Errorf("its supervisor exited: %w", err)
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if s, err := ReadStatus(statusPath); err == nil && s.LastExit != nil {
				out <- fmt.Errorf("it exited (%s) and is being restarted", s.LastExit)
				return
			}
		}
	}()
	return out
}
