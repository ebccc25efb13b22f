package embedded

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tether-dev/tether/cluster/progress"
)

// Pinned versions. Kubernetes' minor must match client-go in go.mod and the
// node image of the kind provider, so every provider speaks the same API.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
	KwokModule        = "sigs.k8s.io/kwok"
	KwokVersion       = "v0.8.0"
)

// The tools module pins kube-apiserver, kube-controller-manager,
// kube-scheduler and etcd with the exact dependency graph Kubernetes itself
// uses (its staging modules replaced by their published versions). It is a
// module of its own so its huge graph never leaks into tether's go.mod; the
// files are named .mod/.sum so the go command does not treat the folder as a
// nested module and they can be embedded.
var (
	//go:embed tools/tools.mod
	toolsMod []byte
	//go:embed tools/tools.sum
	toolsSum []byte
)

// Tool is a program built inside the tools module.
type Tool struct {
	Name    string // binary name in the cache
	Package string // import path of its main package
	// LDFlags stamps the version: Kubernetes binaries built from the module
	// report v0.0.0-master otherwise, and kubeadm and the kubelet compare
	// versions with the API server's.
	LDFlags string
}

// KubernetesLDFlags are the -X flags Kubernetes' own release build sets, so
// binaries built from the pinned module report KubernetesVersion.
func KubernetesLDFlags() string {
	var b strings.Builder
	b.WriteString("-s -w")
	major, minor := "1", strings.Split(strings.TrimPrefix(KubernetesVersion, "v"), ".")[1]
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate=2026-01-01T00:00:00Z",
			pkg, KubernetesVersion, pkg, major, pkg, minor, pkg, pkg)
	}
	return b.String()
}

// Install is a program built with `go install pkg@version`.
type Install struct {
	Name    string
	Package string
	Version string
}

// Binaries are the paths of a built control plane.
type Binaries struct {
	Dir string
}

// Path returns the path of a named binary or file in the set.
func (b Binaries) Path(name string) string { return filepath.Join(b.Dir, name) }

// Builder builds the control-plane binaries once per version and caches
// them, so only the first `up` on a machine pays the compile.
type Builder struct {
	// CacheDir is tether's cache folder (binaries go in controlplane/ below).
	CacheDir string
	Progress progress.Reporter
	Mod, Sum []byte
	Tools    []Tool
	Installs []Install
	// Finish runs in the staging folder after every binary is built.
	Finish func(ctx context.Context, goBin, dir string) error
	// mu serialises builds within one process; the file lock does across
	// processes (two test binaries may need the binaries at once).
	mu sync.Mutex
}

// NewBuilder returns the builder of the pinned control plane.
func NewBuilder(cacheDir string, p progress.Reporter) *Builder {
	return &Builder{
		CacheDir: cacheDir,
		Progress: p,
		Mod:      toolsMod,
		Sum:      toolsSum,
		Tools: []Tool{
			{Name: "etcd", Package: "go.etcd.io/etcd/server/v3"},
			{Name: "kube-apiserver", Package: "k8s.io/kubernetes/cmd/kube-apiserver", LDFlags: KubernetesLDFlags()},
			{Name: "kube-controller-manager", Package: "k8s.io/kubernetes/cmd/kube-controller-manager", LDFlags: KubernetesLDFlags()},
			{Name: "kube-scheduler", Package: "k8s.io/kubernetes/cmd/kube-scheduler", LDFlags: KubernetesLDFlags()},
		},
		Installs: []Install{{Name: "kwok", Package: KwokModule + "/cmd/kwok", Version: KwokVersion}},
		Finish:   writeKwokStages,
	}
}

