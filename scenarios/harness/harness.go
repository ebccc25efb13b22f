package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// BuildTether compiles the tether command into dir and returns its path.
// moduleRoot is the folder holding go.mod. The binary is static (no cgo), as
// `CGO_ENABLED=0 go install` makes it: on kind such a tether goes into the
// nodes' image as it is, from any working folder, which is the path a user
// without a checkout takes.
func BuildTether(ctx context.Context, moduleRoot, dir string) (string, error) {
	out := filepath.Join(dir, "tether")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/tether")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build tether: %v\n%s", err, b)
	}
	return out, nil
}

// ModuleRoot walks up from the working directory to the folder with go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Driver drives one isolated workbench the way a user does: it runs the
// tether binary with the workbench's own state folder, cache folder and
// kubeconfig, and makes clients from that kubeconfig. Scenarios hold one
// per workbench they brought up or were given. It does not bring the
// workbench up; `Run(ctx, "up")` does, as for a user.
type Driver struct {
	Bin        string
	StateDir   string
	CacheDir   string
	Kubeconfig string
	// Env is added to every command's environment.
	Env []string
	// Log receives every command's output as it runs.
	Log io.Writer
}

// Result is a finished tether command.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs tether with args and waits for it.
func (w *Driver) Run(ctx context.Context, args ...string) Result {
	full := append([]string{"--state-dir", w.StateDir, "--cache-dir", w.CacheDir, "--kubeconfig", w.Kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, w.Bin, full...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+w.Kubeconfig), w.Env...)
	var stdout, stderr bytes.Buffer
	log := w.Log
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "$ tether %s\n", strings.Join(args, " "))
	cmd.Stdout = io.MultiWriter(&stdout, log)
	cmd.Stderr = io.MultiWriter(&stderr, log)
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: code}
}

// RESTConfig returns a client config for the tether-<cluster> context of
// the workbench's kubeconfig: the same path kubectl --context takes.
func (w *Driver) RESTConfig(cluster string) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: w.Kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: "tether-" + cluster}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context tether-%s: %w", cluster, err)
	}
	cfg.Timeout = 15 * time.Second
	return cfg, nil
}

// Client returns a clientset for the tether-<cluster> context.
func (w *Driver) Client(cluster string) (*kubernetes.Clientset, error) {
	cfg, err := w.RESTConfig(cluster)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// ProcessGone reports whether pid no longer runs. A zombie counts as gone:
// once its parent exits, reaping it is init's business, and it holds no
// ports or files.
func ProcessGone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	st := s[i+2]
	return st == 'Z' || st == 'X'
}

// PortFree reports whether nothing listens on 127.0.0.1:port.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// FirstLine is the first line of s, trimmed: bad-input errors must fit one.
func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
