package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/sample"
	"github.com/tether-dev/tether/scenarios/harness"
)

// poll is how often waits look again.
const poll = 250 * time.Millisecond

// eventually calls check until it returns nil, or fails after timeout with
// what it waited for and the last thing check saw.
func eventually(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s; last seen: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w; last seen: %v", what, ctx.Err(), err)
		case <-time.After(poll):
		}
	}
}

// holds calls check for d and fails as soon as it returns an error.
func holds(ctx context.Context, d time.Duration, what string, check func(context.Context) error) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := check(ctx); err != nil {
			return fmt.Errorf("%s: broke after %s: %w", what, d-time.Until(deadline).Round(time.Millisecond), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	return nil
}

// hubApp reads an Application from the hub.
func hubApp(ctx context.Context, e *Env, ns, name string) (*v1alpha1.Application, error) {
	dyn, err := e.Dynamic(Hub)
	if err != nil {
		return nil, err
	}
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("hub Application %s/%s: %w", ns, name, err)
	}
	var app v1alpha1.Application
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app); err != nil {
		return nil, fmt.Errorf("hub Application %s/%s: %w", ns, name, err)
	}
	return &app, nil
}

// spokeApp reads the copy of an Application the agent keeps on its spoke.
func spokeApp(ctx context.Context, e *Env, spoke, name string) (*unstructured.Unstructured, error) {
	dyn, err := e.Dynamic(spoke)
	if err != nil {
		return nil, err
	}
	return dyn.Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace).Get(ctx, name, metav1.GetOptions{})
}

// lookHub says how a user inspects an Application, for error messages.
func lookHub(e *Env, ns, name string) string {
	return fmt.Sprintf("see `tether app get %s -n %s --context tether-hub` and %s", name, ns, e.ComponentLog("agent-"+ns))
}

// syncedAt checks that the hub shows Application ns/name Synced and
// Healthy, at sha when sha is not empty.
func syncedAt(ctx context.Context, e *Env, ns, name, sha string) error {
	app, err := hubApp(ctx, e, ns, name)
	if err != nil {
		return err
	}
	s := app.Status
	if s.Sync.Status != v1alpha1.SyncStatusSynced || s.Health.Status != "Healthy" || (sha != "" && s.Sync.Revision != sha) {
		want := "Synced/Healthy"
		if sha != "" {
			want += " at " + short(sha)
		}
		var conds []string
		for _, c := range s.Conditions {
			conds = append(conds, c.Type+": "+c.Message)
		}
		return fmt.Errorf("hub Application %s/%s is %s/%s at %s, want %s (conditions: %s); %s",
			ns, name, cmp.Or(s.Sync.Status, "-"), cmp.Or(s.Health.Status, "-"), short(s.Sync.Revision), want, cmp.Or(strings.Join(conds, "; "), "-"), lookHub(e, ns, name))
	}
	return nil
}

// sampleSyncedAt checks every spoke's sample Application on the hub.
func sampleSyncedAt(ctx context.Context, e *Env, sha string) error {
	for _, s := range e.Spokes() {
		if err := syncedAt(ctx, e, s, fleet.SampleApp, sha); err != nil {
			return err
		}
	}
	return nil
}

// sampleReplicas is spec.replicas of the sample Deployment on a spoke.
func sampleReplicas(ctx context.Context, e *Env, spoke string) (int32, error) {
	cs, err := e.Kube(spoke)
	if err != nil {
		return 0, err
	}
	d, err := cs.AppsV1().Deployments(fleet.SampleNamespace).Get(ctx, sample.AppName, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("Deployment %s/%s on %s: %w", fleet.SampleNamespace, sample.AppName, spoke, err)
	}
	if d.Spec.Replicas == nil {
		return 1, nil
	}
	return *d.Spec.Replicas, nil
}