// Key identifies a build: any change to the pinned module or the tool list
// builds into a new folder instead of reusing stale binaries.
func (b *Builder) Key() string {
	h := sha256.New()
	h.Write(b.Mod)
	h.Write(b.Sum)
	for _, t := range b.Tools {
		fmt.Fprintf(h, "tool %s %s %s\n", t.Name, t.Package, t.LDFlags)
	}
	for _, i := range b.Installs {
		fmt.Fprintf(h, "install %s %s@%s\n", i.Name, i.Package, i.Version)
	}
	fmt.Fprintf(h, "%s/%s static\n", runtime.GOOS, runtime.GOARCH)
	return KubernetesVersion + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Dir is where the finished binaries live.
func (b *Builder) Dir() string { return filepath.Join(b.CacheDir, "controlplane", b.Key()) }

// Cached reports whether the binaries are built already.
func (b *Builder) Cached() bool {
	_, err := os.Stat(filepath.Join(b.Dir(), ".complete"))
	return err == nil
}

// Ensure returns the binaries, building them first if needed.
func (b *Builder) Ensure(ctx context.Context) (Binaries, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	dir := b.Dir()
	if b.Cached() {
		return Binaries{Dir: dir}, nil
	}
	goBin, err := findGo()
	if err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Binaries{}, fmt.Errorf("create binary cache: %w", err)
	}
	unlock, err := LockFile(ctx, dir+".lock")
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	if b.Cached() { // another process built them while we waited
		return Binaries{Dir: dir}, nil
	}
	if err := b.build(ctx, goBin, dir); err != nil {
		return Binaries{}, err
	}
	return Binaries{Dir: dir}, nil
}

func (b *Builder) build(ctx context.Context, goBin, dir string) error {
	src, staging, logPath := dir+".src", dir+".staging", dir+".build.log"
	for _, d := range []string{src, staging} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("clean %s: %w", d, err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), b.Mod, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.sum"), b.Sum, 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create build log: %w", err)
	}
	defer logFile.Close()
	r := b.progress()
	for _, t := range b.Tools {
		step := r.Start(fmt.Sprintf("build %s %s from source (cached after the first run)", t.Name, versionOf(t.Name)))
		total := countDeps(ctx, goBin, src, t.Package)
		args := []string{"build", "-v", "-trimpath", "-o", filepath.Join(staging, t.Name)}
		if t.LDFlags != "" {
			args = append(args, "-ldflags", t.LDFlags)
		}
		err := runGo(ctx, goBin, src, logFile, step, total, append(args, t.Package)...)
		step.Done(err)
		if err != nil {
			return buildError(t.Name, logPath, err)
		}
	}
	for _, in := range b.Installs {
		step := r.Start(fmt.Sprintf("build %s %s", in.Name, in.Version))
		// go install pkg@version ignores any module around it; GOBIN points
		// it at the staging folder.
		err := runGoEnv(ctx, goBin, src, []string{"GOBIN=" + staging}, logFile, step, 0, "install", "-v", in.Package+"@"+in.Version)
		step.Done(err)
		if err != nil {
			return buildError(in.Name, logPath, err)
		}
	}
	if b.Finish != nil {
		if err := b.Finish(ctx, goBin, staging); err != nil {
			return fmt.Errorf("prepare control-plane binaries: %w (build log: %s)", err, logPath)
		}
	}
	if err := os.WriteFile(filepath.Join(staging, ".complete"), []byte(b.Key()+"\n"), 0o644); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	// The rename is what publishes the set: an interrupted build never
	// leaves a folder that looks complete.
	if err := os.Rename(staging, dir); err != nil {
		return fmt.Errorf("publish control-plane binaries: %w", err)
	}
	return nil
}

func (b *Builder) progress() progress.Reporter {
	if b.Progress == nil {
		return progress.Discard()
	}
	return b.Progress
}

func versionOf(name string) string {
	switch name {
	case "etcd":
		return EtcdVersion
	case "kwok":
		return KwokVersion
	}
	if strings.HasPrefix(name, "kube") {
		return KubernetesVersion
	}
	return ""
}

