package catalog

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/sample"
	"github.com/tether-dev/tether/scenarios/harness"
)

// Hub is the hub cluster's name in every workbench scenarios run on.
const Hub = "hub"

// Env is what one run of a scenario works with: the workbench, clients for
// its clusters, a folder of its own, and the cleanups it registered.
type Env struct {
	name     string
	wb       WorkbenchPaths
	upArgs   []string
	fleet    *fleet.State
	dir      string
	obs      Observer
	cleanups []cleanup
	logs     []string
	restore  bool
}

type cleanup struct {
	name string
	fn   func(context.Context) error
}

// Workbench names the binary and folders of the workbench the scenario
// runs on.
func (e *Env) Workbench() WorkbenchPaths { return e.wb }

// Fleet is the GitOps system's record (fleet/fleet.json) as it was when
// the scenario started: Git URLs, the principal's address, processes.
func (e *Env) Fleet() *fleet.State { return e.fleet }

// Spokes are the workbench's spokes, in order.
func (e *Env) Spokes() []string { return e.fleet.Spokes }

// Dir is a folder of the scenario's own; it outlives the run so logs
// written there can be read after a failure.
func (e *Env) Dir() string { return e.dir }

// Logf sends a line of detail to the observer.
func (e *Env) Logf(format string, args ...any) {
	e.obs.Log(e.name, fmt.Sprintf(format, args...))
}

// Cleanup registers fn to run after the steps, last registered first,
// whether the steps passed or not.
func (e *Env) Cleanup(name string, fn func(ctx context.Context) error) {
	e.cleanups = append(e.cleanups, cleanup{name: name, fn: fn})
}

// NoteLog adds a file to the result's "where to look".
func (e *Env) NoteLog(path string) { e.logs = append(e.logs, path) }

// Tether runs the tether binary against the workbench and waits for it.
func (e *Env) Tether(ctx context.Context, args ...string) harness.Result {
	return driverFor(e.wb, &lineLog{obs: e.obs, scenario: e.name}).Run(ctx, args...)
}

// TetherArgs are the flags that point a tether command at the workbench;
// use them for processes a scenario starts itself.
func (e *Env) TetherArgs(args ...string) []string {
	return append([]string{"--state-dir", e.wb.StateDir, "--cache-dir", e.wb.CacheDir, "--kubeconfig", e.wb.Kubeconfig}, args...)
}

// Kube is a clientset for the tether-<cluster> context.
func (e *Env) Kube(clusterName string) (*kubernetes.Clientset, error) {
	return driverFor(e.wb, nil).Client(clusterName)
}

// Dynamic is a dynamic client for the tether-<cluster> context.
func (e *Env) Dynamic(clusterName string) (dynamic.Interface, error) {
	cfg, err := driverFor(e.wb, nil).RESTConfig(clusterName)
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(cfg)
}

// Kind reports whether the workbench runs on kind: components are pods,
// Services are served by kube-proxy, not by loopback processes.
func (e *Env) Kind() bool { return e.fleet.Provider == cluster.ProviderKind }

// Commit changes the sample repository the way a user's git push does and
// returns the new commit: on loopback (embedded) or through a
// port-forward to the Git server's pod (kind).
func (e *Env) Commit(ctx context.Context, msg string, edits ...sample.Edit) (string, error) {
	cw, err := cluster.New(cluster.Options{StateDir: e.wb.StateDir, CacheDir: e.wb.CacheDir, Kubeconfig: e.wb.Kubeconfig})
	if err != nil {
		return "", err
	}
	sha, err := fleet.Commit(ctx, cw, msg, edits...)
	if err != nil {
		return "", fmt.Errorf("commit %q to the sample repository: %w (Git server log: %s)", msg, err, e.ComponentLog("git"))
	}
	e.Logf("committed %.12s: %s", sha, msg)
	return sha, nil
}

// ScaleSample commits replicas for the sample everywhere (plain, and each
// spoke's overlay), as `tether` users do to watch a rollout.
func (e *Env) ScaleSample(ctx context.Context, replicas int) (string, error) {
	cw, err := cluster.New(cluster.Options{StateDir: e.wb.StateDir, CacheDir: e.wb.CacheDir, Kubeconfig: e.wb.Kubeconfig})
	if err != nil {
		return "", err
	}
	sha, err := fleet.MakeChange(ctx, cw, replicas)
	if err != nil {
		return "", fmt.Errorf("commit %d replicas to the sample repository: %w (Git server log: %s)", replicas, err, e.ComponentLog("git"))
	}
	e.Logf("committed %.12s: the sample at %d replicas", sha, replicas)
	return sha, nil
}

// ComponentLog says where a GitOps component's log is (git, principal,
// agent-<spoke>): its file on the embedded provider, the kubectl command
// that shows its pod's log on kind.
func (e *Env) ComponentLog(name string) string {
	if e.Kind() {
		return kindLogCommand(name)
	}
	for _, p := range e.fleet.Processes {
		if p.Name == name {
			return p.Log
		}
	}
	return filepath.Join(e.wb.StateDir, "fleet", "logs", name+".log")
}

// restoreComponents registers, once, the cleanup that puts the supervised
// components back after a scenario replaced or killed some: `tether up`
// finds them gone and restarts the set, as docs/debugging.md tells users.
func (e *Env) restoreComponents() {
	if e.restore {
		return
	}
	e.restore = true
	e.Cleanup("restore the supervised GitOps components (tether up)", func(ctx context.Context) error {
		start := time.Now()
		// up restarts the whole set on new addresses: later cleanups
		// (a commit to the Git server) need the new record.
		if _, err := e.reattach(ctx); err != nil {
			return err
		}
		// up's own wait can pass on the hub's stale statuses; a push made
		// before an agent's first stream to the new principal is only
		// fetched at the agent's next poll (minutes). Wait for every agent
		// to be connected to the new principal.
		return eventually(ctx, 90*time.Second, "every agent connected to the restarted principal", func(ctx context.Context) error {
			for _, s := range e.Spokes() {
				if err := agentConnectedSince(ctx, e, s, start); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// reattach runs `tether up` with the run's arguments, as a user does to
// reattach to the workbench or restart what died, and takes the fleet
// record up leaves: restarted components may have new addresses. It
// returns what up printed.
func (e *Env) reattach(ctx context.Context) (harness.Result, error) {
	res := e.Tether(ctx, append([]string{"up"}, e.upArgs...)...)
	if res.ExitCode != 0 {
		return res, fmt.Errorf("tether up failed (exit %d): %s", res.ExitCode, lastLines(res.Stderr, 5))
	}
	st, err := loadFleet(e.wb)
	if err != nil || st == nil {
		return res, fmt.Errorf("read the fleet record after tether up: %v", err)
	}
	e.fleet = st
	return res, nil
}

func (e *Env) runCleanups(ctx context.Context) []string {
	// A fresh deadline: the scenario's may have run out, and cleanup
	// matters most then.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*time.Minute)
	defer cancel()
	var errs []string
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		c := e.cleanups[i]
		step := "clean up: " + c.name
		e.obs.StepStarted(e.name, step)
		t0 := time.Now()
		err := runStep(cctx, Step{Name: step, Run: c.fn})
		e.obs.StepDone(e.name, step, time.Since(t0), err)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", c.name, err))
		}
	}
	return errs
}
