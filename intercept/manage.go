package intercept

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
)

// TokenEnv carries the session token to an agent process: an environment
// variable, not a flag, so it does not show in ps.
const TokenEnv = "TETHER_INTERCEPT_TOKEN"

// ExecAgent returns a launcher that runs argv (the tether binary and the
// arguments that reach `intercept agent`, with its kubeconfig) plus
// --record, in its own session so it outlives the workbench: it must,
// to fail open after the workbench is killed. Its output goes to logPath.
func ExecAgent(argv []string, logPath string) AgentLauncher {
	return func(ctx context.Context, rec *record.Record, token string) (func(), error) {
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		defer log.Close()
		cmd := exec.Command(argv[0], append(argv[1:], "--record", string(b))...)
		cmd.Env = append(os.Environ(), TokenEnv+"="+token)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		return func() {
			_ = cmd.Process.Kill()
			<-done
		}, nil
	}
}

// Status is one intercept as found in a cluster.
type Status struct {
	record.Record
	// Alive: its Lease was renewed within its duration.
	Alive bool
}

// List returns the intercepts recorded on the cluster's Services.
func List(ctx context.Context, c kubernetes.Interface) ([]Status, error) {
	svcs, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, s := range svcs.Items {
		rec, err := record.FromService(&s)
		if err != nil || rec == nil {
			continue
		}
		alive, err := leaseAlive(ctx, c, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, Status{Record: *rec, Alive: alive})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ErrNotFound: no intercept of that name in the cluster.
var ErrNotFound = errors.New("no such intercept")

// StopByName ends intercept name from any process: the Service is
// restored, the agent's objects deleted; the workbench holding it sees its
// Lease disappear and exits.
func StopByName(ctx context.Context, c kubernetes.Interface, name string) error {
	list, err := List(ctx, c)
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.Name == name {
			return record.Cleanup(ctx, c, &s.Record)
		}
	}
	return fmt.Errorf("intercept %q: %w", name, ErrNotFound)
}

// Sweep cleans up intercepts whose Lease has expired (a workbench that
// died while its agent could not restore the Service either) and
// traffic-agent objects no live intercept owns. It returns the names it
// cleaned.
func Sweep(ctx context.Context, c kubernetes.Interface) ([]string, error) {
	list, err := List(ctx, c)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	var swept []string
	var errs []error
	for _, s := range list {
		if s.Alive {
			live[s.Namespace+"/"+s.Name] = true
			continue
		}
		if err := record.Cleanup(ctx, c, &s.Record); err != nil {
			errs = append(errs, err)
		}
		swept = append(swept, s.Name)
	}
	// Leftovers without a Service record: an interrupted start, or a
	// Service deleted while intercepted.
	leases, err := c.CoordinationV1().Leases("").List(ctx, metav1.ListOptions{LabelSelector: record.ComponentSelector})
	if err != nil {
		return swept, err
	}
	for _, l := range leases.Items {
		name := l.Labels[record.LabelIntercept]
		if live[l.Namespace+"/"+name] || record.LeaseAlive(&l, time.Now()) {
			continue
		}
		rec := &record.Record{Name: name, Namespace: l.Namespace, Lease: l.Name, AgentPod: "tether-agent-" + name}
		if err := record.Cleanup(ctx, c, rec); err != nil {
			errs = append(errs, err)
		}
		swept = append(swept, name)
	}
	return swept, errors.Join(errs...)
}

// Uninstall removes everything tether put into the cluster for
// intercepts, live or not: Services are restored, agents and Leases
// deleted.
func Uninstall(ctx context.Context, c kubernetes.Interface) error {
	list, err := List(ctx, c)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range list {
		errs = append(errs, record.Cleanup(ctx, c, &s.Record))
	}
	sel := metav1.ListOptions{LabelSelector: record.ComponentSelector}
	ignore := func(err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if pods, err := c.CoreV1().Pods("").List(ctx, sel); err == nil {
		for _, p := range pods.Items {
			errs = append(errs, ignore(c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})))
		}
	} else {
		errs = append(errs, err)
	}
	if deps, err := c.AppsV1().Deployments("").List(ctx, sel); err == nil {
		for _, d := range deps.Items {
			errs = append(errs, ignore(c.AppsV1().Deployments(d.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{})))
		}
	} else {
		errs = append(errs, err)
	}
	if leases, err := c.CoordinationV1().Leases("").List(ctx, sel); err == nil {
		for _, l := range leases.Items {
			errs = append(errs, ignore(c.CoordinationV1().Leases(l.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{})))
		}
	} else {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