// wantReplicas checks the sample Deployment on a spoke.
func wantReplicas(ctx context.Context, e *Env, spoke string, n int32) error {
	got, err := sampleReplicas(ctx, e, spoke)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("Deployment %s/%s on %s has %d replicas, want %d (`kubectl --context tether-%s -n %s get deploy %s`; agent log %s)",
			fleet.SampleNamespace, sample.AppName, spoke, got, n, spoke, fleet.SampleNamespace, sample.AppName, e.ComponentLog("agent-"+spoke))
	}
	return nil
}

// scaleSample commits n replicas and registers a cleanup that commits the
// count the spokes had before, so the sample is left as it was found.
func scaleSample(ctx context.Context, e *Env, n int) (string, error) {
	before, err := sampleReplicas(ctx, e, e.Spokes()[0])
	if err != nil {
		return "", err
	}
	sha, err := e.ScaleSample(ctx, n)
	if err != nil {
		return "", err
	}
	e.Cleanup(fmt.Sprintf("scale the sample back to %d replicas", before), func(ctx context.Context) error {
		sha, err := e.ScaleSample(ctx, int(before))
		if err != nil {
			return err
		}
		// Wait, so the next scenario starts from a fleet at rest.
		return converged(ctx, e, sha, int(before), 90*time.Second)
	})
	return sha, nil
}

// nextReplicas picks a replica count different from the current one, so
// a commit is always a change.
func nextReplicas(ctx context.Context, e *Env) (int, error) {
	cur, err := sampleReplicas(ctx, e, e.Spokes()[0])
	if err != nil {
		return 0, err
	}
	return int(cur%5) + 2, nil
}

// agentConnected checks the hub's Agent object of spoke.
func agentConnected(ctx context.Context, e *Env, spoke string) error {
	dyn, err := e.Dynamic(Hub)
	if err != nil {
		return err
	}
	u, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Get(ctx, spoke, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("hub Agent %s/%s: %w", cluster.SystemNamespace, spoke, err)
	}
	connected, _, _ := unstructured.NestedBool(u.Object, "status", "connected")
	if !connected {
		return fmt.Errorf("hub Agent %s/%s says not connected (`kubectl --context tether-hub -n %s get agents`; principal log %s, agent log %s)",
			cluster.SystemNamespace, spoke, cluster.SystemNamespace, e.ComponentLog("principal"), e.ComponentLog("agent-"+spoke))
	}
	return nil
}

// agentConnectedSince checks that spoke's agent has a stream to the
// principal opened at or after t (the Agent object's connectedSince, which
// has second precision).
func agentConnectedSince(ctx context.Context, e *Env, spoke string, t time.Time) error {
	if err := agentConnected(ctx, e, spoke); err != nil {
		return err
	}
	dyn, err := e.Dynamic(Hub)
	if err != nil {
		return err
	}
	u, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Get(ctx, spoke, metav1.GetOptions{})
	if err != nil {
		return err
	}
	since, _, _ := unstructured.NestedString(u.Object, "status", "connectedSince")
	at, err := time.Parse(time.RFC3339, since)
	if err != nil || at.Before(t.Truncate(time.Second)) {
		return fmt.Errorf("hub Agent %s/%s was last connected at %q, before the restart at %s (agent log %s)",
			cluster.SystemNamespace, spoke, since, t.UTC().Format(time.RFC3339), e.ComponentLog("agent-"+spoke))
	}
	return nil
}

