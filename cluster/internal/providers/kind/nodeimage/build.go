package nodeimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/tether-dev/tether/cluster/internal/providers/embedded"
	"github.com/tether-dev/tether/cluster/progress"
)

// What the node is made of. Changing any of it changes the image's tag, so
// a machine never runs a stale node image under a current name.
const (
	suite          = "bookworm"
	defaultMirror  = "http://deb.debian.org/debian"
	corednsModule  = "github.com/coredns/coredns"
	corednsVersion = "v1.14.6"
	cniModule      = "github.com/containernetworking/plugins"
	cniVersion     = "v1.10.0"
	crictlModule   = "sigs.k8s.io/cri-tools"
	crictlVersion  = "v1.37.0"
	// layout is bumped when the way the image is put together changes.
	layout = "1"
)

// packages are the Debian packages of the node beyond debootstrap's
// minbase: systemd as PID 1, the container runtime, and the network tools
// the kubelet, kube-proxy's pod and the CNI plugins call.
var packages = []string{
	"systemd", "systemd-sysv", "dbus", "containerd", "runc",
	"iptables", "nftables", "conntrack", "iproute2", "ethtool", "socat",
	"kmod", "ca-certificates", "util-linux", "mount", "procps", "libseccomp2",
}

var (
	//go:embed all:files
	overlay embed.FS
	//go:embed pause/main.go
	pauseSource []byte
	//go:embed capwrap/main.go capwrap/capwrap.go
	capwrapSource embed.FS
)

// masked are systemd units that make no sense in a container and only slow
// the boot or fail noisily there.
var masked = []string{
	"systemd-udevd.service", "systemd-udevd-kernel.socket", "systemd-udevd-control.socket",
	"systemd-modules-load.service", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
	"getty.target", "console-getty.service", "serial-getty@.service", "e2scrub_reap.service",
	"apt-daily.timer", "apt-daily-upgrade.timer",
}

type builder struct {
	opts Options
	log  *slog.Logger
	prog progress.Reporter
}

func newBuilder(opts Options) *builder {
	b := &builder{opts: opts, log: opts.Log, prog: opts.Progress}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.prog == nil {
		b.prog = progress.Discard()
	}
	return b
}

// controlPlane builds (or finds) the binaries the embedded provider runs:
// the node's static pods use the very same ones.
func controlPlane(cacheDir string, p progress.Reporter) *embedded.Builder {
	return embedded.NewBuilder(cacheDir, p)
}

// nodeTools are the node's own Kubernetes binaries, CoreDNS, the CNI
// plugins and crictl, built in the control plane's pinned tools module so
// compiled packages are shared with it.
func nodeTools(cacheDir string, p progress.Reporter) *embedded.Builder {
	b := embedded.NewBuilder(cacheDir, p)
	ld := embedded.KubernetesLDFlags()
	b.Tools = []embedded.Tool{
		{Name: "kubelet", Package: "k8s.io/kubernetes/cmd/kubelet", LDFlags: ld},
		{Name: "kubeadm", Package: "k8s.io/kubernetes/cmd/kubeadm", LDFlags: ld},
		{Name: "kubectl", Package: "k8s.io/kubernetes/cmd/kubectl", LDFlags: ld},
		{Name: "kube-proxy", Package: "k8s.io/kubernetes/cmd/kube-proxy", LDFlags: ld},
	}
	b.Installs = []embedded.Install{
		{Name: "coredns", Package: corednsModule, Version: corednsVersion},
		{Name: "ptp", Package: cniModule + "/plugins/main/ptp", Version: cniVersion},
		{Name: "loopback", Package: cniModule + "/plugins/main/loopback", Version: cniVersion},
		{Name: "host-local", Package: cniModule + "/plugins/ipam/host-local", Version: cniVersion},
		{Name: "portmap", Package: cniModule + "/plugins/meta/portmap", Version: cniVersion},
		{Name: "crictl", Package: crictlModule + "/cmd/crictl", Version: crictlVersion},
	}
	b.Finish = nil
	return b
}

