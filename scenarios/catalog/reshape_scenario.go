package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/gitops/sample"
)

// fleetReshape changes the fleet the ways a user does — `spoke add`,
// `spoke remove`, `up` with other spokes, `up` again — and checks after
// each that the hub holds exactly the live spokes, that the user's commit
// is still in the sample repository and that the principal's Service is
// where the agents were told. It ends on the spokes it found.
func fleetReshape() Scenario {
	return Scenario{
		Name: "fleet-reshape",
		Description: "spoke add/remove and up with other spokes leave the hub holding exactly the live spokes' Applications and Agents, spoke remove clears a spoke " +
			"that has no cluster, and neither they nor up again undo a commit or move the principal's Service",
		Labels:  []string{LabelFleet, LabelClusters},
		Timeout: 15 * time.Minute,
		Steps: func(e *Env) []Step {
			r := &reshape{e: e, base: slices.Clone(e.Spokes())}
			r.extra = r.freeName("spoke-")
			r.ghost = r.freeName("ghost-")
			with := append(slices.Clone(r.base), r.extra)
			return []Step{
				sampleReady(e),
				{Name: "commit a change (the sample at a new replica count) and note the principal's Service addresses", Run: r.commit},
				{Name: "tether spoke add " + r.extra, Run: r.tetherStep("spoke", "add", r.extra)},
				{Name: "the hub holds exactly the Applications, namespaces and connected Agents of " + strings.Join(with, ", "), Run: r.exactly(with)},
				{Name: "the commit is kept and the principal's Service has not moved", Run: r.kept},
				{Name: "tether spoke remove " + r.extra, Run: r.tetherStep("spoke", "remove", r.extra)},
				{Name: r.extra + "'s Applications, Agent and namespace are gone from the hub; it holds exactly " + strings.Join(r.base, ", "), Run: r.gone(r.extra)},
				{Name: "the commit is still in the repository, the sample still at its replica count on " + r.base[0] + ", the Service where it was", Run: r.kept},
				{Name: "tether up " + spokeFlags(with) + ": the hub holds exactly those spokes", Run: r.upWith(with)},
				{Name: "tether up " + spokeFlags(r.base) + ": " + r.extra + " leaves the hub with its cluster", Run: r.upWithout(r.extra)},
				{Name: "leftovers of a spoke with no cluster (" + r.ghost + ": namespace, Application, Agent on the hub): tether spoke remove " + r.ghost + " removes them", Run: r.removeGhost},
				{Name: "tether up again: the commit, the principal's Service and the fleet are as they were", Run: r.upAgain},
			}
		},
	}
}

// reshape is one run of fleet-reshape: what its steps share.
type reshape struct {
	e *Env
	// base are the spokes the workbench had; extra is the spoke the run
	// adds and removes, ghost the one it fakes leftovers of.
	base         []string
	extra, ghost string
	// replicas and sha are the user's commit.
	replicas int
	sha      string
	// before is the fleet record as the run found it.
	before *fleet.State
}

// freeName is prefix plus the first number no spoke has.
func (r *reshape) freeName(prefix string) string {
	for i := len(r.base) + 1; ; i++ {
		n := prefix + strconv.Itoa(i)
		if !slices.Contains(r.base, n) {
			return n
		}
	}
}

func spokeFlags(spokes []string) string {
	var b strings.Builder
	for i, s := range spokes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("--spoke " + s)
	}
	return b.String()
}

func (r *reshape) commit(ctx context.Context) error {
	n, err := nextReplicas(ctx, r.e)
	if err != nil {
		return err
	}
	sha, err := scaleSample(ctx, r.e, n)
	if err != nil {
		return err
	}
	r.replicas, r.sha = n, sha
	if err := converged(ctx, r.e, sha, n, 90*time.Second); err != nil {
		return err
	}
	st, err := loadFleet(r.e.wb)
	if err != nil || st == nil {
		return fmt.Errorf("read the fleet record (fleet/fleet.json): %v", err)
	}
	r.before = st
	r.e.Logf("principal's Service at %s (gRPC) and %s (HTTP), sample repository %s", cmp.Or(st.PrincipalService, "-"), cmp.Or(st.PrincipalServiceHTTP, "-"), st.GitURL)
	// Whatever fails later, the workbench goes back to the spokes it had.
	r.e.Cleanup("remove "+r.extra+" and "+r.ghost+" if they are still there", func(ctx context.Context) error {
		var errs []error
		for _, s := range []string{r.extra, r.ghost} {
			res := r.e.Tether(ctx, "spoke", "remove", s)
			if res.ExitCode != 0 && !strings.Contains(res.Stderr, "no spoke of that name") {
				errs = append(errs, fmt.Errorf("tether spoke remove %s failed (exit %d): %s", s, res.ExitCode, lastLines(res.Stderr, 5)))
			}
		}
		return errors.Join(errs...)
	})
	return nil
}