// createHubApp creates an Application on the hub in the spoke's namespace
// and registers its removal (hub, then the spoke's copy, then the
// destination namespace on the spoke).
func createHubApp(ctx context.Context, e *Env, spoke, name, path, dest string, policy *v1alpha1.SyncPolicy) error {
	dyn, err := e.Dynamic(Hub)
	if err != nil {
		return err
	}
	app := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: spoke, Labels: map[string]string{"tether.dev/scenario": e.name}},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: e.Fleet().GitURL, TargetRevision: sample.Branch, Path: path},
			Destination: v1alpha1.Destination{Namespace: dest},
			SyncPolicy:  policy,
		},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
	if err != nil {
		return err
	}
	res := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(spoke)
	if _, err := res.Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create hub Application %s/%s: %w", spoke, name, err)
	}
	e.Logf("created hub Application %s/%s (path %s, destination %s)", spoke, name, path, dest)
	e.Cleanup(fmt.Sprintf("delete Application %s/%s and namespace %s on %s", spoke, name, dest, spoke), func(ctx context.Context) error {
		if err := res.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		spokeDyn, err := e.Dynamic(spoke)
		if err != nil {
			return err
		}
		// The principal tells the agent to remove its copy; give it the
		// chance, then make sure (an agent replaced by a scenario may be
		// gone already).
		spokeApps := spokeDyn.Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace)
		if eventually(ctx, 15*time.Second, "spoke copy removed", func(ctx context.Context) error {
			_, err := spokeApps.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return errors.New("still there")
		}) != nil {
			if err := spokeApps.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		if dest == "default" || dest == "" {
			return nil
		}
		cs, err := e.Kube(spoke)
		if err != nil {
			return err
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, dest, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	})
	return nil
}

// automated is the policy the sample uses.
func automated(prune bool) *v1alpha1.SyncPolicy {
	return &v1alpha1.SyncPolicy{Automated: &v1alpha1.Automated{Prune: prune, SelfHeal: true}, SyncOptions: []string{v1alpha1.SyncOptionCreateNamespace}}
}

// commitFiles writes files into the sample repository under folder and
// registers a commit removing them again.
func commitFiles(ctx context.Context, e *Env, folder string, files map[string]string) (string, error) {
	var edits []sample.Edit
	var remove []sample.Edit
	for _, name := range sortedKeys(files) {
		p := folder + "/" + name
		edits = append(edits, sample.WriteFile(p, []byte(files[name])))
		remove = append(remove, sample.RemoveFile(p))
	}
	sha, err := e.Commit(ctx, e.name+": add "+folder, edits...)
	if err != nil {
		return "", err
	}
	e.Cleanup("remove "+folder+" from the sample repository", func(ctx context.Context) error {
		// Every file the scenario may have added under folder.
		for _, extra := range []string{"broken.yaml", "b.yaml"} {
			remove = append(remove, sample.RemoveFile(folder+"/"+extra))
		}
		sha, err := e.Commit(ctx, e.name+": remove "+folder, remove...)
		if err != nil {
			return err
		}
		// The commit moves every sample too: wait, so the next scenario
		// starts from a fleet at rest.
		return eventually(ctx, 90*time.Second, "every sample Synced at the clean-up commit", func(ctx context.Context) error {
			return sampleSyncedAt(ctx, e, sha)
		})
	})
	return sha, nil
}

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
}

// component returns the supervised process record of a GitOps component.
func component(e *Env, name string) (process.Record, error) {
	for _, p := range e.Fleet().Processes {
		if p.Name == name {
			if !process.Alive(p) {
				return p, fmt.Errorf("component %s (pid %d) is not running; `tether status` shows the components, `tether up` restarts them; log %s", name, p.PID, p.Log)
			}
			return p, nil
		}
	}
	return process.Record{}, fmt.Errorf("no supervised component %q in %s (provider %s): these scenarios need the embedded provider",
		name, filepath.Join(e.Workbench().StateDir, "fleet", "fleet.json"), e.Fleet().Provider)
}

// replaceComponent stops the supervised component name with its
// supervisor, so nothing restarts it (SIGKILL to the whole process group
// when kill, else SIGTERM), and starts a copy with the same command line,
// passed through edit — what docs/debugging.md has users do to run a
// component under a debugger. The copy is stopped and the supervised set
// restored by cleanups.
func replaceComponent(ctx context.Context, e *Env, name string, kill bool, edit func([]string) []string) (*harness.Process, error) {
	rec, err := component(e, name)
	if err != nil {
		return nil, err
	}
	e.restoreComponents()
	if err := stopSupervised(ctx, e, rec, kill); err != nil {
		return nil, err
	}
	return startLike(e, rec, edit)
}