// tag is <kubernetes version>-<hash of every input>.
func tag() string {
	h := sha256.New()
	fmt.Fprintf(h, "layout %s\nsuite %s\npackages %s\n", layout, suite, strings.Join(packages, ","))
	fmt.Fprintf(h, "controlplane %s\nnodetools %s\n", controlPlane("", nil).Key(), nodeTools("", nil).Key())
	fmt.Fprintf(h, "masked %s\n", strings.Join(masked, ","))
	h.Write(pauseSource)
	_ = fs.WalkDir(capwrapSource, ".", hashFile(h, capwrapSource))
	_ = fs.WalkDir(overlay, ".", hashFile(h, overlay))
	return embedded.KubernetesVersion + "-" + hex.EncodeToString(h.Sum(nil))[:10]
}

func hashFile(w io.Writer, fsys fs.FS) fs.WalkDirFunc {
	return func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %d\n", p, len(data))
		_, err = w.Write(data)
		return err
	}
}

func canBuild() error {
	if runtime.GOOS != "linux" {
		return &CannotBuildError{Err: fmt.Errorf("tether builds its kind node image on Linux only (this is %s): pull kindest/node (docker pull %s)", runtime.GOOS, "kindest/node")}
	}
	return nil
}

// canDebootstrap is checked only when the root filesystem is not cached,
// since that is the only step that needs root and debootstrap.
func canDebootstrap() error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return &CannotBuildError{Err: errors.New("building the kind node image needs debootstrap to make its Debian root filesystem: install it (sudo apt-get install debootstrap)")}
	}
	if os.Geteuid() != 0 {
		return &CannotBuildError{Err: errors.New("building the kind node image runs debootstrap, which needs root"), NeedsRoot: true}
	}
	return nil
}

func (b *builder) dir() string { return filepath.Join(b.opts.CacheDir, "kind-node") }

func (b *builder) ensure(ctx context.Context) (ref string, err error) {
	ref = Ref()
	if Present(ctx) {
		return ref, nil
	}
	if err := canBuild(); err != nil {
		return "", err
	}
	if b.opts.CacheDir == "" {
		return "", errors.New("build kind node image: no cache folder")
	}
	if err := os.MkdirAll(b.dir(), 0o755); err != nil {
		return "", fmt.Errorf("build kind node image: %w", err)
	}
	unlock, err := embedded.LockFile(ctx, filepath.Join(b.dir(), "build.lock"))
	if err != nil {
		return "", fmt.Errorf("build kind node image: %w", err)
	}
	defer unlock()
	if Present(ctx) { // another tether built it while this one waited
		return ref, nil
	}
	start := time.Now()
	b.log.Info("building kind node image", "image", ref)
	if err := b.build(ctx, ref); err != nil {
		return "", fmt.Errorf("build kind node image %s: %w", ref, err)
	}
	b.log.Info("built kind node image", "image", ref, "seconds", time.Since(start).Seconds())
	return ref, nil
}