// tetherStep runs tether with args and fails with the end of its stderr.
func (r *reshape) tetherStep(args ...string) func(context.Context) error {
	return func(ctx context.Context) error { return r.tether(ctx, args...) }
}

func (r *reshape) tether(ctx context.Context, args ...string) error {
	start := time.Now()
	res := r.e.Tether(ctx, args...)
	if res.ExitCode != 0 {
		return fmt.Errorf("tether %s failed (exit %d): %s", strings.Join(args, " "), res.ExitCode, lastLines(res.Stderr, 8))
	}
	r.e.Logf("tether %s took %s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// exactly waits until the hub holds the Applications, the namespaces
// tether made and the Agent objects of live and of nothing else, every
// Agent connected and every sample Synced and Healthy.
func (r *reshape) exactly(live []string) func(context.Context) error {
	return func(ctx context.Context) error {
		return eventually(ctx, 2*time.Minute, "the hub holding exactly "+strings.Join(live, ", "), func(ctx context.Context) error {
			return r.hubHolds(ctx, live)
		})
	}
}

// hub is the typed and the dynamic client of the hub.
func (r *reshape) hub() (*kubernetes.Clientset, dynamic.Interface, error) {
	cs, err := r.e.Kube(Hub)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := r.e.Dynamic(Hub)
	return cs, dyn, err
}

func (r *reshape) hubHolds(ctx context.Context, live []string) error {
	e := r.e
	cs, dyn, err := r.hub()
	if err != nil {
		return err
	}
	apps, err := dyn.Resource(v1alpha1.ApplicationsResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the hub's Applications: %w", err)
	}
	var appNS []string
	for _, a := range apps.Items {
		appNS = append(appNS, a.GetNamespace())
	}
	agents, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the hub's Agents: %w", err)
	}
	var agentNames []string
	for _, a := range agents.Items {
		agentNames = append(agentNames, a.GetName())
	}
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: deploy.LabelManagedBy + "=tether"})
	if err != nil {
		return fmt.Errorf("list the hub's namespaces: %w", err)
	}
	var nsNames []string
	for _, ns := range nss.Items {
		if ns.Name != cluster.SystemNamespace {
			nsNames = append(nsNames, ns.Name)
		}
	}
	for what, got := range map[string][]string{
		"namespaces holding Applications (`kubectl --context tether-hub get applications -A`)":                  appNS,
		"Agent objects (`kubectl --context tether-hub -n tether-system get agents`)":                            agentNames,
		"namespaces tether made (`kubectl --context tether-hub get ns -l app.kubernetes.io/managed-by=tether`)": nsNames,
	} {
		if err := sameSet(got, live); err != nil {
			return fmt.Errorf("the hub's %s: %w", what, err)
		}
	}
	for _, s := range live {
		if err := agentConnected(ctx, e, s); err != nil {
			return err
		}
		if err := syncedAt(ctx, e, s, fleet.SampleApp, ""); err != nil {
			return err
		}
	}
	return nil
}

