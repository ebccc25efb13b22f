package scenarios

import (
	"context"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/intercept/record"
)

// expectNoTrafficAgent fails g if anything an intercept installs is left
// in namespace ns ("" for every namespace): the agent's pod, Leases, token
// Secret and, on kind, its ServiceAccount, Role and RoleBinding. They all
// carry the traffic-agent component label, which is what uninstall uses.
func expectNoTrafficAgent(g Gomega, ctx context.Context, cs kubernetes.Interface, ns string) {
	sel := metav1.ListOptions{LabelSelector: record.ComponentSelector}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, sel)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pods.Items).To(BeEmpty(), "traffic-agent pods")
	leases, err := cs.CoordinationV1().Leases(ns).List(ctx, sel)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leases.Items).To(BeEmpty(), "intercept and agent leases")
	secrets, err := cs.CoreV1().Secrets(ns).List(ctx, sel)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(secrets.Items).To(BeEmpty(), "agent token secrets")
	sas, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, sel)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sas.Items).To(BeEmpty(), "agent service accounts")
	roles, err := cs.RbacV1().Roles(ns).List(ctx, sel)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(roles.Items).To(BeEmpty(), "agent roles")
	rbs, err := cs.RbacV1().RoleBindings(ns).List(ctx, sel)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rbs.Items).To(BeEmpty(), "agent role bindings")
}
