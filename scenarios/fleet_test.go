package scenarios

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/gitops/agent"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/gitserver"
	"github.com/tether-dev/tether/gitops/principal"
	"github.com/tether-dev/tether/gitops/protocol"
	"github.com/tether-dev/tether/scenarios/harness"
)

// writeTLS writes a kubernetes.io/tls-style folder.
func writeTLS(dir string, ca *pki.CA, pair pki.Pair) {
	Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), pair.CertPEM, 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "tls.key"), pair.KeyPEM, 0o600)).To(Succeed())
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// The principal and its agents as processes on a hub and two embedded
// spokes: rollout, restarts, a partition, an operation while disconnected,
// isolation between agents, and a foreign certificate.
var _ = Describe("fleet", Ordered, Label("embedded", "fleet"), func() {
	var (
		wb          *harness.Workbench
		ca          *pki.CA
		tmp         string
		repo        *harness.Repo
		repoURL     string
		hubDyn      dynamic.Interface
		spokeCS     = map[string]*kubernetes.Clientset{}
		spokeDyn    = map[string]dynamic.Interface{}
		principalP  *harness.Process
		grpcAddr    string
		httpAddr    string
		agents      = map[string]*harness.Process{}
		proxies     = map[string]*harness.Proxy{}
		spokes      = []string{"spoke-1", "spoke-2"}
		tetherFlags func() []string
	)
	hubApps := func(ns string) dynamic.ResourceInterface {
		return hubDyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns)
	}
	hubApp := func(ctx context.Context, ns, name string) *v1alpha1.Application {
		u, err := hubApps(ns).Get(ctx, name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		var app v1alpha1.Application
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app)).To(Succeed())
		return &app
	}
	startPrincipal := func() {
		var err error
		principalP, err = harness.Start("principal", tetherBin, filepath.Join(tmp, "principal.log"), nil,
			append(tetherFlags(), "principal", "--context", "tether-hub", "--listen", grpcAddr, "--http", httpAddr, "--tls-dir", filepath.Join(tmp, "tls", "principal"), "-v")...)
		Expect(err).NotTo(HaveOccurred())
	}
	startAgent := func(s string) {
		p, err := harness.Start("agent-"+s, tetherBin, filepath.Join(tmp, "agent-"+s+".log"), nil,
			append(tetherFlags(), "agent", "--context", "tether-"+s, "--name", s, "--principal", proxies[s].Addr(),
				"--tls-dir", filepath.Join(tmp, "tls", s), "--poll", "1h", "-v")...)
		Expect(err).NotTo(HaveOccurred())
		agents[s] = p
	}
	allSyncedAt := func(ctx context.Context, sha string) func(Gomega) {
		return func(g Gomega) {
			for _, s := range spokes {
				u, err := hubApps(s).Get(ctx, "web", metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				var app v1alpha1.Application
				g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app)).To(Succeed())
				spokeU, _ := spokeDyn[s].Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace).Get(ctx, "web", metav1.GetOptions{})
				var spokeStatus any
				if spokeU != nil {
					spokeStatus = spokeU.Object["status"]
				}
				g.Expect(app.Status.Sync.Status).To(Equal(v1alpha1.SyncStatusSynced), "%s on the hub: %+v\non the spoke: %v", s, app.Status, spokeStatus)
				g.Expect(app.Status.Health.Status).To(Equal("Healthy"), "%s: hub health %+v\non the spoke: %v", s, app.Status.Health, spokeStatus)
				if sha != "" {
					g.Expect(app.Status.Sync.Revision).To(Equal(sha), s)
				}
			}
		}
	}
	spokeReplicas := func(ctx context.Context, s string) int32 {
		d, err := spokeCS[s].AppsV1().Deployments("web").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return -1
		}
		return *d.Spec.Replicas
	}
	scale := func(ctx context.Context, n int) string {
		Expect(repo.Write("plain/deployment.yaml", fmt.Sprintf(deploymentYAML, n))).To(Succeed())
		sha, err := repo.CommitPush(ctx, "scale to "+strconv.Itoa(n))
		Expect(err).NotTo(HaveOccurred())
		return sha
	}

	BeforeAll(func(ctx SpecContext) {
		wb = newWorkbench()
		tmp = GinkgoT().TempDir()
		tetherFlags = func() []string {
			return []string{"--state-dir", wb.StateDir, "--cache-dir", wb.CacheDir, "--kubeconfig", wb.Kubeconfig}
		}
		// Clusters only: this suite runs and breaks its own principal and
		// agents.
		res := wb.Run(ctx, "up", "--provider", "embedded", "--clusters-only")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		DeferCleanup(func(ctx SpecContext) {
			for _, a := range agents {
				a.Stop()
			}
			if principalP != nil {
				principalP.Stop()
			}
			for _, p := range proxies {
				p.Close()
			}
			wb.Run(ctx, "down")
		}, NodeTimeout(3*time.Minute))

		var err error
		ca, err = pki.LoadOrCreateCA(filepath.Join(wb.StateDir, "pki"), "unused")
		Expect(err).NotTo(HaveOccurred())
		serving, err := ca.Issue(pki.Request{CommonName: "tether-principal", Server: true,
			DNSNames: []string{"tether-principal.tether-system.svc", "localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
		Expect(err).NotTo(HaveOccurred())
		writeTLS(filepath.Join(tmp, "tls", "principal"), ca, serving)
		for _, s := range spokes {
			pair, err := principal.AgentCertificate(ca, s)
			Expect(err).NotTo(HaveOccurred())
			writeTLS(filepath.Join(tmp, "tls", s), ca, pair)
		}

		hubCfg, err := wb.RESTConfig("hub")
		Expect(err).NotTo(HaveOccurred())
		hubDyn = dynamic.NewForConfigOrDie(hubCfg)
		hubCS := kubernetes.NewForConfigOrDie(hubCfg)
		for _, s := range spokes {
			cfg, err := wb.RESTConfig(s)
			Expect(err).NotTo(HaveOccurred())
			spokeCS[s] = kubernetes.NewForConfigOrDie(cfg)
			spokeDyn[s] = dynamic.NewForConfigOrDie(cfg)
			_, err = hubCS.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}

		grpcAddr, httpAddr = freeAddr(), freeAddr()
		srv, err := gitserver.New(filepath.Join(tmp, "git"), gitserver.Options{Webhooks: []string{"http://" + httpAddr + "/webhook/git"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(srv.CreateRepo("fleet")).To(Succeed())
		addr, err := srv.ListenAndServe(context.Background(), "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(srv.Close)
		repoURL = gitserver.URL("http://"+addr.String(), "fleet")
		repo, err = harness.CloneRepo(ctx, repoURL, filepath.Join(tmp, "fleet"))
		Expect(err).NotTo(HaveOccurred())
		Expect(repo.Write("plain/deployment.yaml", fmt.Sprintf(deploymentYAML, 2))).To(Succeed())
		Expect(repo.Write("manual/cm.yaml", configMapYAML("manual", "v1"))).To(Succeed())
		_, err = repo.CommitPush(ctx, "initial")
		Expect(err).NotTo(HaveOccurred())

		startPrincipal()
		// The principal installs the CRDs on the hub when it starts.
		Eventually(func() error {
			_, err := hubApps("spoke-1").List(ctx, metav1.ListOptions{})
			return err
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "principal log:\n%s", principalP.Output)
		for _, s := range spokes {
			proxies[s], err = harness.NewProxy(grpcAddr)
			Expect(err).NotTo(HaveOccurred())
			startAgent(s)
		}
	}, NodeTimeout(5*time.Minute))

	It("rolls a commit out to every spoke and shows the fleet on the hub", func(ctx SpecContext) {
		for _, s := range spokes {
			createHubApp(ctx, hubApps(s), s, "web", repoURL, "plain", "web",
				&v1alpha1.SyncPolicy{Automated: &v1alpha1.Automated{Prune: true, SelfHeal: true}, SyncOptions: []string{v1alpha1.SyncOptionCreateNamespace}})
		}
		Eventually(allSyncedAt(ctx, "")).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		sha := scale(ctx, 3)
		Eventually(allSyncedAt(ctx, sha)).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		for _, s := range spokes {
			Expect(spokeReplicas(ctx, s)).To(Equal(int32(3)))
		}
		Eventually(func(g Gomega) {
			for _, s := range spokes {
				u, err := hubDyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Get(ctx, s, metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				connected, _, _ := unstructured.NestedBool(u.Object, "status", "connected")
				apps, _, _ := unstructured.NestedInt64(u.Object, "status", "applications")
				g.Expect(connected).To(BeTrue())
				g.Expect(apps).To(Equal(int64(1)))
			}
		}).WithContext(ctx).Should(Succeed())
	}, SpecTimeout(6*time.Minute)) // includes BeforeAll: up, certificates, processes

	It("reverts a change made on the spoke to a managed Application's spec", func(ctx SpecContext) {
		spokeApps := spokeDyn["spoke-1"].Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace)
		_, err := spokeApps.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"source":{"path":"manual"}}}`), metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() string {
			u, _ := spokeApps.Get(ctx, "web", metav1.GetOptions{})
			p, _, _ := unstructured.NestedString(u.Object, "spec", "source", "path")
			return p
		}).WithContext(ctx).Should(Equal("plain"))
	}, SpecTimeout(time.Minute))

	It("converges after an agent is SIGKILLed during a sync and restarted", func(ctx SpecContext) {
		sha := scale(ctx, 4)
		agents["spoke-1"].Kill()
		startAgent("spoke-1")
		Eventually(allSyncedAt(ctx, sha)).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		Expect(spokeReplicas(ctx, "spoke-1")).To(Equal(int32(4)))
	}, SpecTimeout(2*time.Minute))

	It("delivers hub changes made while the principal was down once it restarts", func(ctx SpecContext) {
		principalP.Kill()
		// A spec change on the hub while nobody carries it.
		_, err := hubApps("spoke-2").Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"source":{"targetRevision":"HEAD"}}}`), metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
		startPrincipal()
		spokeApps := spokeDyn["spoke-2"].Resource(v1alpha1.ApplicationsResource).Namespace(cluster.SystemNamespace)
		Eventually(func() string {
			u, err := spokeApps.Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			r, _, _ := unstructured.NestedString(u.Object, "spec", "source", "targetRevision")
			return r
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Equal("HEAD"))
		sha := scale(ctx, 5)
		Eventually(allSyncedAt(ctx, sha)).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
	}, SpecTimeout(3*time.Minute))

	It("converges after the agent-principal connection is cut for 20 s", func(ctx SpecContext) {
		proxies["spoke-1"].Cut()
		sha := scale(ctx, 6)
		// spoke-2 still hears about the push at once; spoke-1 cannot.
		Eventually(func() int32 { return spokeReplicas(ctx, "spoke-2") }).WithContext(ctx).Should(Equal(int32(6)))
		Consistently(func() int32 { return spokeReplicas(ctx, "spoke-1") }).WithContext(ctx).WithTimeout(20 * time.Second).Should(Equal(int32(5)))
		proxies["spoke-1"].Restore()
		Eventually(allSyncedAt(ctx, sha)).WithContext(ctx).WithTimeout(90 * time.Second).Should(Succeed())
		Expect(spokeReplicas(ctx, "spoke-1")).To(Equal(int32(6)))
	}, SpecTimeout(3*time.Minute))

	It("runs a sync requested while the agent was disconnected exactly once when it returns", func(ctx SpecContext) {
		createHubApp(ctx, hubApps("spoke-2"), "spoke-2", "manual", repoURL, "manual", "default", nil)
		Eventually(func() string { return hubApp(ctx, "spoke-2", "manual").Status.Sync.Status }).WithContext(ctx).Should(Equal(v1alpha1.SyncStatusOutOfSync))
		proxies["spoke-2"].Cut()
		id := "scenario-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		patch := fmt.Sprintf(`{"operation":{"id":%q,"initiatedBy":"scenario","sync":{}}}`, id)
		_, err := hubApps("spoke-2").Patch(ctx, "manual", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
		Consistently(func() *v1alpha1.OperationState { return hubApp(ctx, "spoke-2", "manual").Status.OperationState }).WithContext(ctx).WithTimeout(3 * time.Second).Should(BeNil())
		proxies["spoke-2"].Restore()
		Eventually(func(g Gomega) {
			app := hubApp(ctx, "spoke-2", "manual")
			g.Expect(app.Status.OperationState).NotTo(BeNil())
			g.Expect(app.Status.OperationState.Operation.ID).To(Equal(id))
			g.Expect(app.Status.OperationState.Phase).To(Equal(v1alpha1.OperationSucceeded))
			g.Expect(app.Operation).To(BeNil(), "the hub's request was not cleared")
			g.Expect(app.Status.Sync.Status).To(Equal(v1alpha1.SyncStatusSynced))
		}).WithContext(ctx).WithTimeout(90 * time.Second).Should(Succeed())
		// Once: a reconnect storm must not run it again.
		proxies["spoke-2"].Cut()
		proxies["spoke-2"].Restore()
		Consistently(func() int { return len(hubApp(ctx, "spoke-2", "manual").Status.History) }).WithContext(ctx).WithTimeout(5 * time.Second).Should(Equal(1))
	}, SpecTimeout(3*time.Minute))

	It("keeps an agent to its own namespace: spoke-1's certificate cannot read or change spoke-2's Applications", func(ctx SpecContext) {
		before := hubApp(ctx, "spoke-2", "web").Status
		s, closeFn := rawAgent(ctx, filepath.Join(tmp, "tls", "spoke-1"), grpcAddr)
		defer closeFn()
		Expect(s.Send(&protocol.Message{Hello: &protocol.Hello{Version: "evil", Mode: protocol.ModeManaged, Apps: map[string]string{}}})).To(Succeed())
		// It names spoke-2's "manual" (spoke-1 has no such Application).
		fake := &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: "Synced", Revision: "forged"}}
		Expect(s.Send(&protocol.Message{Seq: 1, Status: &protocol.StatusUpdate{Name: "manual", Status: fake}})).To(Succeed())
		seen := map[string]bool{}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			m, err := recvTimeout(s, time.Until(deadline))
			if err != nil {
				break
			}
			if m.App != nil {
				seen[m.App.Name] = true
			}
		}
		Expect(seen).To(HaveKey("web"))
		Expect(seen).NotTo(HaveKey("manual"), "spoke-1's certificate was sent spoke-2's Application")
		Expect(hubApp(ctx, "spoke-2", "manual").Status.Sync.Revision).NotTo(Equal("forged"))
		Expect(hubApp(ctx, "spoke-2", "web").Status.Sync.Revision).To(Equal(before.Sync.Revision))
	}, SpecTimeout(time.Minute))

	It("refuses a certificate from another CA", func(ctx SpecContext) {
		other, _, err := pki.NewCA("someone else")
		Expect(err).NotTo(HaveOccurred())
		pair, err := principal.AgentCertificate(other, "spoke-1")
		Expect(err).NotTo(HaveOccurred())
		dir := filepath.Join(tmp, "tls", "foreign")
		writeTLS(dir, other, pair)
		// Trust the real principal, but present the foreign identity.
		Expect(os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o600)).To(Succeed())
		s, closeFn := rawAgent(ctx, dir, grpcAddr)
		defer closeFn()
		err = s.Send(&protocol.Message{Hello: &protocol.Hello{Mode: protocol.ModeManaged}})
		if err == nil {
			_, err = recvTimeout(s, 5*time.Second)
		}
		Expect(err).To(HaveOccurred(), "a foreign certificate got a stream")
		Eventually(principalP.Output).Should(ContainSubstring("agent refused: certificate not issued by the workbench CA"))
	}, SpecTimeout(time.Minute))
})

func createHubApp(ctx context.Context, res dynamic.ResourceInterface, ns, name, url, path, dest string, policy *v1alpha1.SyncPolicy) {
	GinkgoHelper()
	app := &v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: url, TargetRevision: "main", Path: path},
			Destination: v1alpha1.Destination{Namespace: dest},
			SyncPolicy:  policy,
		},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
	Expect(err).NotTo(HaveOccurred())
	_, err = res.Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
}