// sameSet compares got (with repeats) with want as sets and says what is
// extra and what is missing.
func sameSet(got, want []string) error {
	var extra, missing []string
	for _, g := range got {
		if !slices.Contains(want, g) && !slices.Contains(extra, g) {
			extra = append(extra, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	if len(extra) == 0 && len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s of spokes not in the fleet, %s of live spokes missing (want exactly %s)", cmp.Or(strings.Join(extra, ", "), "-"), cmp.Or(strings.Join(missing, ", "), "-"), strings.Join(want, ", "))
}

// gone checks that the hub holds nothing of spoke and exactly the base.
func (r *reshape) gone(spoke string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := r.nothingOf(ctx, spoke); err != nil {
			return err
		}
		return r.exactly(r.base)(ctx)
	}
}

// nothingOf checks that the hub holds no Application, namespace or Agent
// of spoke. Removal waits for all of it, so no waiting here.
func (r *reshape) nothingOf(ctx context.Context, spoke string) error {
	cs, dyn, err := r.hub()
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, spoke, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return fmt.Errorf("hub namespace %s is still there after its spoke left (err %v; `kubectl --context tether-hub get ns %s`)", spoke, err, spoke)
	}
	apps, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(spoke).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(apps.Items) > 0 {
		return fmt.Errorf("the hub still holds %d Applications in namespace %s after its spoke left", len(apps.Items), spoke)
	}
	if _, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Get(ctx, spoke, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return fmt.Errorf("hub Agent %s/%s is still there after its spoke left (err %v; principal log %s)", cluster.SystemNamespace, spoke, err, r.e.ComponentLog("principal"))
	}
	return nil
}

// kept checks what no reshaping may change: the principal's Service and
// the repository's addresses in the fleet record, the user's commit in
// the repository (its content on every provider, its history where this
// machine reaches the Git server), and the sample's replica count on the
// first spoke.
func (r *reshape) kept(ctx context.Context) error {
	st, err := loadFleet(r.e.wb)
	if err != nil || st == nil {
		return fmt.Errorf("read the fleet record (fleet/fleet.json): %v", err)
	}
	for what, pair := range map[string][2]string{
		"principalService (agents dial it)":              {r.before.PrincipalService, st.PrincipalService},
		"principalServiceHTTP (the webhook posts to it)": {r.before.PrincipalServiceHTTP, st.PrincipalServiceHTTP},
		"gitURL (the Applications' repoURL)":             {r.before.GitURL, st.GitURL},
	} {
		if pair[0] != pair[1] {
			return fmt.Errorf("fleet.json %s moved from %s to %s (up's log: %s)", what, cmp.Or(pair[0], "-"), cmp.Or(pair[1], "-"), r.e.ComponentLog("service-proxy"))
		}
	}
	files, err := readSample(ctx, r.e, sample.PlainDeployment, sample.OverlayDir(r.base[0])+"/kustomization.yaml")
	if err != nil {
		return err
	}
	if !regexp.MustCompile(`(?m)^\s*replicas:\s*` + strconv.Itoa(r.replicas) + `\s*$`).MatchString(files[0]) {
		return fmt.Errorf("%s in the sample repository no longer has the committed replicas: %d (the commit %s was undone):\n%s", sample.PlainDeployment, r.replicas, short(r.sha), files[0])
	}
	if !strings.Contains(files[1], "count: "+strconv.Itoa(r.replicas)+"\n") {
		return fmt.Errorf("the overlay of %s no longer has the committed count %d (the commit %s was undone):\n%s", r.base[0], r.replicas, short(r.sha), files[1])
	}
	if st.LocalGitURL != "" {
		if err := r.inHistory(ctx, st.LocalGitURL); err != nil {
			return err
		}
	}
	return eventually(ctx, time.Minute, r.base[0]+" still at the committed replicas", func(ctx context.Context) error {
		return wantReplicas(ctx, r.e, r.base[0], int32(r.replicas))
	})
}

// readSample reads files of the sample repository's main branch, on any
// provider, through the same clone fleet.Commit makes; nothing is
// committed since nothing changes.
func readSample(ctx context.Context, e *Env, paths ...string) ([]string, error) {
	cw, err := cluster.New(cluster.Options{StateDir: e.wb.StateDir, CacheDir: e.wb.CacheDir, Kubeconfig: e.wb.Kubeconfig})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(paths))
	_, err = fleet.Commit(ctx, cw, "read only", func(wfs billy.Filesystem) error {
		for i, p := range paths {
			b, err := util.ReadFile(wfs, p)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			out[i] = string(b)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the sample repository: %w (Git server log: %s)", err, e.ComponentLog("git"))
	}
	return out, nil
}

// inHistory checks that the user's commit is an ancestor of main and that
// no commit since re-seeded the sample.
func (r *reshape) inHistory(ctx context.Context, url string) error {
	repo, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL: url, ReferenceName: plumbing.NewBranchReferenceName(sample.Branch), SingleBranch: true,
	})
	if err != nil {
		return fmt.Errorf("clone %s: %w", url, err)
	}
	head, err := repo.Head()
	if err != nil {
		return err
	}
	commits, err := repo.Log(&git.LogOptions{From: head.Hash()})
	if err != nil {
		return err
	}
	var since []string
	found := false
	err = commits.ForEach(func(c *object.Commit) error {
		if c.Hash.String() == r.sha {
			found = true
			return errors.New("stop")
		}
		since = append(since, short(c.Hash.String())+" "+strings.SplitN(c.Message, "\n", 2)[0])
		return nil
	})
	if !found {
		return fmt.Errorf("the commit %s is not in the history of main at %s any more (log err %v)", short(r.sha), short(head.Hash().String()), err)
	}
	for _, c := range since {
		if strings.Contains(c, "Seed sample application") {
			return fmt.Errorf("the sample was re-seeded after the user's commit %s: %s (commits since: %s)", short(r.sha), c, strings.Join(since, "; "))
		}
	}
	if len(since) > 0 {
		r.e.Logf("commits since %s: %s", short(r.sha), strings.Join(since, "; "))
	}
	return nil
}

