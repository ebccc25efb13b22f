package scenarios

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/intercept/agentpod"
	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/trafficagent"
)

// The kind traffic-agent's objects against a real API server: admission,
// validation, server-side apply, the RBAC authorizer and the garbage
// collector are the real ones; kwok plays the kubelet, so the pod goes
// Running but runs nothing (its port-forward is unit-tested instead).
var _ = Describe("intercept on kind: the traffic-agent's objects", Ordered, Label("embedded", "intercept"), func() {
	const ns = "kshop"
	var (
		cs        *kubernetes.Clientset
		cfg       *rest.Config
		rec       *record.Record
		uninstall func(context.Context)
	)

	BeforeAll(func(ctx SpecContext) {
		w, _ := upWorkbench(ctx, "--provider", "embedded", "--spokes", "0", "--clusters-only")
		var err error
		cs, err = w.Client("hub")
		Expect(err).NotTo(HaveOccurred())
		cfg, err = w.RESTConfig("hub")
		Expect(err).NotTo(HaveOccurred())
		uninstall = func(ctx context.Context) {
			GinkgoHelper()
			r := w.Run(ctx, "intercept", "uninstall")
			Expect(r.ExitCode).To(Equal(0), r.Stderr)
		}

		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {ContainerPort: 9090}}}}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "metrics", Port: 9090},
			}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		// What intercept.Start records and creates before it launches
		// the agent: the record, and the agent's Lease (its lock).
		rec = &record.Record{
			Name: "web-80", Cluster: "hub", Namespace: ns, Service: "web", Port: 80,
			Ports:            []record.Port{{Name: "http", Port: 80, TargetPort: 80, TargetPortName: "http"}, {Name: "metrics", Port: 9090, TargetPort: 9090}},
			OriginalSelector: map[string]string{"app": "web"}, AgentLabels: record.AgentLabels("web"),
			Lease: record.LeaseName("web-80"), Agent: record.AgentName("web"), AgentID: "scenario1", AgentPod: record.AgentName("web"),
			Holder: "scenario", Created: time.Now().UTC().Truncate(time.Second),
		}
		dur := int32(record.DefaultLeaseSeconds)
		_, err = cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: rec.Agent, Namespace: ns, Labels: record.AgentLabels("web"), Annotations: map[string]string{record.AnnotationAgentID: rec.AgentID}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &rec.Holder, LeaseDurationSeconds: &dur},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(5*time.Minute))

	opts := agentpod.Options{Image: "tether.local/tether:scenario"}

	It("passes admission and validation in a server-side dry run, and creates nothing", func(ctx SpecContext) {
		set, err := agentpod.Objects(rec, "tok-1", opts)
		Expect(err).NotTo(HaveOccurred())
		// The pod's ServiceAccount must exist for admission to take it,
		// so the dry run of a first install stops at the pod: that is the
		// only refusal it may give.
		err = agentpod.Apply(ctx, cs, set, true)
		fmt.Fprintf(GinkgoWriter, "server-side dry run of a first install: %v\n", err)
		if err != nil {
			Expect(err.Error()).To(And(ContainSubstring("apply Pod"), ContainSubstring("serviceaccount")), "dry run refused something else")
		}
		_, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run created the ServiceAccount")
		_, err = cs.CoreV1().Pods(ns).Get(ctx, rec.AgentPod, metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run created the pod")
	}, SpecTimeout(time.Minute))

	It("applies for real through the launcher; the pod is scheduled, Running and Ready, and owned by the agent's Lease", func(ctx SpecContext) {
		l := &agentpod.Launcher{Client: cs, Options: opts}
		_, err := l.Launch(ctx, rec, "tok-1")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, rec.AgentPod, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Spec.NodeName).NotTo(BeEmpty())
			g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(p.Status.Conditions).To(ContainElement(And(HaveField("Type", corev1.PodReady), HaveField("Status", corev1.ConditionTrue))))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.OwnerReferences).To(ConsistOf(HaveField("UID", lease.UID)))

		By("a dry run over the installed set passes and changes nothing")
		set, err := agentpod.Objects(rec, "tok-1", opts)
		Expect(err).NotTo(HaveOccurred())
		set.SetOwner(agentpod.LeaseOwner(lease))
		before, err := cs.CoreV1().Pods(ns).Get(ctx, rec.AgentPod, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(agentpod.Apply(ctx, cs, set, true)).To(Succeed())
		after, err := cs.CoreV1().Pods(ns).Get(ctx, rec.AgentPod, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))

		By("the EndpointSlice controller maps the Service's named and numbered ports onto the agent once selected")
		svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = record.TakeOver(ctx, cs, svc, &record.Takeover{Agent: rec.Agent, AgentID: rec.AgentID, OriginalSelector: rec.OriginalSelector, AgentLabels: rec.AgentLabels, AgentPod: rec.AgentPod})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
			g.Expect(err).NotTo(HaveOccurred())
			ports := map[string]int32{}
			var targets []string
			for _, s := range slices.Items {
				for _, ep := range s.Endpoints {
					if ep.TargetRef != nil {
						targets = append(targets, ep.TargetRef.Name)
					}
				}
				for _, p := range s.Ports {
					if p.Name != nil && p.Port != nil && len(s.Endpoints) > 0 {
						ports[*p.Name] = *p.Port
					}
				}
			}
			g.Expect(targets).To(ConsistOf(rec.AgentPod))
			g.Expect(ports).To(Equal(map[string]int32{"http": 80, "metrics": 9090}))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("grants the agent's ServiceAccount what the agent calls and nothing more, by the real RBAC authorizer", func(ctx SpecContext) {
		user := "system:serviceaccount:" + ns + ":" + rec.Agent
		groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
		can := func(verb, group, resource, name string) bool {
			sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Name: name},
			}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			return sar.Status.Allowed
		}
		// The calls the in-cluster agent makes (intercept/agentpod's
		// TestRulesCoverTheAgent records them from the agent itself).
		for _, c := range [][4]string{
			{"list", "", "pods", ""}, {"watch", "", "pods", ""},
			{"get", "", "services", "web"}, {"update", "", "services", "web"},
			{"list", "coordination.k8s.io", "leases", ""}, {"delete", "coordination.k8s.io", "leases", rec.Lease},
			{"get", "coordination.k8s.io", "leases", rec.Agent}, {"update", "coordination.k8s.io", "leases", rec.Agent},
			{"delete", "coordination.k8s.io", "leases", rec.Agent},
			{"get", "", "secrets", rec.Agent}, {"delete", "", "secrets", rec.Agent},
			{"list", "apps", "deployments", ""},
		} {
			Expect(can(c[0], c[1], c[2], c[3])).To(BeTrue(), "%v", c)
		}
		for _, c := range [][4]string{
			{"list", "", "secrets", ""}, {"get", "", "secrets", "other"}, {"create", "", "pods", ""},
			// Its own pod goes with its Lease (garbage collector), after
			// the agent's cleanup, not by the agent's hand.
			{"delete", "", "pods", rec.AgentPod},
			{"update", "", "services", "other"}, {"patch", "", "services", "web"}, {"delete", "", "pods", "web-0"},
			{"list", "discovery.k8s.io", "endpointslices", ""}, {"update", "coordination.k8s.io", "leases", "other"},
		} {
			Expect(can(c[0], c[1], c[2], c[3])).To(BeFalse(), "%v", c)
		}

		By("real requests, impersonating the ServiceAccount")
		imp := rest.CopyConfig(cfg)
		imp.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
		as, err := kubernetes.NewForConfig(imp)
		Expect(err).NotTo(HaveOccurred())
		_, err = as.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		Expect(err).NotTo(HaveOccurred())
		_, err = as.CoordinationV1().Leases(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = as.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = as.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing secrets: %v", err)
		// Its own Secret, by name: how record.CleanupAgentInPod reads it.
		_, err = as.CoreV1().Secrets(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = as.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "pods of another namespace: %v", err)
	}, SpecTimeout(time.Minute))

	It("ends with the agent's own rights: the agent's cleanup restores the Service, deletes its Secret and Lease, and the garbage collector its pod and RBAC", func(ctx SpecContext) {
		user := "system:serviceaccount:" + ns + ":" + rec.Agent
		imp := rest.CopyConfig(cfg)
		imp.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
		as, err := kubernetes.NewForConfig(imp)
		Expect(err).NotTo(HaveOccurred())
		// What the agent runs in its pod when its last intercept goes.
		Expect(record.CleanupAgentInPod(ctx, as, ns, "web", rec.AgentID)).To(Succeed())
		svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "web"}))
		_, err = cs.CoordinationV1().Leases(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "agent lease: %v", err)
		Eventually(func(g Gomega) {
			for what, get := range map[string]func() error{
				"pod":    func() error { _, err := cs.CoreV1().Pods(ns).Get(ctx, rec.AgentPod, metav1.GetOptions{}); return err },
				"secret": func() error { _, err := cs.CoreV1().Secrets(ns).Get(ctx, rec.Agent, metav1.GetOptions{}); return err },
				"service account": func() error {
					_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
					return err
				},
				"role": func() error { _, err := cs.RbacV1().Roles(ns).Get(ctx, rec.Agent, metav1.GetOptions{}); return err },
				"role binding": func() error {
					_, err := cs.RbacV1().RoleBindings(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
					return err
				},
			} {
				err := get()
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s: %v", what, err)
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
	}, SpecTimeout(time.Minute))

	// intercept.Start wired as on kind (a agentpod.Launcher, a DialAgent, no
	// embedded shortcuts), with the pod's runtime played by this process:
	// the real traffic-agent runs here in its in-cluster mode, talking to
	// the API server as its ServiceAccount (impersonated), so its whole
	// life runs under the Role the launcher gave it. What kwok cannot give
	// is the pod network, so in-cluster clients are played by dialing the
	// agent's listener directly.
	It("runs a global intercept through the in-cluster agent under its own Role, and stop restores the Service", func(ctx SpecContext) {
		const svcName = "echo2"
		free := func() int32 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			defer l.Close()
			return int32(l.Addr().(*net.TCPAddr).Port)
		}
		// In-cluster mode listens on the target port itself and the
		// control port at a fixed number: free ones on this machine.
		target, control := free(), free()
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "echo2-0", Namespace: ns, Labels: map[string]string{"app": svcName}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: "example.com/echo:1",
				Ports: []corev1.ContainerPort{{ContainerPort: target}}}}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		orig, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: svcName, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": svcName}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(target)},
			}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		localAddr := echoServer("local")
		log := slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))
		agentDone := make(chan error, 1)
		pods := &agentpod.Launcher{Client: cs, Options: agentpod.Options{Image: "tether.local/tether:scenario", ControlPort: control}, Logger: log}
		launch := func(lctx context.Context, r *record.Record, token string) (func(), error) {
			kill, err := pods.Launch(lctx, r, token)
			if err != nil {
				return nil, err
			}
			imp := rest.CopyConfig(cfg)
			imp.Impersonate = rest.ImpersonationConfig{
				UserName: "system:serviceaccount:" + ns + ":" + r.Agent,
				Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			}
			as, err := kubernetes.NewForConfig(imp)
			if err != nil {
				kill()
				return nil, err
			}
			actx, cancel := context.WithCancel(context.Background())
			go func() {
				agentDone <- trafficagent.Run(actx, trafficagent.Options{
					Client: as, Record: *r, Token: token, ListenHost: "127.0.0.1",
					ControlAddr: fmt.Sprintf("127.0.0.1:%d", control), Logger: log.With("side", "agent"),
				})
			}()
			return func() { cancel(); kill() }, nil
		}
		dials := 0
		dial := func(dctx context.Context, pod *corev1.Pod) (net.Conn, error) {
			dials++
			Expect(pod.Name).To(Equal(record.AgentName(svcName)))
			var d net.Dialer
			return d.DialContext(dctx, "tcp", fmt.Sprintf("127.0.0.1:%d", control))
		}
		i, err := intercept.Start(ctx, intercept.Options{Client: cs, Launch: launch, DialAgent: dial, AgentTimeout: time.Minute, Logger: log.With("side", "workbench")},
			intercept.Spec{Cluster: "hub", Namespace: ns, Service: svcName, Port: 80, To: localAddr})
		Expect(err).NotTo(HaveOccurred())
		Expect(dials).To(Equal(1), "one session per intercept")

		By("a connection to the agent's listener reaches the local process")
		get := func() (string, error) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", target))
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
		Eventually(get).WithTimeout(5 * time.Second).Should(Equal("local"))
		list, err := intercept.List(ctx, cs)
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(ContainElement(HaveField("Record.Service", svcName)))

		By("stop: the Service as it was, the agent gone, everything it had collected")
		Expect(i.Stop(ctx)).To(Succeed())
		Expect(i.Restored()).To(BeTrue())
		svc, err := cs.CoreV1().Services(ns).Get(ctx, svcName, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec).To(Equal(orig.Spec))
		Expect(svc.Annotations).To(Equal(orig.Annotations))
		Eventually(agentDone).WithTimeout(10*time.Second).Should(Receive(BeNil()), "the agent ends when its last intercept goes")
		Eventually(func(g Gomega) {
			name := record.AgentName(svcName)
			for what, get := range map[string]func() error{
				"pod":    func() error { _, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); return err },
				"secret": func() error { _, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); return err },
				"lease":  func() error { _, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{}); return err },
				"service account": func() error {
					_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
					return err
				},
				"role":         func() error { _, err := cs.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{}); return err },
				"role binding": func() error { _, err := cs.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{}); return err },
			} {
				err := get()
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s: %v", what, err)
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("leaves nothing behind after `tether intercept uninstall`, RBAC objects included", func(ctx SpecContext) {
		By("installing the agent's objects again, taken over, as a live intercept has them")
		dur := int32(record.DefaultLeaseSeconds)
		_, err := cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: rec.Agent, Namespace: ns, Labels: record.AgentLabels("web"), Annotations: map[string]string{record.AnnotationAgentID: rec.AgentID}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &rec.Holder, LeaseDurationSeconds: &dur},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() error {
			// The collector may still be removing the previous set.
			_, err := (&agentpod.Launcher{Client: cs, Options: opts}).Launch(ctx, rec, "tok-2")
			return err
		}).WithTimeout(30 * time.Second).Should(Succeed())
		svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = record.TakeOver(ctx, cs, svc, &record.Takeover{Agent: rec.Agent, AgentID: rec.AgentID, OriginalSelector: rec.OriginalSelector, AgentLabels: rec.AgentLabels, AgentPod: rec.AgentPod})
		Expect(err).NotTo(HaveOccurred())

		uninstall(ctx)
		Eventually(func(g Gomega) {
			svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "web"}))
			g.Expect(svc.Annotations).NotTo(HaveKey(record.Annotation))
			expectNoTrafficAgent(g, ctx, cs, ns)
			_, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "service account: %v", err)
			_, err = cs.RbacV1().Roles(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "role: %v", err)
			_, err = cs.RbacV1().RoleBindings(ns).Get(ctx, rec.Agent, metav1.GetOptions{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "role binding: %v", err)
		}).WithTimeout(30 * time.Second).Should(Succeed())
	}, SpecTimeout(time.Minute))
})
