package catalog

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/scenarios/harness"
)

// debugPrincipal is the headline debug flow of docs/debugging.md, told the
// way a developer does it: run the principal locally, intercept its hub
// Service (the agents' port 8443 and the Git webhook's port 8080), watch
// the agents and the pushes come, restart it, stop the intercepts and see
// the supervised principal serve again. Nothing supervised is killed.
func debugPrincipal() Scenario {
	return Scenario{
		Name:        "debug-principal",
		Description: "a principal run locally behind intercepts of its hub Service gets the agents' streams and the Git webhook, survives a restart, and stop gives both back",
		Labels:      []string{LabelIntercept},
		Timeout:     8 * time.Minute,
		Steps: func(e *Env) []Step {
			d := &debugRun{e: e}
			return []Step{
				{Name: "the agents dial the principal's Service and reach the supervised principal through it", Run: d.agentsDialTheService},
				{Name: "run a principal locally (tether principal with the fleet's TLS folder and the hub's admin kubeconfig)", Run: d.startLocal},
				{Name: "tether intercept start " + principalTarget + " --port 8443: the agents' streams come to the local principal", Run: d.interceptGRPC},
				{Name: "tether intercept start " + principalTarget + " --port 8080: the Git push webhook comes to it too", Run: d.interceptHTTP},
				{Name: "a commit reaches both spokes without `app refresh`, and a sync's result comes back through the local principal", Run: d.commitAndSync},
				{Name: "restart the local principal: the agents reconnect to the new process", Run: d.restartLocal},
				{Name: "tether intercept stop the 8080 one, Ctrl-C the 8443 one: the agents return to the supervised principal, the Service is as it was", Run: d.stop},
			}
		},
	}
}

// principalTarget is the principal's Service as `tether intercept` names it.
const principalTarget = Hub + "/" + deploy.DefaultNamespace + "/" + deploy.PrincipalName

// debugRun is one run of debug-principal: what its steps share.
type debugRun struct {
	e *Env
	// localGRPC and localHTTP are the local principal's --listen and
	// --http: fixed for the run, so a restarted process is where both
	// intercepts lead.
	localGRPC, localHTTP string
	local                *harness.Process
	grpcIcpt, httpIcpt   *harness.Process
	orig                 *corev1.Service
	// sinceIntercept is the supervised principal's log length once every
	// agent reached the local principal: after it, no agent may connect
	// there until the intercepts stop.
	sinceIntercept int
}