// upWith runs up with exactly spokes and checks the hub holds them.
func (r *reshape) upWith(spokes []string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := r.tether(ctx, append([]string{"up"}, strings.Fields(spokeFlags(spokes))...)...); err != nil {
			return err
		}
		if err := r.exactly(spokes)(ctx); err != nil {
			return err
		}
		return r.kept(ctx)
	}
}

// upWithout runs up with the base spokes, which drops spoke, and checks
// it left the hub.
func (r *reshape) upWithout(spoke string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := r.tether(ctx, append([]string{"up"}, strings.Fields(spokeFlags(r.base))...)...); err != nil {
			return err
		}
		if err := r.gone(spoke)(ctx); err != nil {
			return err
		}
		return r.kept(ctx)
	}
}

// removeGhost leaves on the hub what an older tether left of a spoke it
// removed (its namespace, an Application, an Agent object) and removes it
// with `tether spoke remove`, which used to refuse the name as unknown.
func (r *reshape) removeGhost(ctx context.Context) error {
	e, g := r.e, r.ghost
	cs, dyn, err := r.hub()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: g, Labels: map[string]string{deploy.LabelManagedBy: "tether"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create hub namespace %s: %w", g, err)
	}
	e.Cleanup("delete what is left of "+g+" on the hub", func(ctx context.Context) error {
		err := cs.CoreV1().Namespaces().Delete(ctx, g, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		err = dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Delete(ctx, g, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	})
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Application",
		"metadata": map[string]any{"name": fleet.SampleApp, "namespace": g},
		"spec": map[string]any{
			"source":      map[string]any{"repoURL": r.before.GitURL, "targetRevision": sample.Branch, "path": sample.OverlayDir(g)},
			"destination": map[string]any{"namespace": fleet.SampleNamespace},
		},
	}}
	if _, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(g).Create(ctx, app, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create hub Application %s/%s: %w", g, fleet.SampleApp, err)
	}
	agent := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Agent",
		"metadata": map[string]any{"name": g, "namespace": cluster.SystemNamespace},
		"spec":     map[string]any{"mode": "managed"},
	}}
	if _, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Create(ctx, agent, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create hub Agent %s/%s: %w", cluster.SystemNamespace, g, err)
	}
	e.Logf("made namespace %s, Application %s/%s and Agent %s/%s on the hub, with no cluster %s", g, g, fleet.SampleApp, cluster.SystemNamespace, g, g)
	res := e.Tether(ctx, "spoke", "remove", g)
	if res.ExitCode != 0 {
		return fmt.Errorf("tether spoke remove %s (no cluster, leftovers on the hub) failed (exit %d): %s", g, res.ExitCode, lastLines(res.Stderr, 8))
	}
	if !strings.Contains(res.Stdout, "no cluster") {
		return fmt.Errorf("tether spoke remove %s says %q; want it to say the spoke had no cluster", g, strings.TrimSpace(res.Stdout))
	}
	if err := r.nothingOf(ctx, g); err != nil {
		return err
	}
	return r.exactly(r.base)(ctx)
}

// upAgain runs up as the user would, with no spoke flags: it keeps the
// spokes the workbench has and must change nothing.
func (r *reshape) upAgain(ctx context.Context) error {
	if err := r.tether(ctx, append([]string{"up"}, r.e.upArgs...)...); err != nil {
		return err
	}
	if err := r.kept(ctx); err != nil {
		return err
	}
	return r.exactly(r.base)(ctx)
}