// stopSupervised ends a supervised component for good: the supervisor and
// its child, which share a process group (SIGKILL to the group when kill,
// else process.Stop's SIGTERM), and waits until both are gone.
func stopSupervised(ctx context.Context, e *Env, rec process.Record, kill bool) error {
	child, _ := supervisedChild(rec)
	if kill {
		e.Logf("SIGKILL %s and its supervisor (process group %d)", rec.Name, rec.PID)
		if err := syscall.Kill(-rec.PID, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %s (process group %d): %w", rec.Name, rec.PID, err)
		}
	} else {
		e.Logf("stop %s and its supervisor (pid %d)", rec.Name, rec.PID)
		if err := process.Stop(ctx, rec, 10*time.Second); err != nil {
			return fmt.Errorf("stop %s (pid %d): %w", rec.Name, rec.PID, err)
		}
	}
	return eventually(ctx, 15*time.Second, rec.Name+" gone", func(context.Context) error {
		for _, pid := range []int{rec.PID, child.PID} {
			if pid > 0 && !harness.ProcessGone(pid) {
				return fmt.Errorf("pid %d still runs", pid)
			}
		}
		return nil
	})
}

// supervisedChild is what a component's supervisor last recorded of it.
func supervisedChild(rec process.Record) (process.Status, error) {
	if rec.Status == "" {
		return process.Status{}, fmt.Errorf("%s (pid %d) has no supervisor: started by an older tether", rec.Name, rec.PID)
	}
	return process.ReadStatus(rec.Status)
}

// crashComponent SIGKILLs a supervised component's process, not its
// supervisor — a crash — and waits until the supervisor has started it
// again, counted the restart, and the component answers healthy. It
// returns how long the component was away.
func crashComponent(ctx context.Context, e *Env, name string) (time.Duration, error) {
	rec, err := component(e, name)
	if err != nil {
		return 0, err
	}
	var before process.Status
	if err := eventually(ctx, 15*time.Second, name+" runs under its supervisor", func(context.Context) error {
		if before, err = supervisedChild(rec); err != nil {
			return err
		}
		if !before.ChildAlive() {
			return fmt.Errorf("its supervisor has no child running (restarts %d; log %s)", before.Restarts, rec.Log)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	killed := time.Now()
	e.Logf("SIGKILL %s (pid %d; its supervisor, pid %d, stays)", name, before.PID, rec.PID)
	if err := syscallKill(before.PID); err != nil {
		return 0, fmt.Errorf("kill %s (pid %d): %w", name, before.PID, err)
	}
	err = eventually(ctx, 45*time.Second, name+" restarted by its supervisor and healthy", func(ctx context.Context) error {
		now, err := supervisedChild(rec)
		if err != nil {
			return err
		}
		if now.PID == before.PID || !now.ChildAlive() {
			return fmt.Errorf("not running again yet (last exit %v; log %s)", now.LastExit, rec.Log)
		}
		if now.Restarts != before.Restarts+1 {
			return fmt.Errorf("supervisor counts %d restarts, want %d (log %s)", now.Restarts, before.Restarts+1, rec.Log)
		}
		return componentHealthy(ctx, e, rec, killed)
	})
	away := time.Since(killed)
	if err == nil {
		e.Logf("%s back and healthy %s after the kill", name, away.Round(10*time.Millisecond))
	}
	return away, err
}

// componentHealthy checks that a component of the embedded provider does
// its job again, from the outside: its health endpoint, what it serves,
// or, for an agent, a stream to the principal opened since.
func componentHealthy(ctx context.Context, e *Env, rec process.Record, since time.Time) error {
	st := e.Fleet()
	var url string
	switch {
	case rec.Name == "principal":
		url = "http://" + st.PrincipalHTTP + "/healthz"
	case rec.Name == "service-proxy":
		// The principal's Service: served by the proxy, answered by the
		// principal.
		url = "http://" + st.PrincipalServiceHTTP + "/healthz"
	case rec.Name == "git":
		url = st.LocalGitURL + "/info/refs?service=git-upload-pack"
	case strings.HasPrefix(rec.Name, "agent-"):
		spoke := strings.TrimPrefix(rec.Name, "agent-")
		if err := httpOK(ctx, "http://"+flagValue(rec.Args, "--health-addr")+"/healthz"); err != nil {
			return fmt.Errorf("%s: %w", rec.Name, err)
		}
		return agentConnectedSince(ctx, e, spoke, since)
	default:
		return fmt.Errorf("no health check for component %s", rec.Name)
	}
	if err := httpOK(ctx, url); err != nil {
		return fmt.Errorf("%s: %w", rec.Name, err)
	}
	return nil
}

// httpOK checks that url answers 200.
func httpOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s answered %s", url, resp.Status)
	}
	return nil
}

// componentRestarts is the restart count `tether status` shows for each
// component, by name.
func componentRestarts(ctx context.Context, e *Env) (map[string]int, error) {
	res := e.Tether(ctx, "status")
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("tether status failed (exit %d): %s", res.ExitCode, lastLines(res.Stderr, 5))
	}
	out := map[string]int{}
	table := false
	for _, line := range strings.Split(res.Stdout, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "COMPONENT" && f[3] == "RESTARTS":
			table = true
		case !table:
		case len(f) < 4:
			table = false
		default:
			n, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("tether status: restarts of %s are %q, not a number:\n%s", f[0], f[3], res.Stdout)
			}
			out[f[0]] = n
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tether status lists no GitOps components:\n%s", res.Stdout)
	}
	return out, nil
}

