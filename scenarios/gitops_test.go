package scenarios

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/engine"
	"github.com/tether-dev/tether/gitops/gitserver"
	"github.com/tether-dev/tether/scenarios/harness"
)

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: %d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`

const serviceYAML = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  greeting: %q\n", name, value)
}

// The sync engine on a real embedded spoke, fed by the embedded Git server
// over smart HTTP: create, converge, a dry-run refusal, an unreachable
// repository, Kustomize, CRDs, and the app commands. Self-heal, prune and
// broken YAML are named scenarios (drift-self-heal, prune, bad-manifest in
// scenarios/catalog), run through the whole fleet by catalog_test.go.
var _ = Describe("sync engine", Ordered, Label("embedded", "gitops"), func() {
	var (
		wb      *harness.Driver
		dyn     dynamic.Interface
		cs      *kubernetes.Clientset
		eng     *engine.Engine
		repo    *harness.Repo
		repoURL string
	)
	apps := func() dynamic.ResourceInterface {
		return dyn.Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace)
	}
	getApp := func(ctx context.Context, name string) *v1alpha1.Application {
		u, err := apps().Get(ctx, name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		var app v1alpha1.Application
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app)).To(Succeed())
		return &app
	}
	createApp := func(ctx context.Context, name, url, path, dest string, policy *v1alpha1.SyncPolicy) {
		app := &v1alpha1.Application{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster.SystemNamespace},
			Spec: v1alpha1.ApplicationSpec{
				Source:      v1alpha1.Source{RepoURL: url, TargetRevision: "main", Path: path},
				Destination: v1alpha1.Destination{Namespace: dest},
				SyncPolicy:  policy,
			},
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
		Expect(err).NotTo(HaveOccurred())
		_, err = apps().Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	auto := func(prune, selfHeal bool) *v1alpha1.SyncPolicy {
		return &v1alpha1.SyncPolicy{Automated: &v1alpha1.Automated{Prune: prune, SelfHeal: selfHeal}, SyncOptions: []string{v1alpha1.SyncOptionCreateNamespace}}
	}
	syncedAt := func(ctx context.Context, name, sha string) func(Gomega) {
		return func(g Gomega) {
			app := getApp(ctx, name)
			g.Expect(app.Status.Conditions).To(BeEmpty())
			g.Expect(app.Status.Sync.Status).To(Equal(v1alpha1.SyncStatusSynced), "%+v", app.Status.Resources)
			if sha != "" {
				g.Expect(app.Status.Sync.Revision).To(Equal(sha))
			}
			g.Expect(app.Status.Health.Status).To(Equal("Healthy"), app.Status.Health.Message)
		}
	}
	replicas := func(ctx context.Context, ns, name string) int32 {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return -1
		}
		return *d.Spec.Replicas
	}
	push := func(ctx context.Context, msg string) string {
		sha, err := repo.CommitPush(ctx, msg)
		Expect(err).NotTo(HaveOccurred())
		return sha
	}

	BeforeAll(func(ctx SpecContext) {
		wb, _ = upWorkbench(ctx, "--provider", "embedded", "--spokes", "1", "--clusters-only")
		cfg, err := wb.RESTConfig("spoke-1")
		Expect(err).NotTo(HaveOccurred())
		dyn = dynamic.NewForConfigOrDie(cfg)
		cs = kubernetes.NewForConfigOrDie(cfg)

		Expect(engine.InstallCRD(ctx, cfg)).To(Succeed())
		log := slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))
		// A long poll: every change below must arrive through the push
		// hook or the refresh annotation, not by waiting for a poll.
		eng, err = engine.New(engine.Options{Config: cfg, Namespace: cluster.SystemNamespace, CacheDir: GinkgoT().TempDir(), Logger: log, PollInterval: time.Hour})
		Expect(err).NotTo(HaveOccurred())
		engCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(engCtx) }()
		DeferCleanup(func() { stop(); Eventually(done).Should(Receive(BeNil())) })

		srv, err := gitserver.New(GinkgoT().TempDir(), gitserver.Options{Logger: log, OnPush: func(ev gitserver.PushEvent) {
			eng.Refresh(repoURL)
		}})
		Expect(err).NotTo(HaveOccurred())
		Expect(srv.CreateRepo("apps")).To(Succeed())
		addr, err := srv.ListenAndServe(context.Background(), "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(srv.Close)
		repoURL = gitserver.URL("http://"+addr.String(), "apps")

		repo, err = harness.CloneRepo(ctx, repoURL, filepath.Join(GinkgoT().TempDir(), "apps"))
		Expect(err).NotTo(HaveOccurred())
		Expect(repo.Write("plain/deployment.yaml", fmt.Sprintf(deploymentYAML, 2))).To(Succeed())
		Expect(repo.Write("plain/more.yaml", serviceYAML+"---\n"+configMapYAML("web-config", "hello"))).To(Succeed())
		Expect(repo.Write("manual/cm.yaml", configMapYAML("manual", "from git"))).To(Succeed())
		Expect(repo.Write("kustomize/base/kustomization.yaml", "resources:\n- deployment.yaml\n")).To(Succeed())
		Expect(repo.Write("kustomize/base/deployment.yaml", fmt.Sprintf(deploymentYAML, 1))).To(Succeed())
		Expect(repo.Write("kustomize/overlays/spoke-1/kustomization.yaml", `resources:
- ../../base
namePrefix: spoke-1-
labels:
- pairs: {tether.dev/spoke: spoke-1}
replicas:
- name: web
  count: 3
`)).To(Succeed())
		push(ctx, "initial")
	}, NodeTimeout(5*time.Minute))

	It("syncs a new Application to Synced and Healthy", func(ctx SpecContext) {
		createApp(ctx, "web", repoURL, "plain", "web", auto(true, true))
		Eventually(syncedAt(ctx, "web", "")).WithContext(ctx).Should(Succeed())
		Expect(replicas(ctx, "web", "web")).To(Equal(int32(2)))
		app := getApp(ctx, "web")
		Expect(app.Status.Resources).To(HaveLen(3))
		Expect(app.Status.History).To(HaveLen(1))
		_, err := cs.CoreV1().ConfigMaps("web").Get(ctx, "web-config", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())

		out := wb.Run(ctx, "app", "list", "--context", "tether-spoke-1")
		Expect(out.ExitCode).To(Equal(0), out.Stderr)
		Expect(out.Stdout).To(MatchRegexp(`web\s+Synced\s+Healthy`))
	}, SpecTimeout(5*time.Minute)) // includes BeforeAll: up and Git set-up

	It("converges a pushed commit without waiting for a poll", func(ctx SpecContext) {
		Expect(repo.Write("plain/deployment.yaml", fmt.Sprintf(deploymentYAML, 3))).To(Succeed())
		sha := push(ctx, "scale to 3")
		Eventually(syncedAt(ctx, "web", sha)).WithContext(ctx).Should(Succeed())
		Expect(replicas(ctx, "web", "web")).To(Equal(int32(3)))
		Expect(getApp(ctx, "web").Status.History).To(HaveLen(2))
	}, SpecTimeout(time.Minute))

	It("refuses a set the API server rejects in the dry run, before applying any of it", func(ctx SpecContext) {
		before := replicas(ctx, "web", "web")
		Expect(repo.Write("plain/deployment.yaml", fmt.Sprintf(deploymentYAML, 5))).To(Succeed())
		Expect(repo.Write("plain/bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 70000\n")).To(Succeed())
		push(ctx, "invalid service")
		Eventually(func(g Gomega) {
			app := getApp(ctx, "web")
			g.Expect(app.Status.Conditions).To(ContainElement(And(
				HaveField("Type", v1alpha1.ConditionSyncError),
				HaveField("Message", And(ContainSubstring("nothing was applied"), ContainSubstring("Service web/bad (plain/bad.yaml)"))))))
		}).WithContext(ctx).Should(Succeed())
		Expect(replicas(ctx, "web", "web")).To(Equal(before), "part of a refused set was applied")

		Expect(repo.Remove("plain/bad.yaml")).To(Succeed())
		sha := push(ctx, "drop invalid service")
		Eventually(syncedAt(ctx, "web", sha)).WithContext(ctx).Should(Succeed())
		Expect(replicas(ctx, "web", "web")).To(Equal(int32(5)))
	}, SpecTimeout(time.Minute))

	It("reports an unreachable repository and recovers when it returns, keeping the cluster as it was", func(ctx SpecContext) {
		root := GinkgoT().TempDir()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		addr := l.Addr().String()
		l.Close()
		serve := func() *gitserver.Server {
			s, err := gitserver.New(root, gitserver.Options{})
			Expect(err).NotTo(HaveOccurred())
			Expect(s.CreateRepo("far")).To(Succeed())
			_, err = s.ListenAndServe(context.Background(), addr)
			Expect(err).NotTo(HaveOccurred())
			return s
		}
		far := serve()
		farURL := gitserver.URL("http://"+addr, "far")
		farRepo, err := harness.CloneRepo(ctx, farURL, filepath.Join(GinkgoT().TempDir(), "far"))
		Expect(err).NotTo(HaveOccurred())
		Expect(farRepo.Write("app/cm.yaml", configMapYAML("far", "x"))).To(Succeed())
		_, err = farRepo.CommitPush(ctx, "far away")
		Expect(err).NotTo(HaveOccurred())
		createApp(ctx, "far", farURL, "app", "far", auto(true, true))
		Eventually(syncedAt(ctx, "far", "")).WithContext(ctx).Should(Succeed())

		Expect(far.Close()).To(Succeed())
		refresh := fmt.Sprintf(`{"metadata":{"annotations":{%q:"now"}}}`, v1alpha1.AnnotationRefresh)
		_, err = apps().Patch(ctx, "far", types.MergePatchType, []byte(refresh), metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			app := getApp(ctx, "far")
			g.Expect(app.Status.Conditions).To(ContainElement(And(
				HaveField("Type", v1alpha1.ConditionComparisonError),
				HaveField("Message", ContainSubstring("unreachable")))))
		}).WithContext(ctx).Should(Succeed())
		_, err = cs.CoreV1().ConfigMaps("far").Get(ctx, "far", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "the last synced state must stay")

		back := serve()
		DeferCleanup(back.Close)
		// No new trigger: the engine retries with backoff on its own.
		Eventually(syncedAt(ctx, "far", "")).WithContext(ctx).WithTimeout(40 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("renders a Kustomize overlay in-process", func(ctx SpecContext) {
		createApp(ctx, "kust", repoURL, "kustomize/overlays/spoke-1", "kust", auto(true, true))
		Eventually(syncedAt(ctx, "kust", "")).WithContext(ctx).Should(Succeed())
		d, err := cs.AppsV1().Deployments("kust").Get(ctx, "spoke-1-web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(*d.Spec.Replicas).To(Equal(int32(3)))
		Expect(d.Labels).To(HaveKeyWithValue("tether.dev/spoke", "spoke-1"))
	}, SpecTimeout(time.Minute))

	It("applies a CRD and a custom resource of it from the same commit", func(ctx SpecContext) {
		Expect(repo.Write("crds/crd.yaml", `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.tether.dev
