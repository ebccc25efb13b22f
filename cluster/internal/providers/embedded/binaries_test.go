package embedded

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/cluster/internal/state"
	"github.com/tether-dev/tether/cluster/progress"
)

// recorder is a progress.Reporter that remembers every step.
type recorder struct {
	mu    sync.Mutex
	steps []*recordedStep
}

type recordedStep struct {
	title   string
	updates []string
	done    bool
	err     error
}

func (r *recorder) Start(title string) progress.Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &recordedStep{title: title}
	r.steps = append(r.steps, s)
	return &stepRef{r: r, s: s}
}

type stepRef struct {
	r *recorder
	s *recordedStep
}

func (s *stepRef) Update(d string) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.s.updates = append(s.s.updates, d)
}

func (s *stepRef) Done(err error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.s.done, s.s.err = true, err
}

func (r *recorder) snapshot() []recordedStep {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]recordedStep, len(r.steps))
	for i, s := range r.steps {
		out[i] = *s
	}
	return out
}

const testMod = "module example.com/tools\n\ngo 1.26\n"

func testBuilder(t *testing.T, tools ...Tool) (*Builder, *recorder) {
	t.Helper()
	if _, err := findGo(); err != nil {
		t.Skip(err)
	}
	rec := &recorder{}
	return &Builder{
		CacheDir: t.TempDir(),
		Mod:      []byte(testMod),
		Tools:    tools,
		Progress: rec,
	}, rec
}