func (b *builder) build(ctx context.Context, ref string) error {
	// debootstrap first: it waits on the network more than on the CPU,
	// and a missing mirror or root should fail before minutes of compiling.
	rootfs, err := b.rootfs(ctx)
	if err != nil {
		return err
	}
	nt, err := nodeTools(b.opts.CacheDir, b.prog).Ensure(ctx)
	if err != nil {
		return err
	}
	cp, err := controlPlane(b.opts.CacheDir, b.prog).Ensure(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(b.dir(), "work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	small, err := b.smallPrograms(ctx, work)
	if err != nil {
		return err
	}
	images, err := b.componentImages(ctx, cp, nt, small, rootfs, work)
	if err != nil {
		return err
	}
	base := ref + "-base"
	if err := b.importBase(ctx, rootfs, nt, small, images.pause, base); err != nil {
		return err
	}
	defer func() { _, _, _ = runDocker(context.WithoutCancel(ctx), nil, "image", "rm", base) }()
	return b.preload(ctx, base, images, ref)
}

// smallPrograms compiles pause and the runc capability wrapper from the
// sources embedded in tether, in a scratch module, so a tether installed
// without its source can still build a node.
func (b *builder) smallPrograms(ctx context.Context, work string) (map[string]string, error) {
	step := b.prog.Start("build pause and the runc capability wrapper")
	out := map[string]string{}
	var err error
	defer func() { step.Done(err) }()
	srcs := map[string]map[string][]byte{"pause": {"main.go": pauseSource}, "tether-runc": {}}
	for _, f := range []string{"main.go", "capwrap.go"} {
		data, rerr := capwrapSource.ReadFile("capwrap/" + f)
		if rerr != nil {
			err = rerr
			return nil, err
		}
		srcs["tether-runc"][f] = data
	}
	for name, files := range srcs {
		dir := filepath.Join(work, "src-"+name)
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		files["go.mod"] = []byte("module tether.local/" + name + "\n\ngo 1.24\n")
		for f, data := range files {
			if err = os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				return nil, err
			}
		}
		bin := filepath.Join(work, "bin", name)
		cmd := exec.CommandContext(ctx, goCommand(), "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=")
		if output, cerr := cmd.CombinedOutput(); cerr != nil {
			err = fmt.Errorf("build %s: %w: %s", name, cerr, strings.TrimSpace(string(output)))
			return nil, err
		}
		out[name] = bin
	}
	return out, nil
}

func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// mirror is the Debian mirror for debootstrap.
func (b *builder) mirror() string {
	if b.opts.Mirror != "" {
		return b.opts.Mirror
	}
	if m := os.Getenv("TETHER_DEBIAN_MIRROR"); m != "" {
		return m
	}
	if m := aptMirror("/etc/apt"); m != "" {
		return m
	}
	return defaultMirror
}

// aptMirror returns the first Debian archive this machine's apt uses, so a
// machine behind a local mirror builds from it. Security and update
// archives are skipped: debootstrap needs the main archive.
func aptMirror(etcApt string) string {
	var files []string
	files = append(files, filepath.Join(etcApt, "sources.list"))
	more, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", "*"))
	files = append(files, more...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			var url string
			switch {
			case strings.HasPrefix(line, "deb "):
				fields := strings.Fields(line)
				for _, f := range fields[1:] {
					if strings.HasPrefix(f, "[") || strings.HasSuffix(f, "]") || strings.Contains(f, "=") {
						continue
					}
					url = f
					break
				}
			case strings.HasPrefix(line, "URIs:"):
				fields := strings.Fields(strings.TrimPrefix(line, "URIs:"))
				if len(fields) > 0 {
					url = fields[0]
				}
			}
			if url == "" || strings.Contains(url, "security") || !strings.Contains(url, "debian") {
				continue
			}
			return strings.TrimSuffix(url, "/")
		}
	}
	return ""
}

// rootfs returns the cached Debian root filesystem, running debootstrap
// when there is none yet.
func (b *builder) rootfs(ctx context.Context) (dir string, err error) {
	h := sha256.Sum256([]byte(suite + " " + strings.Join(packages, ",")))
	dir = filepath.Join(b.dir(), "rootfs-"+suite+"-"+hex.EncodeToString(h[:])[:10])
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	if err := canDebootstrap(); err != nil {
		return "", err
	}
	mirror := b.mirror()
	step := b.prog.Start(fmt.Sprintf("make the node's Debian %s root filesystem with debootstrap from %s (cached after the first run)", suite, mirror))
	defer func() { step.Done(err) }()
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	logPath := dir + ".debootstrap.log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","), suite, tmp, mirror)
	if err := runWithProgress(cmd, logFile, step); err != nil {
		return "", fmt.Errorf("debootstrap %s from %s: %w (log: %s); check that %s answers, or set TETHER_DEBIAN_MIRROR to a reachable Debian mirror", suite, mirror, err, logPath, mirror)
	}
	// Package caches, lists and documentation are a third of the tree and
	// nothing on a node reads them.
	for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"} {
		full := filepath.Join(tmp, p)
		entries, _ := os.ReadDir(full)
		for _, e := range entries {
			if e.Name() == "partial" || e.Name() == "lock" {
				continue
			}
			_ = os.RemoveAll(filepath.Join(full, e.Name()))
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(suite+"\n"), 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// runWithProgress runs cmd, copying its output to log and its latest line
// to the step.
func runWithProgress(cmd *exec.Cmd, log io.Writer, step progress.Step) error {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		return err
	}
	var last []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if strings.TrimSpace(line) != "" {
				step.Update(line)
				last = append(last, line)
				if len(last) > 5 {
					last = last[1:]
				}
			}
		}
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	if err != nil && len(last) > 0 {
		return fmt.Errorf("%w: %s", err, strings.Join(last, "; "))
	}
	return err
}

// runDocker runs the docker CLI, as kind itself does.
func runDocker(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr []byte, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(e.String())
		if msg == "" {
			msg = err.Error()
		}
		err = fmt.Errorf("docker %s: %s", args[0], msg)
	}
	return o.Bytes(), e.Bytes(), err
}

// sortedKeys keeps tar entries and image lists in a stable order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
