package process

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Record is what a workbench remembers of a process it started.
type Record struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// StartTime is the process start time from /proc/<pid>/stat, recorded so
	// that a pid reused by an unrelated program is never taken for ours.
	StartTime uint64 `json:"startTime"`
	// Args is the command line of the process, or, for a supervisor, of
	// the component it runs: what a debugger session copies.
	Args []string `json:"args"`
	Log  string   `json:"log"`
	// Status is the file a supervisor keeps its child's Status in; empty
	// for a process that is not a supervisor.
	Status string `json:"status,omitempty"`
	// HealthURL, if set, answers 200 when the process is healthy.
	HealthURL string `json:"healthURL,omitempty"`
}

// A process is started detached from the caller's
// process group: the cluster must outlive `tether up`, and a Ctrl-C aimed at
// the CLI must not take the clusters down with it.
// Start launches bin detached from the caller's process group, output
// appended to logPath, with env added to the caller's environment. The
// returned channel yields the exit error if the process ends while the
// caller still runs (it is the parent and reaps it).
func Start(name, bin string, args []string, logPath string, env []string) (Record, <-chan error, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Record{}, nil, fmt.Errorf("open log for %s: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return Record{}, nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	// Reap the child while we are its parent, so an early exit is seen at
	// once (and its reason logged) instead of as a zombie.
	go func() { exited <- cmd.Wait() }()
	st, err := startTime(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return Record{}, nil, fmt.Errorf("start %s: %w", name, err)
	}
	return Record{Name: name, PID: cmd.Process.Pid, StartTime: st, Args: append([]string{bin}, args...), Log: logPath}, exited, nil
}

// procStat returns the state letter and start time of a process.
// Stat returns the state letter and start time of a process.
func Stat(pid int) (byte, uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses; fields
	// after the last ')' are fixed.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return fields[0][0], start, nil
}

func startTime(pid int) (uint64, error) {
	_, st, err := Stat(pid)
	return st, err
}

// Alive reports whether the recorded process still runs. A zombie counts as
// dead: once reparented, nobody may reap it, yet it no longer serves.
func Alive(p Record) bool {
	if p.PID <= 0 {
		return false
	}
	st, start, err := Stat(p.PID)
	if err != nil {
		return false
	}
	return start == p.StartTime && st != 'Z' && st != 'X'
}

// Stop sends SIGTERM to the process group, waits up to grace, then
// SIGKILLs it and waits until it is gone.
func Stop(ctx context.Context, p Record, grace time.Duration) error {
	if !Alive(p) {
		return nil
	}
	// Setpgid made the pid the group id; signalling the group also ends any
	// helper the binary forked.
	_ = syscall.Kill(-p.PID, syscall.SIGTERM)
	if waitGone(ctx, p, grace) {
		return nil
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	if waitGone(ctx, p, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
}

func waitGone(ctx context.Context, p Record, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !Alive(p) {
			return true
		}
		select {
		case <-ctx.Done():
			return !Alive(p)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return !Alive(p)
}

// LastErrors returns the last error lines of a component's log (klog
// marks them E or F), so a start-up failure names its cause instead of
// sending the user hunting through the file.
func LastErrors(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "no log"
	}
	defer f.Close()
	var all, errs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		all = append(all, line)
		if len(line) > 0 && (line[0] == 'E' || line[0] == 'F') || strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"fatal"`) {
			errs = append(errs, line)
		}
	}
	pick := errs
	if len(pick) == 0 {
		pick = all
	}
	if len(pick) > 2 {
		pick = pick[len(pick)-2:]
	}
	return strings.Join(pick, " | ")
}