func TestBuilderEnsureBuildsAndCaches(t *testing.T) {
	b, rec := testBuilder(t, Tool{Name: "gofmt", Package: "cmd/gofmt"})
	if b.Cached() {
		t.Fatal("Cached() before any build")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := b.Ensure(ctx)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if bins.Dir != b.Dir() {
		t.Errorf("Binaries.Dir = %s, want %s", bins.Dir, b.Dir())
	}
	if !b.Cached() {
		t.Error("Cached() = false after a build")
	}
	gofmt := bins.Path("gofmt")
	info, err := os.Stat(gofmt)
	if err != nil {
		t.Fatalf("built binary: %v", err)
	}
	// The binary works: it formats a file.
	src := filepath.Join(t.TempDir(), "x.go")
	if err := os.WriteFile(src, []byte("package x\nfunc  F( ) {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gofmt, src).CombinedOutput()
	if err != nil {
		t.Fatalf("run built gofmt: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "func F() {}") {
		t.Errorf("gofmt output = %q, want the formatted function", out)
	}
	// Staging and source folders are gone; the log stays next to the set.
	for _, leftover := range []string{b.Dir() + ".staging", b.Dir() + ".src"} {
		if _, err := os.Stat(leftover); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", leftover, err)
		}
	}
	complete, err := os.ReadFile(filepath.Join(b.Dir(), ".complete"))
	if err != nil || strings.TrimSpace(string(complete)) != b.Key() {
		t.Errorf(".complete = %q, %v; want the key %s", complete, err, b.Key())
	}

	steps := rec.snapshot()
	if len(steps) != 1 {
		t.Fatalf("got %d progress steps, want 1: %+v", len(steps), steps)
	}
	if s := steps[0]; !strings.Contains(s.title, "gofmt") || !s.done || s.err != nil {
		t.Errorf("step = %+v, want a finished gofmt build", s)
	}

	// A second Ensure (a fresh Builder too, as in a new process) reuses the
	// set: no step starts and the binary is not rewritten.
	for _, b2 := range []*Builder{b, {CacheDir: b.CacheDir, Mod: b.Mod, Tools: b.Tools, Progress: rec}} {
		bins2, err := b2.Ensure(ctx)
		if err != nil || bins2.Dir != bins.Dir {
			t.Fatalf("second Ensure = %v, %v", bins2, err)
		}
	}
	if n := len(rec.snapshot()); n != 1 {
		t.Errorf("cached Ensure started %d new steps", n-1)
	}
	info2, err := os.Stat(gofmt)
	if err != nil || !info2.ModTime().Equal(info.ModTime()) {
		t.Errorf("binary changed on a cached Ensure: %v (mtime %v → %v)", err, info.ModTime(), info2.ModTime())
	}
}

func TestBuilderKey(t *testing.T) {
	base := func() *Builder {
		return &Builder{CacheDir: "/c", Mod: []byte(testMod), Tools: []Tool{{Name: "gofmt", Package: "cmd/gofmt"}}}
	}
	key := base().Key()
	if !strings.HasPrefix(key, KubernetesVersion+"-") {
		t.Errorf("Key() = %s, want it to start with the Kubernetes version", key)
	}
	if base().Key() != key {
		t.Error("Key() is not stable")
	}
	tests := []struct {
		name   string
		change func(*Builder)
	}{
		{"tool added", func(b *Builder) { b.Tools = append(b.Tools, Tool{Name: "vet", Package: "cmd/vet"}) }},
		{"tool renamed", func(b *Builder) { b.Tools[0].Name = "fmt" }},
		{"tool package", func(b *Builder) { b.Tools[0].Package = "cmd/go" }},
		{"mod", func(b *Builder) { b.Mod = append(b.Mod, "// x\n"...) }},
		{"sum", func(b *Builder) { b.Sum = []byte("x") }},
		{"install", func(b *Builder) { b.Installs = []Install{{Name: "k", Package: "p", Version: "v1"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base()
			tt.change(b)
			if b.Key() == key {
				t.Errorf("Key() unchanged after %s", tt.name)
			}
			if b.Dir() == base().Dir() {
				t.Errorf("Dir() unchanged after %s", tt.name)
			}
		})
	}
	// The cache folder is not part of the key, only of the path.
	b := base()
	b.CacheDir = "/other"
	if b.Key() != key || b.Dir() != filepath.Join("/other", "controlplane", key) {
		t.Errorf("Key/Dir with another cache = %s, %s", b.Key(), b.Dir())
	}
}

func TestBuilderBuildFailure(t *testing.T) {
	tests := []struct {
		name string
		mod  string
		tool Tool
	}{
		{"missing package", testMod, Tool{Name: "broken", Package: "example.com/tools/nonexistent"}},
		{"bad go.mod", "module example.com/tools\n\ngo 1.26\nrequire (\n", Tool{Name: "broken", Package: "cmd/gofmt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, rec := testBuilder(t, tt.tool)
			b.Mod = []byte(tt.mod)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_, err := b.Ensure(ctx)
			if err == nil {
				t.Fatal("Ensure succeeded, want a build error")
			}
			logPath := b.Dir() + ".build.log"
			msg := err.Error()
			for _, w := range []string{"build broken", logPath, "GOPROXY", "Go 1.26"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if b.Cached() {
				t.Error("Cached() = true after a failed build")
			}
			if _, err := os.Stat(b.Dir()); !os.IsNotExist(err) {
				t.Errorf("a failed build published %s: %v", b.Dir(), err)
			}
			if log, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(log), "$ go build") {
				t.Errorf("build log = %q, %v; want the go command in it", log, err)
			}
			steps := rec.snapshot()
			if len(steps) != 1 || !steps[0].done || steps[0].err == nil {
				t.Errorf("steps = %+v, want one step ended with an error", steps)
			}
		})
	}
}

func TestBuilderFinishFailure(t *testing.T) {
	b, _ := testBuilder(t, Tool{Name: "gofmt", Package: "cmd/gofmt"})
	var gotDir string
	b.Finish = func(_ context.Context, goBin, dir string) error {
		gotDir = dir
		if _, err := os.Stat(filepath.Join(dir, "gofmt")); err != nil {
			t.Errorf("Finish ran before the tool was built: %v", err)
		}
		return os.ErrPermission
	}
	_, err := b.Ensure(context.Background())
	if err == nil || !strings.Contains(err.Error(), b.Dir()+".build.log") {
		t.Fatalf("Ensure = %v, want the Finish error with the build log", err)
	}
	if gotDir != b.Dir()+".staging" {
		t.Errorf("Finish ran in %s, want the staging folder", gotDir)
	}
	if b.Cached() {
		t.Error("Cached() = true after Finish failed")
	}
}

func TestBuilderEnsureHonoursCancel(t *testing.T) {
	b, _ := testBuilder(t, Tool{Name: "gofmt", Package: "cmd/gofmt"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Ensure(ctx); err == nil {
		t.Fatal("Ensure with a cancelled context succeeded")
	}
	if b.Cached() {
		t.Error("Cached() = true after a cancelled build")
	}
}

func TestStartAliveStop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "sleep.log")
	p, exited, err := startProcess("sleeper", sleep, []string{"30"}, logPath)
	if err != nil {
		t.Fatalf("startProcess: %v", err)
	}
	t.Cleanup(func() { _ = stopProcess(context.Background(), p, time.Second) })
	if p.Name != "sleeper" || p.PID <= 0 || p.StartTime == 0 || p.Log != logPath {
		t.Errorf("process = %+v", p)
	}
	if len(p.Args) != 2 || p.Args[0] != sleep || p.Args[1] != "30" {
		t.Errorf("Args = %v, want [%s 30]", p.Args, sleep)
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("log file: %v", err)
	}
	if !alive(p) {
		t.Fatal("alive() = false for a running process")
	}
	st, start, err := procStat(p.PID)
	if err != nil || start != p.StartTime || (st != 'S' && st != 'R') {
		t.Errorf("procStat = %c, %d, %v; want S or R and start %d", st, start, err, p.StartTime)
	}
	// The child leads its own process group, so a Ctrl-C to ours misses it.
	if pgid, err := syscall.Getpgid(p.PID); err != nil || pgid != p.PID {
		t.Errorf("pgid = %d, %v; want %d", pgid, err, p.PID)
	}

	tests := []struct {
		name string
		p    state.Process
		want bool
	}{
		{"recorded", p, true},
		{"pid reused by another program", state.Process{Name: "x", PID: p.PID, StartTime: p.StartTime + 1}, false},
		{"zero pid", state.Process{PID: 0, StartTime: p.StartTime}, false},
		{"negative pid", state.Process{PID: -1}, false},
		{"no such pid", state.Process{PID: 1 << 30, StartTime: p.StartTime}, false},
	}
	for _, tt := range tests {
		if got := alive(tt.p); got != tt.want {
			t.Errorf("%s: alive() = %v, want %v", tt.name, got, tt.want)
		}
	}
	// A pid-reuse guard must also keep stopProcess away from the stranger.
	if err := stopProcess(context.Background(), state.Process{Name: "x", PID: p.PID, StartTime: p.StartTime + 1}, time.Second); err != nil {
		t.Errorf("stopProcess of a stranger = %v", err)
	}
	if !alive(p) {
		t.Fatal("stopProcess with a wrong start time signalled the process")
	}

	if err := stopProcess(context.Background(), p, 5*time.Second); err != nil {
		t.Fatalf("stopProcess: %v", err)
	}
	if alive(p) {
		t.Error("alive() = true after stopProcess")
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Error("sleep reported a clean exit; it was signalled")
		}
	case <-time.After(5 * time.Second):
		t.Error("exit not reported on the channel")
	}
	// Stopping again is a no-op.
	if err := stopProcess(context.Background(), p, time.Second); err != nil {
		t.Errorf("second stopProcess: %v", err)
	}
}

func TestStopProcessKillsAfterGrace(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	logPath := filepath.Join(t.TempDir(), "stubborn.log")
	// Ignores SIGTERM; only SIGKILL ends it.
	p, exited, err := startProcess("stubborn", sh, []string{"-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopProcess(context.Background(), p, 0) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if strings.Contains(string(data), "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell never installed its trap")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := stopProcess(context.Background(), p, 300*time.Millisecond); err != nil {
		t.Fatalf("stopProcess: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("stopProcess returned after %v, before the grace period", d)
	}
	if alive(p) {
		t.Error("still alive after SIGKILL")
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("exit not reported")
	}
}

func TestStartProcessErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := startProcess("ghost", filepath.Join(dir, "no-such-binary"), nil, filepath.Join(dir, "x.log")); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("start of a missing binary = %v, want an error naming ghost", err)
	}
	if _, _, err := startProcess("nolog", "/bin/true", nil, filepath.Join(dir, "missing", "x.log")); err == nil || !strings.Contains(err.Error(), "nolog") {
		t.Errorf("start with an unwritable log = %v, want an error naming nolog", err)
	}
}

func TestProcStatOddCommandName(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	dir := t.TempDir()
	odd := filepath.Join(dir, "a) (b c")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	if err := os.Symlink(sleep, odd); err != nil {
		t.Fatal(err)
	}
	p, _, err := startProcess("odd", odd, []string{"30"}, filepath.Join(dir, "odd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopProcess(context.Background(), p, time.Second) })
	if !alive(p) {
		t.Fatal("alive() = false for a process with an odd name")
	}
	if _, _, err := procStat(1 << 30); err == nil {
		t.Error("procStat of a missing pid succeeded")
	}
}

func TestLastErrors(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{
			name: "klog errors win over later info",
			log: "I0101 10:00:00.000000 1 server.go:1] starting\n" +
				"E0101 10:00:01.000000 1 server.go:2] first failure\n" +
				"W0101 10:00:02.000000 1 server.go:3] warning\n" +
				"E0101 10:00:03.000000 1 server.go:4] second failure\n" +
				"E0101 10:00:04.000000 1 server.go:5] third failure\n" +
				"I0101 10:00:05.000000 1 server.go:6] shutting down\n",
			want: "E0101 10:00:03.000000 1 server.go:4] second failure | E0101 10:00:04.000000 1 server.go:5] third failure",
		},
		{
			name: "fatal counts",
			log:  "I0101 ok\nF0101 10:00:00.000000 1 x.go:1] cannot bind\nI0101 exiting\n",
			want: "F0101 10:00:00.000000 1 x.go:1] cannot bind",
		},
		{
			name: "etcd JSON errors",
			log:  `{"level":"info","msg":"start"}` + "\n" + `{"level":"fatal","msg":"listen failed"}` + "\n" + `{"level":"info","msg":"bye"}` + "\n",
			want: `{"level":"fatal","msg":"listen failed"}`,
		},
		{
			name: "no errors: last two lines",
			log:  "one\ntwo\nthree\n",
			want: "two | three",
		},
		{
			name: "single line",
			log:  "only\n",
			want: "only",
		},
		{
			name: "empty",
			log:  "",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.log")
			if err := os.WriteFile(path, []byte(tt.log), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := lastErrors(path); got != tt.want {
				t.Errorf("lastErrors() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := lastErrors(filepath.Join(t.TempDir(), "missing.log")); got != "no log" {
		t.Errorf("lastErrors(missing) = %q, want %q", got, "no log")
	}
}

func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := LockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder waits and gives up when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := LockFile(ctx, path); err != context.DeadlineExceeded {
		t.Fatalf("LockFile while held = %v, want %v", err, context.DeadlineExceeded)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("lockFile gave up after %v, before its context ended", d)
	}
	// It gets the lock as soon as the first holder lets go.
	got := make(chan error, 1)
	go func() {
		u, err := LockFile(context.Background(), path)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("lockFile after release: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lockFile did not get the released lock")
	}
}