spec:
  group: example.tether.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`)).To(Succeed())
		Expect(repo.Write("crds/widget.yaml", "apiVersion: example.tether.dev/v1\nkind: Widget\nmetadata:\n  name: gear\nspec:\n  size: 3\n")).To(Succeed())
		push(ctx, "a CRD and its resource")
		createApp(ctx, "widgets", repoURL, "crds", "widgets", auto(true, true))
		Eventually(syncedAt(ctx, "widgets", "")).WithContext(ctx).Should(Succeed())
		w, err := dyn.Resource(schema.GroupVersionResource{Group: "example.tether.dev", Version: "v1", Resource: "widgets"}).Namespace("widgets").Get(ctx, "gear", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size")
		Expect(size).To(Equal(int64(3)))
	}, SpecTimeout(time.Minute))

	It("diffs, syncs on request, and reports drift without healing when the policy is manual", func(ctx SpecContext) {
		createApp(ctx, "manual", repoURL, "manual", "default", nil)
		Eventually(func(g Gomega) {
			g.Expect(getApp(ctx, "manual").Status.Sync.Status).To(Equal(v1alpha1.SyncStatusOutOfSync))
		}).WithContext(ctx).Should(Succeed())
		res := wb.Run(ctx, "app", "diff", "manual", "--context", "tether-spoke-1")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(res.Stdout).To(ContainSubstring("Create v1/ConfigMap default/manual"))

		res = wb.Run(ctx, "app", "sync", "manual", "--context", "tether-spoke-1")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Eventually(syncedAt(ctx, "manual", "")).WithContext(ctx).Should(Succeed())
		Eventually(func() *v1alpha1.Operation { return getApp(ctx, "manual").Operation }).WithContext(ctx).Should(BeNil(), "the finished operation was not cleared")

		cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "manual", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		cm.Data["greeting"] = "edited by hand"
		_, err = cs.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(getApp(ctx, "manual").Status.Sync.Status).To(Equal(v1alpha1.SyncStatusOutOfSync))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func() string {
			cm, _ := cs.CoreV1().ConfigMaps("default").Get(ctx, "manual", metav1.GetOptions{})
			return cm.Data["greeting"]
		}).WithContext(ctx).WithTimeout(2 * time.Second).Should(Equal("edited by hand"))

		res = wb.Run(ctx, "app", "diff", "manual", "--context", "tether-spoke-1")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(res.Stdout).To(And(ContainSubstring("Update v1/ConfigMap default/manual"),
			ContainSubstring(`-  greeting: edited by hand`), ContainSubstring(`+  greeting: from git`)))

		res = wb.Run(ctx, "app", "get", "manual", "--context", "tether-spoke-1")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Expect(strings.Contains(res.Stdout, "OutOfSync")).To(BeTrue(), res.Stdout)
	}, SpecTimeout(2*time.Minute))
})