// supervisedLog is the supervised principal's log: its file (embedded)
// or its pod's (kind).
func (d *debugRun) supervisedLog() string {
	if !d.e.Kind() {
		return readFile(d.e.ComponentLog("principal"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log, err := kindPodLog(ctx, d.e, Hub, deploy.PrincipalName)
	if err != nil {
		d.e.Logf("read the supervised principal's pod log: %v", err)
	}
	return log
}

// where names the logs that say which principal an agent or a push
// reached, for failure messages.
func (d *debugRun) where() string {
	var logs []string
	for _, p := range []*harness.Process{d.local, d.grpcIcpt, d.httpIcpt} {
		if p != nil {
			logs = append(logs, p.Log)
		}
	}
	logs = append(logs, d.e.ComponentLog("principal"))
	if !d.e.Kind() {
		logs = append(logs, d.e.ComponentLog("service-proxy"))
	}
	for _, s := range d.e.Spokes() {
		logs = append(logs, d.e.ComponentLog("agent-"+s))
	}
	return "logs: " + strings.Join(logs, ", ")
}

// connected checks that log, from offset on, shows every spoke's agent
// connecting.
func (d *debugRun) connected(which, path string, log func() string, from int) func(context.Context) error {
	return func(context.Context) error {
		out := log()
		if len(out) < from {
			return fmt.Errorf("the %s log %s shrank below %d bytes: was it replaced?", which, path, from)
		}
		out = out[from:]
		for _, s := range d.e.Spokes() {
			if !regexp.MustCompile(`msg="agent connected" agent=` + regexp.QuoteMeta(s) + ` `).MatchString(out) {
				return fmt.Errorf("the %s log %s shows no `agent connected agent=%s` yet; %s", which, path, s, d.where())
			}
		}
		return nil
	}
}

func (d *debugRun) localConnected(from int) func(context.Context) error {
	return d.connected("local principal", d.local.Log, d.local.Output, from)
}

func (d *debugRun) agentsDialTheService(ctx context.Context) error {
	e := d.e
	// up (a reattach, or a restart of components an older up left) tells
	// the user where the agents dial.
	up, err := e.reattach(ctx)
	if err != nil {
		return err
	}
	st := e.fleet
	if e.Kind() {
		// The agents dial the NodePort of the principal's Service on the
		// hub node: kube-proxy sends them to whatever the Service selects.
		if err := d.agentsDial(ctx, st.Principal); err != nil {
			return err
		}
	} else {
		if st.PrincipalService == "" || st.PrincipalService == st.Principal || st.PrincipalServiceHTTP == "" || st.PrincipalServiceHTTP == st.PrincipalService {
			return fmt.Errorf("%s records principal %q, principalService %q, principalServiceHTTP %q: want the Service's two pinned addresses, apart from the process's",
				filepath.Join(e.Workbench().StateDir, "fleet", "fleet.json"), st.Principal, st.PrincipalService, st.PrincipalServiceHTTP)
		}
		want := "Agents dial the principal's Service " + principalTarget + ":8443 at " + st.PrincipalService
		if !strings.Contains(up.Stdout, want) {
			return fmt.Errorf("tether up did not print %q; it printed:\n%s", want, up.Stdout)
		}
		if err := d.agentsDial(ctx, st.PrincipalService); err != nil {
			return err
		}
	}
	if err := eventually(ctx, 30*time.Second, "every agent connected to the supervised principal",
		d.connected("supervised principal", e.ComponentLog("principal"), d.supervisedLog, 0)); err != nil {
		return err
	}
	if !e.Kind() {
		status := e.Tether(ctx, "status")
		if !regexp.MustCompile(`(?m)^service-proxy +running +\d+ `).MatchString(status.Stdout) {
			return fmt.Errorf("tether status does not show the service proxy running (log %s):\n%s", e.ComponentLog("service-proxy"), status.Stdout)
		}
	}
	cs, err := e.Kube(Hub)
	if err != nil {
		return err
	}
	if d.orig, err = cs.CoreV1().Services(deploy.DefaultNamespace).Get(ctx, deploy.PrincipalName, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("the principal's Service on the hub: %w", err)
	}
	// Registered first, so it runs last: after the intercepts are stopped
	// and the local principal is gone, whatever step failed.
	before, err := sampleReplicas(ctx, e, e.Spokes()[0])
	if err != nil {
		return err
	}
	e.Cleanup(fmt.Sprintf("every agent back on the supervised principal, every sample Synced at %d replicas", before), func(ctx context.Context) error {
		return d.leaveFleet(ctx, before)
	})
	return nil
}

// agentsDial checks every agent's log says it dialed the principal at
// address.
func (d *debugRun) agentsDial(ctx context.Context, address string) error {
	e := d.e
	for _, s := range e.Spokes() {
		want := `msg="connected to principal" address=` + address
		log := readFile(e.ComponentLog("agent-" + s))
		if e.Kind() {
			var err error
			if log, err = kindPodLog(ctx, e, s, deploy.AgentName); err != nil {
				return err
			}
		}
		if !strings.Contains(log, want) {
			return fmt.Errorf("the agent of %s does not dial the principal's Service: no %s in %s", s, want, e.ComponentLog("agent-"+s))
		}
	}
	return nil
}

// leaveFleet puts the sample back at before replicas if the scenario
// changed it and waits until every agent holds a stream to the supervised
// principal and every sample is Synced.
func (d *debugRun) leaveFleet(ctx context.Context, before int32) error {
	e := d.e
	err := eventually(ctx, 90*time.Second, "every agent connected to the supervised principal", func(ctx context.Context) error {
		log := d.supervisedLog()
		for _, s := range e.Spokes() {
			// The last word on each agent is what counts: it may have come
			// and gone more than once.
			on := strings.LastIndex(log, `msg="agent connected" agent=`+s+` `)
			off := strings.LastIndex(log, `msg="agent disconnected" agent=`+s)
			if on < 0 || on < off {
				return fmt.Errorf("the supervised principal's log %s does not end with %s connected; %s", e.ComponentLog("principal"), s, d.where())
			}
			if err := agentConnected(ctx, e, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	now, err := sampleReplicas(ctx, e, e.Spokes()[0])
	if err != nil {
		return err
	}
	if now == before {
		return eventually(ctx, 90*time.Second, "every sample Synced", func(ctx context.Context) error { return sampleSyncedAt(ctx, e, "") })
	}
	sha, err := e.ScaleSample(ctx, int(before))
	if err != nil {
		return err
	}
	// The push goes to the supervised principal again: 90 s, not the
	// agents' 3-minute poll.
	return converged(ctx, e, sha, int(before), 90*time.Second)
}

// runLocal runs the principal the way a developer would: from the hub's
// admin kubeconfig and the principal certificate up issued (it names the
// Service), on the run's fixed addresses.
func (d *debugRun) runLocal(ctx context.Context, name string) error {
	e := d.e
	cw, err := cluster.New(cluster.Options{StateDir: e.wb.StateDir, CacheDir: e.wb.CacheDir, Kubeconfig: e.wb.Kubeconfig})
	if err != nil {
		return err
	}
	clusters, err := cw.Clusters()
	if err != nil || len(clusters) == 0 {
		return fmt.Errorf("the workbench's clusters (for the hub's admin kubeconfig): %v, %d clusters", err, len(clusters))
	}
	p, logPath, err := startProcess(e, name, e.wb.Bin,
		"principal", "--kubeconfig", clusters[0].AdminKubeconfig, "--listen", d.localGRPC, "--http", d.localHTTP,
		"--tls-dir", filepath.Join(e.wb.StateDir, "fleet", "tls", "principal"), "-v")
	if err != nil {
		return err
	}
	d.local = p
	e.Logf("local principal %s: grpc %s, http %s, log %s", name, d.localGRPC, d.localHTTP, logPath)
	client := &http.Client{Timeout: 2 * time.Second}
	return eventually(ctx, 30*time.Second, "the local principal listening on "+d.localGRPC+" and "+d.localHTTP, func(ctx context.Context) error {
		if p.Exited() {
			return fmt.Errorf("the local principal exited: %s", lastLines(p.Output(), 5))
		}
		c, err := net.DialTimeout("tcp", d.localGRPC, time.Second)
		if err != nil {
			return fmt.Errorf("%w (log %s)", err, logPath)
		}
		c.Close()
		resp, err := client.Get("http://" + d.localHTTP + "/healthz")
		if err != nil {
			return fmt.Errorf("%w (log %s)", err, logPath)
		}
		resp.Body.Close()
		return nil
	})
}

func (d *debugRun) startLocal(ctx context.Context) error {
	addrs, err := process.FreeLoopbackAddrs(2)
	if err != nil {
		return err
	}
	d.localGRPC, d.localHTTP = addrs[0], addrs[1]
	// Whichever process is the local principal when cleanup comes.
	d.e.Cleanup("kill the local principal", func(context.Context) error {
		if d.local != nil {
			d.local.Stop()
		}
		return nil
	})
	return d.runLocal(ctx, "local-principal")
}

// intercept runs `tether intercept start` of the principal's Service port
// to the local address to, until it says it is ready.
func (d *debugRun) intercept(ctx context.Context, port int32, to string) (*harness.Process, error) {
	return startIntercept(ctx, d.e, fmt.Sprintf("intercept-%d", port), 60*time.Second, principalTarget, "--port", fmt.Sprint(port), "--to", to)
}

func (d *debugRun) interceptGRPC(ctx context.Context) (err error) {
	before := len(d.supervisedLog())
	if d.grpcIcpt, err = d.intercept(ctx, deploy.PrincipalPort, d.localGRPC); err != nil {
		return err
	}
	started := time.Now()
	// Embedded: the service proxy closes the agents' streams to the
	// supervised principal when its pod leaves the Service's endpoints.
	// kind: kube-proxy keeps open connections where they are, and the
	// supervised principal ends each after its max stream age. Either way
	// the agents reconnect through the Service, which now leads here.
	wait := 90 * time.Second
	if d.e.Kind() {
		wait += deploy.PrincipalMaxStreamAge
	}
	if err := eventually(ctx, wait, "both agents connected to the local principal", d.localConnected(0)); err != nil {
		return err
	}
	d.sinceIntercept = len(d.supervisedLog())
	d.e.Logf("both agents connected to the local principal %s after the intercept was in place", time.Since(started).Round(time.Millisecond))
	if !regexp.MustCompile(`msg="agent disconnected" agent=` + regexp.QuoteMeta(d.e.Spokes()[0])).MatchString(tail(d.supervisedLog(), before)) {
		return fmt.Errorf("the supervised principal's log %s does not show %s leaving after the intercept; %s", d.e.ComponentLog("principal"), d.e.Spokes()[0], d.where())
	}
	return nil
}

func (d *debugRun) interceptHTTP(ctx context.Context) (err error) {
	// The Git server's idle webhook connections pass through the
	// traffic-agent to the supervised principal until this intercept
	// attaches: the agent then closes them, so the next push reconnects
	// and reaches the local principal (either order of the two
	// intercepts works).
	if d.httpIcpt, err = d.intercept(ctx, deploy.DefaultHealthPort, d.localHTTP); err != nil {
		return err
	}
	list := d.e.Tether(ctx, "intercept", "list")
	for _, port := range []int32{deploy.PrincipalPort, deploy.DefaultHealthPort} {
		row := regexp.MustCompile(fmt.Sprintf(`%s-%d\s+%s\s+%s/%s\s+%d\s`, deploy.PrincipalName, port, Hub, deploy.DefaultNamespace, deploy.PrincipalName, port))
		if list.ExitCode != 0 || !row.MatchString(list.Stdout) {
			return fmt.Errorf("tether intercept list (exit %d) shows no row matching %q:\n%s%s", list.ExitCode, row, list.Stdout, list.Stderr)
		}
	}
	return nil
}

func (d *debugRun) commitAndSync(ctx context.Context) error {
	e := d.e
	localFrom, supFrom := len(d.local.Output()), len(d.supervisedLog())
	n, err := nextReplicas(ctx, e)
	if err != nil {
		return err
	}
	sha, err := e.ScaleSample(ctx, n)
	if err != nil {
		return err
	}
	// No `app refresh`: the push webhook reaches the local principal
	// through the 8080 intercept, and it relays the push to the agents
	// it holds. Without it the spokes would wait for their 3-minute poll.
	if err := converged(ctx, e, sha, n, 30*time.Second); err != nil {
		return fmt.Errorf("%w; %s", err, d.where())
	}
	if out := tail(d.local.Output(), localFrom); !strings.Contains(out, `msg="push received" repo=`+fleet.SampleRepo) {
		return fmt.Errorf("the local principal's log %s shows no `push received` for the commit: the webhook did not come through the 8080 intercept; %s", d.local.Log, d.where())
	}
	if strings.Contains(tail(d.supervisedLog(), supFrom), `msg="push received"`) {
		return fmt.Errorf("the supervised principal (log %s) received the push webhook while port 8080 was intercepted", e.ComponentLog("principal"))
	}

	spoke := e.Spokes()[0]
	res := e.Tether(ctx, "app", "sync", fleet.SampleApp, "-n", spoke, "--context", "tether-hub", "--timeout", "90s")
	if res.ExitCode != 0 || !strings.HasPrefix(res.Stdout, "Succeeded") {
		return fmt.Errorf("tether app sync %s -n %s --context tether-hub: exit %d, %q, want Succeeded: %s; %s",
			fleet.SampleApp, spoke, res.ExitCode, lastLines(res.Stdout, 3), lastLines(res.Stderr, 3), d.where())
	}
	queued := regexp.MustCompile(`msg="operation queued" agent=` + regexp.QuoteMeta(spoke) + ` app=` + fleet.SampleApp)
	if !queued.MatchString(d.local.Output()) {
		return fmt.Errorf("the local principal's log %s does not show the sync queued for %s", d.local.Log, spoke)
	}
	// All of it went through the local principal: the agents never went
	// back to the supervised one.
	for _, p := range []*harness.Process{d.grpcIcpt, d.httpIcpt} {
		if p.Exited() {
			return fmt.Errorf("%s ended during the run: %s", p.Name, lastLines(p.Output(), 5))
		}
	}
	return d.noneBackOnSupervised()
}

func (d *debugRun) noneBackOnSupervised() error {
	if strings.Contains(tail(d.supervisedLog(), d.sinceIntercept), `msg="agent connected"`) {
		return fmt.Errorf("an agent connected to the supervised principal (log %s) while its Service was intercepted; %s", d.e.ComponentLog("principal"), d.where())
	}
	return nil
}

func (d *debugRun) restartLocal(ctx context.Context) error {
	d.local.Stop()
	if strings.Contains(d.local.Output(), "panic") {
		return fmt.Errorf("the local principal panicked on stop: see %s", d.local.Log)
	}
	// The same addresses, which both intercepts lead to; the agents back
	// off meanwhile (the intercept logs `local process unreachable`).
	if err := d.runLocal(ctx, "local-principal-2"); err != nil {
		return err
	}
	if err := eventually(ctx, 90*time.Second, "both agents connected to the restarted local principal", d.localConnected(0)); err != nil {
		return err
	}
	return d.noneBackOnSupervised()
}

func (d *debugRun) stop(ctx context.Context) error {
	e := d.e
	from := len(d.supervisedLog())
	name := fmt.Sprintf("%s-%d", deploy.PrincipalName, deploy.DefaultHealthPort)
	res := e.Tether(ctx, "intercept", "stop", name)
	if res.ExitCode != 0 {
		return fmt.Errorf("tether intercept stop %s: exit %d: %s", name, res.ExitCode, lastLines(res.Stderr, 3))
	}
	if err := eventually(ctx, 10*time.Second, "the 8080 intercept ended", func(context.Context) error {
		if d.httpIcpt.Exited() {
			return nil
		}
		return fmt.Errorf("tether intercept start --port %d still runs after `tether intercept stop %s` (log %s)", deploy.DefaultHealthPort, name, d.httpIcpt.Log)
	}); err != nil {
		return err
	}

	d.grpcIcpt.Stop()
	if !strings.Contains(d.grpcIcpt.Output(), "is as it was") {
		return fmt.Errorf("the last intercept did not report the Service restored; its output (%s):\n%s", d.grpcIcpt.Log, lastLines(d.grpcIcpt.Output(), 5))
	}
	cs, err := e.Kube(Hub)
	if err != nil {
		return err
	}
	if err := eventually(ctx, 20*time.Second, "the principal's Service as it was", func(ctx context.Context) error {
		svc, err := cs.CoreV1().Services(deploy.DefaultNamespace).Get(ctx, deploy.PrincipalName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(svc.Spec.Selector, d.orig.Spec.Selector) || !reflect.DeepEqual(svc.Annotations, d.orig.Annotations) || !reflect.DeepEqual(svc.Spec.Ports, d.orig.Spec.Ports) {
			return fmt.Errorf("Service %s/%s on the hub: selector %v, annotations %v, ports %v; was %v, %v, %v (`kubectl --context tether-hub -n %s get svc %s -o yaml`)",
				deploy.DefaultNamespace, deploy.PrincipalName, svc.Spec.Selector, svc.Annotations, svc.Spec.Ports,
				d.orig.Spec.Selector, d.orig.Annotations, d.orig.Spec.Ports, deploy.DefaultNamespace, deploy.PrincipalName)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := eventually(ctx, 90*time.Second, "both agents back on the supervised principal",
		d.connected("supervised principal", e.ComponentLog("principal"), d.supervisedLog, from)); err != nil {
		return err
	}
	last := e.Spokes()[len(e.Spokes())-1]
	if err := eventually(ctx, 10*time.Second, "the local principal sees "+last+" leave", func(context.Context) error {
		if regexp.MustCompile(`msg="agent disconnected" agent=` + regexp.QuoteMeta(last)).MatchString(d.local.Output()) {
			return nil
		}
		return fmt.Errorf("the local principal's log %s shows no `agent disconnected agent=%s`", d.local.Log, last)
	}); err != nil {
		return err
	}
	localFrom := len(d.local.Output())

	// The supervised principal serves: an operation goes down and its
	// result comes back.
	res = e.Tether(ctx, "app", "sync", fleet.SampleApp, "-n", last, "--context", "tether-hub", "--timeout", "90s")
	if res.ExitCode != 0 || !strings.HasPrefix(res.Stdout, "Succeeded") {
		return fmt.Errorf("tether app sync %s -n %s --context tether-hub after the intercepts: exit %d, %q, want Succeeded: %s; %s",
			fleet.SampleApp, last, res.ExitCode, lastLines(res.Stdout, 3), lastLines(res.Stderr, 3), d.where())
	}
	queued := regexp.MustCompile(`msg="operation queued" agent=` + regexp.QuoteMeta(last) + ` app=` + fleet.SampleApp)
	if !queued.MatchString(tail(d.supervisedLog(), from)) {
		return fmt.Errorf("the supervised principal's log %s does not show the sync queued for %s", e.ComponentLog("principal"), last)
	}
	// The local principal, still running, sees the operation too and
	// queues it, but no agent comes to take it.
	if strings.Contains(tail(d.local.Output(), localFrom), `msg="agent connected"`) {
		return fmt.Errorf("an agent connected to the local principal (log %s) after the intercepts stopped", d.local.Log)
	}
	for _, s := range e.Spokes() {
		app, err := hubApp(ctx, e, s, fleet.SampleApp)
		if err != nil {
			return err
		}
		if app.Status.Sync.Status != v1alpha1.SyncStatusSynced {
			return fmt.Errorf("hub Application %s/%s is %s after the intercepts, want Synced; %s", s, fleet.SampleApp, cmp.Or(app.Status.Sync.Status, "-"), lookHub(e, s, fleet.SampleApp))
		}
	}
	return nil
}

// tail is s from offset from on, or "" when s is shorter (a log replaced
// under the reader).
func tail(s string, from int) string {
	if from > len(s) {
		return ""
	}
	return s[from:]
}
