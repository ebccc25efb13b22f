package catalog

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/sample"
	"github.com/tether-dev/tether/scenarios/harness"
)

// interceptSample is the newcomer's first intercept: the sample's own
// Service, which GitOps manages with self-heal on. The intercept takes the
// Service over while the Application stays Synced (the engine leaves a
// leased selector alone), and Git's selector is back when it ends.
func interceptSample() Scenario {
	return Scenario{
		Name:        "intercept-sample",
		Description: "the sample's self-healed Service intercepted globally and by header while its Application stays Synced; stop gives Git's Service back",
		Labels:      []string{LabelIntercept, LabelGitOps, LabelChaos},
		Timeout:     6 * time.Minute,
		Steps: func(e *Env) []Step {
			r := &sampleRun{e: e, spoke: e.Spokes()[0]}
			how := "tether sample url " + r.spoke
			if e.Kind() {
				how = "the API server's service proxy"
			}
			steps := []Step{
				{Name: "a local process, and " + r.target() + " reached through " + how, Run: r.setUp},
				{Name: "the sample answers from " + r.spoke, Run: r.answersSample},
			}
			steps = append(steps,
				Step{Name: "tether intercept start " + r.target() + " --port 80: the local process answers, also at the address it prints, and the Application stays Synced", Run: r.global},
				Step{Name: "stop it: Git's Service is back, the Application Synced, nothing left", Run: r.stopAndBack},
				Step{Name: "tether intercept start --header X-Dev=alice: alice's requests reach the local process, others the sample", Run: r.personal},
				Step{Name: "SIGKILL it: the Service comes back and stays Git's", Run: r.killAndBack},
			)
			return steps
		},
	}
}

// sampleRun is one run of intercept-sample: what its steps share.
type sampleRun struct {
	e      *Env
	spoke  string
	local  string
	url    string // embedded: the sample's Service as `tether sample url` gives it
	client *http.Client
	orig   *corev1.Service
	p      *harness.Process
}

func (r *sampleRun) target() string {
	return r.spoke + "/" + fleet.SampleNamespace + "/" + sample.AppName
}

