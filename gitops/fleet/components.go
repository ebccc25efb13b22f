package fleet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/gitops/deploy"
)

// Component states, as status shows them.
const (
	// StateRunning: the component runs (its process, or its pod's
	// containers).
	StateRunning = "running"
	// StateRestarting: the component crashed and its supervisor waits to
	// start it again (a pod's CrashLoopBackOff).
	StateRestarting = "restarting"
	// StateDead: nothing runs it and nothing will restart it before the
	// next `tether up`.
	StateDead = "DEAD"
)

// ComponentStatus is one component of the system: a supervised process
// (embedded) or a pod (kind).
type ComponentStatus struct {
	Name string
	// Cluster is the cluster whose pod runs the component; empty for a
	// process on this machine.
	Cluster string
	// PID is the process's supervisor, whose process group holds the
	// component; ChildPID the component itself, 0 while it is restarted.
	PID, ChildPID int
	// Alive says whether the supervisor (or the pod) still runs.
	Alive bool
	State string
	// Restarts counts the restarts since `tether up` started it (a pod's
	// restartCount on kind).
	Restarts int
	// LastExit says how the component last ended, "" if it never did.
	LastExit string
	Log      string
}

// Components lists the system's processes (embedded), whether each runs,
// and what their supervisors recorded.
func Components(wb *cluster.Workbench) ([]ComponentStatus, error) {
	st, err := Load(wb)
	if err != nil || st == nil {
		return nil, err
	}
	var out []ComponentStatus
	for _, p := range st.Processes {
		out = append(out, processStatus(p))
	}
	return out, nil
}

func processStatus(p process.Record) ComponentStatus {
	c := ComponentStatus{Name: p.Name, PID: p.PID, Alive: process.Alive(p), Log: p.Log, State: StateDead}
	if !c.Alive {
		return c
	}
	c.State = StateRunning
	if p.Status == "" {
		// An older up's unsupervised process.
		c.ChildPID = p.PID
		return c
	}
	s, err := process.ReadStatus(p.Status)
	if err != nil {
		// The supervisor has not written it yet.
		c.State = "starting"
		return c
	}
	c.Restarts = s.Restarts
	if s.LastExit != nil {
		c.LastExit = fmt.Sprintf("%s at %s", s.LastExit, s.LastExit.At.Format(time.TimeOnly))
	}
	if s.ChildAlive() {
		c.ChildPID = s.PID
	} else {
		c.State = StateRestarting
	}
	return c
}

// ComponentStatuses lists the system's components on any provider: the
// supervised processes (embedded, existing), else the pods in the system
// namespace of the hub and every spoke (kind), with their restart counts.
func ComponentStatuses(ctx context.Context, wb *cluster.Workbench) ([]ComponentStatus, error) {
	st, err := Load(wb)
	if err != nil || st == nil {
		return nil, err
	}
	if !componentsAsPods(recordedTraits(st)) {
		return Components(wb)
	}
	clusters, err := wb.Clusters()
	if err != nil {
		return nil, err
	}
	per := make([][]ComponentStatus, len(clusters))
	g, gctx := errgroup.WithContext(ctx)
	for i, c := range clusters {
		g.Go(func() error {
			var err error
			per[i], err = podComponents(gctx, c)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []ComponentStatus
	for _, p := range per {
		out = append(out, p...)
	}
	return out, nil
}

// podComponents are tether's pods in a cluster's system namespace.
func podComponents(ctx context.Context, c cluster.Cluster) ([]ComponentStatus, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	pods, err := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: deploy.LabelPartOf + "=tether"})
	if err != nil {
		return nil, fmt.Errorf("list tether's pods in %s on %s: %w", deploy.DefaultNamespace, c.Name, err)
	}
	out := make([]ComponentStatus, 0, len(pods.Items))
	for _, p := range pods.Items {
		out = append(out, podStatus(c.Name, &p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func podStatus(clusterName string, p *corev1.Pod) ComponentStatus {
	c := ComponentStatus{Name: p.Name, Cluster: clusterName, State: string(p.Status.Phase),
		Alive: p.Status.Phase == corev1.PodRunning}
	ready := p.Status.Phase == corev1.PodRunning
	for _, s := range p.Status.ContainerStatuses {
		c.Restarts += int(s.RestartCount)
		if t := s.LastTerminationState.Terminated; t != nil {
			c.LastExit = fmt.Sprintf("exit code %d (%s) at %s", t.ExitCode, t.Reason, t.FinishedAt.Format(time.TimeOnly))
		}
		if w := s.State.Waiting; w != nil {
			c.State, ready = w.Reason, false
		}
		if !s.Ready {
			ready = false
		}
	}
	if ready {
		c.State = StateRunning
	}
	return c
}

func stopAll(ctx context.Context, procs []process.Record) {
	for i := len(procs) - 1; i >= 0; i-- {
		_ = process.Stop(ctx, procs[i], 10*time.Second)
	}
}