// rawAgent opens a protocol stream with the identity in dir, the way a
// hostile or buggy agent would.
func rawAgent(ctx context.Context, dir, addr string) (protocol.Stream, func()) {
	GinkgoHelper()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	Expect(err).NotTo(HaveOccurred())
	certPEM, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	Expect(err).NotTo(HaveOccurred())
	keyPEM, err := os.ReadFile(filepath.Join(dir, "tls.key"))
	Expect(err).NotTo(HaveOccurred())
	tlsCfg, err := agent.ClientTLS(caPEM, certPEM, keyPEM, "tether-principal.tether-system.svc")
	Expect(err).NotTo(HaveOccurred())
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	Expect(err).NotTo(HaveOccurred())
	sctx, cancel := context.WithCancel(ctx)
	s, err := protocol.Dial(sctx, cc)
	if err != nil {
		cancel()
		cc.Close()
		return failingStream{err}, func() {}
	}
	return s, func() { cancel(); cc.Close() }
}

type failingStream struct{ err error }

func (f failingStream) Send(*protocol.Message) error     { return f.err }
func (f failingStream) Recv() (*protocol.Message, error) { return nil, f.err }
func (f failingStream) Context() context.Context         { return context.Background() }

func recvTimeout(s protocol.Stream, d time.Duration) (*protocol.Message, error) {
	type result struct {
		m   *protocol.Message
		err error
	}
	ch := make(chan result, 1)
	go func() { m, err := s.Recv(); ch <- result{m, err} }()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("no message within %s", d)
	}
}