func (r *sampleRun) setUp(ctx context.Context) error {
	e := r.e
	r.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	addr, stop, err := harness.EchoServer("local")
	if err != nil {
		return err
	}
	r.local = addr
	e.Cleanup("stop the local echo server", func(context.Context) error { stop(); return nil })
	if r.orig, err = r.service(ctx); err != nil {
		return err
	}
	if err := syncedAt(ctx, e, r.spoke, fleet.SampleApp, ""); err != nil {
		return err
	}
	if e.Kind() {
		return nil
	}
	// Embedded: the address a user curls, from the command README and
	// docs/onboarding.md give (up's per-spoke service proxy serves it).
	res := e.Tether(ctx, "sample", "url", r.spoke)
	if res.ExitCode != 0 {
		return fmt.Errorf("tether sample url %s: exit %d: %s", r.spoke, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	r.url = strings.TrimSpace(res.Stdout)
	if !strings.HasPrefix(r.url, "http://127.0.0.1:") {
		return fmt.Errorf("tether sample url %s printed %q, want http://127.0.0.1:PORT/", r.spoke, r.url)
	}
	return nil
}

// get asks the sample's Service who answers, as an in-cluster client
// would: through the API server's service proxy (kind) or the spoke's
// service proxy `up` runs (embedded).
func (r *sampleRun) get(ctx context.Context, header ...string) (string, error) {
	if r.e.Kind() {
		cs, err := r.e.Kube(r.spoke)
		if err != nil {
			return "", err
		}
		req := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces", fleet.SampleNamespace, "services", sample.AppName+":80", "proxy", "")
		if len(header) == 2 {
			req = req.SetHeader(header[0], header[1])
		}
		b, err := req.DoRaw(ctx)
		return who(string(b)), err
	}
	return r.getURL(ctx, r.url, header...)
}

// getURL asks url who answers.
func (r *sampleRun) getURL(ctx context.Context, url string, header ...string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return who(string(b)), err
}

func (r *sampleRun) answers(want string, header ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		got, err := r.get(ctx, header...)
		if err != nil {
			return fmt.Errorf("GET %s: %w", r.target(), err)
		}
		if got != want {
			return fmt.Errorf("%s answered %q, want %q", r.target(), got, want)
		}
		return nil
	}
}

func (r *sampleRun) answersSample(ctx context.Context) error {
	return eventually(ctx, time.Minute, "the sample answers", r.answers(r.spoke))
}

// start runs `tether intercept start` of the sample's port 80 until it
// says it is ready.
func (r *sampleRun) start(ctx context.Context, name string, extra ...string) error {
	p, err := startIntercept(ctx, r.e, name, 40*time.Second, append([]string{r.target(), "--port", "80", "--to", r.local}, extra...)...)
	if p != nil {
		r.p = p
	}
	return err
}

// interceptedAndSynced checks the Service routes to the traffic-agent and
// the hub still shows the sample Synced and Healthy: self-heal leaves the
// intercept's selector alone.
func (r *sampleRun) interceptedAndSynced(ctx context.Context) error {
	svc, err := r.service(ctx)
	if err != nil {
		return err
	}
	if maps.Equal(svc.Spec.Selector, r.orig.Spec.Selector) {
		return fmt.Errorf("Service %s has Git's selector %v during the intercept: something put it back (agent log %s)", r.target(), svc.Spec.Selector, r.e.ComponentLog("agent-"+r.spoke))
	}
	return syncedAt(ctx, r.e, r.spoke, fleet.SampleApp, "")
}

// gitsService checks the Service has Git's selector again and nothing of
// the intercept.
func (r *sampleRun) gitsService(ctx context.Context) error {
	svc, err := r.service(ctx)
	if err != nil {
		return err
	}
	if !maps.Equal(svc.Spec.Selector, r.orig.Spec.Selector) {
		return fmt.Errorf("Service %s has selector %v, want Git's %v", r.target(), svc.Spec.Selector, r.orig.Spec.Selector)
	}
	for k := range svc.Annotations {
		if _, was := r.orig.Annotations[k]; !was {
			return fmt.Errorf("Service %s still carries annotation %s", r.target(), k)
		}
	}
	cs, err := r.e.Kube(r.spoke)
	if err != nil {
		return err
	}
	pods, err := cs.CoreV1().Pods(fleet.SampleNamespace).List(ctx, metav1.ListOptions{LabelSelector: interceptAgentSelector})
	if err != nil {
		return err
	}
	if len(pods.Items) > 0 {
		return fmt.Errorf("traffic-agent pod %s/%s is still on %s", pods.Items[0].Namespace, pods.Items[0].Name, r.spoke)
	}
	return syncedAt(ctx, r.e, r.spoke, fleet.SampleApp, "")
}

func (r *sampleRun) global(ctx context.Context) error {
	if err := r.start(ctx, "intercept-sample-global"); err != nil {
		return err
	}
	if err := eventually(ctx, 10*time.Second, "the local process answers", r.answers("local")); err != nil {
		return err
	}
	// What intercept start prints for this machine: on embedded the
	// service proxy's address, on kind a port-forward that follows the
	// Service's endpoints (so it reaches the traffic-agent).
	reach, err := reachLine(r.p.Output(), r.target())
	if err != nil {
		return err
	}
	if !r.e.Kind() && reach != r.url {
		return fmt.Errorf("intercept start printed %s for this machine, but tether sample url says %s", reach, r.url)
	}
	if got, err := r.getURL(ctx, reach); err != nil || who(got) != "local" {
		return fmt.Errorf("GET %s (printed by intercept start) answered %q, %v; want the local process", reach, got, err)
	}
	// Longer than the agent's self-heal would take to revert it (it
	// reacts to the Service's change at once) and than a lease renewal.
	return holds(ctx, 15*time.Second, "intercepted, local answers, Application Synced", func(ctx context.Context) error {
		if err := r.answers("local")(ctx); err != nil {
			return err
		}
		return r.interceptedAndSynced(ctx)
	})
}

func (r *sampleRun) back(ctx context.Context) error {
	wait := 20 * time.Second
	if r.e.Kind() {
		wait = time.Minute // the traffic-agent pod terminates gracefully
	}
	if err := eventually(ctx, wait, "Git's Service back, nothing left", r.gitsService); err != nil {
		return err
	}
	return eventually(ctx, 20*time.Second, "the sample answers again", r.answers(r.spoke))
}

func (r *sampleRun) stopAndBack(ctx context.Context) error {
	r.p.Stop()
	if !strings.Contains(r.p.Output(), "is as it was") {
		return fmt.Errorf("tether intercept start did not report the Service restored; its output (%s):\n%s", r.p.Log, lastLines(r.p.Output(), 5))
	}
	return r.back(ctx)
}

func (r *sampleRun) personal(ctx context.Context) error {
	if err := r.start(ctx, "intercept-sample-personal", "--header", "X-Dev=alice"); err != nil {
		return err
	}
	if err := eventually(ctx, 10*time.Second, "alice routed locally", r.answers("local", "X-Dev", "alice")); err != nil {
		return err
	}
	if err := r.interceptedAndSynced(ctx); err != nil {
		return err
	}
	if err := r.answers(r.spoke, "X-Dev", "bob")(ctx); err != nil {
		return err
	}
	return r.answers(r.spoke)(ctx)
}

// reachLine finds the URL `tether intercept start` printed for reaching
// the intercepted Service from this machine.
func reachLine(out, target string) (string, error) {
	prefix := "reach " + target + " port 80 from this machine: "
	for _, l := range strings.Split(out, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			return u, nil
		}
	}
	return "", fmt.Errorf("tether intercept start printed no %q line:\n%s", prefix, lastLines(out, 8))
}

func (r *sampleRun) killAndBack(ctx context.Context) error {
	r.p.Kill()
	killed := time.Now()
	if err := r.back(ctx); err != nil {
		return err
	}
	r.e.Logf("Git's Service back %s after SIGKILL", time.Since(killed).Round(time.Millisecond))
	return holds(ctx, 5*time.Second, "the Service stays Git's", r.gitsService)
}

// service reads the sample's Service on the spoke.
func (r *sampleRun) service(ctx context.Context) (*corev1.Service, error) {
	cs, err := r.e.Kube(r.spoke)
	if err != nil {
		return nil, err
	}
	svc, err := cs.CoreV1().Services(fleet.SampleNamespace).Get(ctx, sample.AppName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("the sample's Service %s/%s on %s: %w", fleet.SampleNamespace, sample.AppName, r.spoke, err)
	}
	return svc, nil
}