// setFlag replaces the value of --flag in args.
func setFlag(args []string, flag, value string) []string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			args[i+1] = value
			return args
		}
	}
	return append(args, flag, value)
}

// flagValue is the value of --flag in args, or "".
func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// partitionStep names the step that readies the cut of spoke's agent.
func partitionStep(e *Env, spoke string) string {
	if e.Kind() {
		return "find where " + spoke + "'s agent reaches the principal: the FORWARD chain of its kind node"
	}
	return "put a cuttable proxy between " + spoke + "'s agent and the principal"
}

// partition readies a cut between spoke's agent and the principal, not
// cut yet. On the embedded provider it puts a proxy in between: the agent
// is replaced by one dialing the proxy. On kind the agent pod stays as it
// is and the cut is firewall rules in the spoke's node (kindPartition).
func partition(ctx context.Context, e *Env, spoke string) (link, error) {
	if e.Kind() {
		c, err := kindPartition(ctx, e, spoke)
		if err != nil {
			return nil, err
		}
		return c, eventually(ctx, time.Minute, spoke+"'s agent connected before the cut", func(ctx context.Context) error {
			return agentConnected(ctx, e, spoke)
		})
	}
	rec, err := component(e, "agent-"+spoke)
	if err != nil {
		return nil, err
	}
	// Dial on to wherever the agent dialed: the principal's Service
	// through the embedded service proxy, so the cut sits where a network
	// would cut it and the agent still reaches whatever the Service leads
	// to.
	target := flagValue(rec.Args, "--principal")
	if target == "" {
		target = agentTarget(e)
	}
	px, err := harness.NewProxy(target)
	if err != nil {
		return nil, err
	}
	e.Cleanup("close the proxy in front of the principal", func(context.Context) error { return px.Close() })
	if _, err := replaceComponent(ctx, e, "agent-"+spoke, false, func(args []string) []string {
		return setFlag(args, "--principal", px.Addr())
	}); err != nil {
		return nil, err
	}
	e.Logf("agent-%s now dials the principal through %s", spoke, px.Addr())
	return proxyLink{px}, eventually(ctx, time.Minute, "the replacement agent connected", func(ctx context.Context) error {
		return agentConnected(ctx, e, spoke)
	})
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return cmp.Or(sha, "-")
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// agentStream names spoke's current stream to the principal as the hub's
// Agent object records it (opened when, from where); an error when the
// Agent says it is not connected.
func agentStream(ctx context.Context, e *Env, spoke string) (string, error) {
	if err := agentConnected(ctx, e, spoke); err != nil {
		return "", err
	}
	dyn, err := e.Dynamic(Hub)
	if err != nil {
		return "", err
	}
	u, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Get(ctx, spoke, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	since, _, _ := unstructured.NestedString(u.Object, "status", "connectedSince")
	addr, _, _ := unstructured.NestedString(u.Object, "status", "address")
	return "connected since " + cmp.Or(since, "-") + " from " + cmp.Or(addr, "-"), nil
}

// sampleReady is the first step of most fleet scenarios: they start from a
// fleet at rest.
func sampleReady(e *Env) Step {
	return Step{Name: "every spoke's sample is Synced and Healthy on the hub", Run: func(ctx context.Context) error {
		return eventually(ctx, 2*time.Minute, "sample Synced everywhere", func(ctx context.Context) error {
			return sampleSyncedAt(ctx, e, "")
		})
	}}
}

// converged waits until every spoke is Synced at sha with n replicas.
func converged(ctx context.Context, e *Env, sha string, n int, within time.Duration) error {
	return eventually(ctx, within, "every spoke Synced at "+short(sha)+" with "+strconv.Itoa(n)+" replicas", func(ctx context.Context) error {
		if err := sampleSyncedAt(ctx, e, sha); err != nil {
			return err
		}
		for _, s := range e.Spokes() {
			if err := wantReplicas(ctx, e, s, int32(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// startLike starts a copy of a supervised component with its recorded
// command line, output in the scenario's folder; a cleanup stops it.
func startLike(e *Env, rec process.Record, edit func([]string) []string) (*harness.Process, error) {
	args := append([]string(nil), rec.Args[1:]...)
	if edit != nil {
		args = edit(args)
	}
	bin := rec.Args[0]
	if _, err := os.Stat(bin); err != nil {
		// The binary that ran up is gone (a `go run` build): this one is
		// the same command.
		bin = e.wb.Bin
	}
	p, logPath, err := startProcess(e, rec.Name, bin, args...)
	if err != nil {
		return nil, err
	}
	e.Logf("started a replacement %s: log %s", rec.Name, logPath)
	stopAtCleanup(e, "stop the replacement "+rec.Name, p)
	return p, nil
}

// startProcess runs bin with args as the scenario's process name, its
// output in name.log in the scenario's folder, which the result lists.
func startProcess(e *Env, name, bin string, args ...string) (*harness.Process, string, error) {
	logPath := filepath.Join(e.Dir(), name+".log")
	p, err := harness.Start(name, bin, logPath, nil, args...)
	if err != nil {
		return nil, "", err
	}
	e.NoteLog(logPath)
	return p, logPath, nil
}

// stopAtCleanup registers stopping p, under the cleanup name what.
func stopAtCleanup(e *Env, what string, p *harness.Process) {
	e.Cleanup(what, func(context.Context) error { p.Stop(); return nil })
}

// startIntercept runs `tether intercept start args... -v` as process name,
// stopped at cleanup, and waits until it says it intercepts: within on
// embedded, 2 minutes on kind, where the traffic-agent is a pod that is
// scheduled, started and probed first.
func startIntercept(ctx context.Context, e *Env, name string, within time.Duration, args ...string) (*harness.Process, error) {
	cmd := append(append([]string{"intercept", "start"}, args...), "-v")
	p, logPath, err := startProcess(e, name, e.wb.Bin, e.TetherArgs(cmd...)...)
	if err != nil {
		return nil, err
	}
	stopAtCleanup(e, "stop intercept process "+name, p)
	if e.Kind() {
		within = 2 * time.Minute
	}
	return p, eventually(ctx, within, "tether intercept start ready ("+name+")", func(context.Context) error {
		if p.Exited() {
			return fmt.Errorf("tether %s exited: %s", strings.Join(cmd, " "), lastLines(p.Output(), 5))
		}
		if strings.Contains(p.Output(), "press Ctrl-C") {
			return nil
		}
		return fmt.Errorf("no \"press Ctrl-C\" in %s yet", logPath)
	})
}

// readFile is os.ReadFile as a string, "" when unreadable.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}