func buildError(name, logPath string, err error) error {
	return fmt.Errorf("build %s: %w; the full log is %s. The embedded provider compiles Kubernetes from the Go module proxy: check that Go 1.26 or newer is installed and that GOPROXY (%s) is reachable, then run the command again",
		name, err, logPath, goproxy())
}

func goproxy() string {
	if p := os.Getenv("GOPROXY"); p != "" {
		return p
	}
	return "default https://proxy.golang.org"
}

// findGo locates the go command. The embedded provider needs it at run time
// because it compiles the control plane on first use.
func findGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("the embedded provider builds Kubernetes from source and needs the go command: install Go 1.26 or newer (https://go.dev/dl) and put it on PATH")
}

func countDeps(ctx context.Context, goBin, dir, pkg string) int {
	cmd := exec.CommandContext(ctx, goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
	cmd.Dir = dir
	cmd.Env = goEnv(nil)
	out, err := cmd.Output()
	if err != nil {
		return 0
	}
	return bytes.Count(out, []byte("\n"))
}

func runGo(ctx context.Context, goBin, dir string, log io.Writer, step progress.Step, total int, args ...string) error {
	return runGoEnv(ctx, goBin, dir, nil, log, step, total, args...)
}

// runGoEnv runs the go command, copying its output to log and counting the
// packages `-v` names to report progress.
func runGoEnv(ctx context.Context, goBin, dir string, env []string, log io.Writer, step progress.Step, total int, args ...string) error {
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = goEnv(env)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	fmt.Fprintf(log, "$ go %s\n", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		pw.Close()
		return err
	}
	lastLines := make([]string, 0, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if strings.Contains(line, " ") || strings.HasPrefix(line, "#") {
				// Not a package name: an error or a download line.
				if len(lastLines) == cap(lastLines) {
					lastLines = lastLines[1:]
				}
				lastLines = append(lastLines, line)
				continue
			}
			n++
			if total > 0 {
				step.Update(fmt.Sprintf("%d/%d packages compiled", min(n, total), total))
			} else {
				step.Update(fmt.Sprintf("%d packages compiled", n))
			}
		}
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(lastLines) > 0 {
			return fmt.Errorf("go %s: %s", args[0], strings.Join(lastLines, "; "))
		}
		return fmt.Errorf("go %s: %w", args[0], err)
	}
	return nil
}

func goEnv(extra []string) []string {
	// Static binaries (no cgo) run as they are in the kind node's images,
	// which carry nothing but the binary.
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "CGO_ENABLED=0")
	return append(env, extra...)
}

// LockFile takes an exclusive flock, waiting for another holder (say a
// second test binary that started the same build) until ctx ends. The kind
// node-image builder serialises its builds with it too.
func LockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	// Poll with LOCK_NB rather than block in another goroutine: closing the
	// file under a blocked Flock races, and the fd number could be reused.
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(fd, syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock binary cache: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// kwok needs Stage objects that say how fake nodes and pods move through
// their lifecycle. The ones kwok ships are read from the pinned kwok module
// itself so they always match the binary.
func writeKwokStages(ctx context.Context, goBin, dir string) error {
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", KwokModule+"@"+KwokVersion)
	cmd.Dir = dir
	cmd.Env = goEnv(nil)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("locate kwok module: %w", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("locate kwok module: unexpected output %q", out)
	}
	var buf bytes.Buffer
	for _, f := range []string{
		"kustomize/stage/node/fast/node-initialize.yaml",
		"kustomize/stage/node/heartbeat/node-heartbeat.yaml",
		"kustomize/stage/pod/fast/pod-ready.yaml",
		"kustomize/stage/pod/fast/pod-complete.yaml",
		"kustomize/stage/pod/fast/pod-delete.yaml",
	} {
		data, err := os.ReadFile(filepath.Join(mod.Dir, f))
		if err != nil {
			return fmt.Errorf("read kwok stage: %w", err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
		buf.WriteString("\n")
	}
	return os.WriteFile(filepath.Join(dir, "kwok-stages.yaml"), buf.Bytes(), 0o644)
}
