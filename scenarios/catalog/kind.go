package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/deploy"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/scenarios/harness"
)

// On kind the GitOps components are Deployments (gitops/deploy): the
// principal and the Git server on the hub, an agent on every spoke. What
// the embedded scenarios do to processes, the kind ones do to pods.

// kindComponent maps a component's embedded name (git, principal,
// agent-<spoke>) to the cluster and Deployment that run it on kind.
func kindComponent(name string) (clusterName, deployment string) {
	switch {
	case name == "principal":
		return Hub, deploy.PrincipalName
	case name == "git":
		return Hub, deploy.GitName
	case strings.HasPrefix(name, "agent-"):
		return strings.TrimPrefix(name, "agent-"), deploy.AgentName
	}
	return Hub, name
}

// kindLogCommand is how a user reads a component's log on kind.
func kindLogCommand(name string) string {
	c, d := kindComponent(name)
	return "`kubectl --context tether-" + c + " -n " + deploy.DefaultNamespace + " logs deploy/" + d + "`"
}

// kindNodeSuffix is what kind appends to a cluster's name to name its
// control-plane node container; tether's kind clusters have that one node.
const kindNodeSuffix = "-control-plane"

// kindClusterLabel is the label kind puts on every node container of a
// cluster, with the kind cluster's name.
const kindClusterLabel = "io.x-k8s.kind.cluster"

// dockerFunc runs the docker CLI and returns its stdout and stderr; tests
// stand in for it.
type dockerFunc func(ctx context.Context, args ...string) (stdout, stderr []byte, err error)

func kindDocker(ctx context.Context, args ...string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// dockerErr describes a failed docker command with what it printed.
func dockerErr(args []string, stderr []byte, err error) error {
	why := strings.TrimSpace(string(stderr))
	if why == "" {
		why = err.Error()
	}
	return fmt.Errorf("`docker %s`: %s", strings.Join(args, " "), why)
}

// kindNodeName is the node container of a workbench cluster on kind: the
// host of its InternalEndpoint, which the kind provider records as the
// control-plane container's name (tether-<id>-<cluster>-control-plane).
func kindNodeName(e *Env, clusterName string) (string, error) {
	cw, err := cluster.New(cluster.Options{StateDir: e.wb.StateDir, CacheDir: e.wb.CacheDir, Kubeconfig: e.wb.Kubeconfig})
	if err != nil {
		return "", err
	}
	clusters, err := cw.Clusters()
	if err != nil {
		return "", err
	}
	for _, c := range clusters {
		if c.Name != clusterName {
			continue
		}
		return kindNodeOf(c)
	}
	return "", fmt.Errorf("no cluster %q in the workbench in %s (`tether status` lists them)", clusterName, e.wb.StateDir)
}

// kindNodeOf reads the node container's name from a kind cluster's
// InternalEndpoint (https://<container>:6443).
func kindNodeOf(c cluster.Cluster) (string, error) {
	u, err := url.Parse(c.InternalEndpoint)
	host := ""
	if err == nil {
		host = u.Hostname()
	}
	if c.Provider != cluster.ProviderKind || !strings.HasPrefix(host, "tether-") || !strings.HasSuffix(host, "-"+c.Name+kindNodeSuffix) {
		return "", fmt.Errorf("cluster %q (provider %s) has internal endpoint %q, want https://tether-<id>-%s%s:<port> as the kind provider records it; `tether status` shows the clusters",
			c.Name, c.Provider, c.InternalEndpoint, c.Name, kindNodeSuffix)
	}
	return host, nil
}

// kindNodeInfo is what the scenarios need of a node container.
type kindNodeInfo struct {
	Name string
	// Networks maps each Docker network the node is on to its IPv4
	// address there.
	Networks map[string]string
}

// inspectKindNode reads a node container and checks that it is a kind
// cluster's node (its io.x-k8s.kind.cluster label names the cluster its
// name says) and runs: the scenarios send commands to no other container.
func inspectKindNode(ctx context.Context, docker dockerFunc, name string) (kindNodeInfo, error) {
	args := []string{"inspect", "--type", "container", name}
	out, errOut, err := docker(ctx, args...)
	if err != nil {
		return kindNodeInfo{}, dockerErr(args, errOut, err)
	}
	var cs []struct {
		Name  string
		State struct {
			Running bool
		}
		Config struct {
			Labels map[string]string
		}
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress string
			}
		}
	}
	if err := json.Unmarshal(out, &cs); err != nil || len(cs) != 1 {
		return kindNodeInfo{}, fmt.Errorf("`docker %s`: want one container as JSON, got %q (%v)", strings.Join(args, " "), firstLine(string(out)), err)
	}
	c := cs[0]
	want := strings.TrimSuffix(name, kindNodeSuffix)
	if got := c.Config.Labels[kindClusterLabel]; got != want || !strings.HasSuffix(name, kindNodeSuffix) {
		return kindNodeInfo{}, fmt.Errorf("container %s has label %s=%q, want %q: not the workbench's kind node, so the scenario leaves it alone (`docker inspect %s`)",
			name, kindClusterLabel, got, want, name)
	}
	if !c.State.Running {
		return kindNodeInfo{}, fmt.Errorf("kind node %s is not running (`docker ps -a --filter name=%s`; `tether up` starts it again)", name, name)
	}
	info := kindNodeInfo{Name: name, Networks: map[string]string{}}
	for n, s := range c.NetworkSettings.Networks {
		if ip := net.ParseIP(s.IPAddress); ip != nil && ip.To4() != nil {
			info.Networks[n] = s.IPAddress
		}
	}
	if len(info.Networks) == 0 {
		return kindNodeInfo{}, fmt.Errorf("kind node %s has no IPv4 address on any Docker network (`docker inspect %s`)", name, name)
	}
	return info, nil
}

// addressFor is the IPv4 address of node on a Docker network that from
// is on too (the kind network), or, with from nil, on the kind network
// or the first one by name.
func (node kindNodeInfo) addressFor(from *kindNodeInfo) (string, error) {
	names := make([]string, 0, len(node.Networks))
	for n := range node.Networks {
		names = append(names, n)
	}
	slices.Sort(names)
	if from == nil {
		if ip, ok := node.Networks["kind"]; ok {
			return ip, nil
		}
		return node.Networks[names[0]], nil
	}
	for _, n := range names {
		if _, ok := from.Networks[n]; ok {
			return node.Networks[n], nil
		}
	}
	return "", fmt.Errorf("kind nodes %s (networks %v) and %s (networks %v) share no Docker network (`docker network inspect kind`)",
		node.Name, names, from.Name, slices.Sorted(maps.Keys(from.Networks)))
}

// kindPrincipal is the address agents dial on kind (fleet.json's
// principal: the hub node's name and the principal's NodePort), split.
func kindPrincipal(e *Env) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(e.Fleet().Principal)
	if err == nil {
		port, err = strconv.Atoi(p)
	}
	if err != nil || h == "" || port <= 0 {
		return "", 0, fmt.Errorf("fleet record %s says agents dial the principal at %q, want <hub node>:<NodePort> (`tether up` rewrites it)",
			filepath.Join(e.wb.StateDir, "fleet", "fleet.json"), e.Fleet().Principal)
	}
	return h, port, nil
}

// kindPrincipalFromHost is an address of the principal this machine can
// dial on kind: its NodePort on the hub node's address on the kind
// network. A Linux host routes to container addresses; Docker Desktop
// (macOS, Windows) does not, which the check below says.
func kindPrincipalFromHost(ctx context.Context, e *Env) (string, error) {
	_, port, err := kindPrincipal(e)
	if err != nil {
		return "", err
	}
	hubNode, err := kindNodeName(e, Hub)
	if err != nil {
		return "", err
	}
	hub, err := inspectKindNode(ctx, kindDocker, hubNode)
	if err != nil {
		return "", err
	}
	ip, err := hub.addressFor(nil)
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("the principal's NodePort %s on the hub node %s does not answer from this machine (%v): Docker Desktop (macOS, Windows) does not route container addresses to the host; run this scenario on a Linux host or on the embedded provider (`kubectl --context tether-hub -n %s get svc %s`)",
			addr, hubNode, err, deploy.DefaultNamespace, deploy.PrincipalName)
	}
	c.Close()
	e.Logf("the principal answers this machine at %s (NodePort %d on the hub node %s)", addr, port, hubNode)
	return addr, nil
}

// link is the connection between one spoke's agent and the principal as
// a scenario cuts it: a TCP proxy the agent dials (embedded), or rules in
// the spoke node's firewall (kind). The steps cut and restore it the same
// way on both.
type link interface {
	// Cut drops the agent's connection and refuses new ones.
	Cut(ctx context.Context) error
	// Restore lets the agent connect again.
	Restore(ctx context.Context) error
	// Close undoes the link for good (a cleanup).
	Close(ctx context.Context) error
}

// proxyLink is the embedded link: the agent dials a harness.Proxy.
type proxyLink struct{ px *harness.Proxy }

func (l proxyLink) Cut(context.Context) error     { l.px.Cut(); return nil }
func (l proxyLink) Restore(context.Context) error { l.px.Restore(); return nil }
func (l proxyLink) Close(context.Context) error   { return l.px.Close() }

// kindCut is the kind link: rules at the top of the FORWARD chain of the
// spoke's node container, which the agent pod's traffic crosses, that
// reset every TCP segment between the spoke's pods and the principal's
// address (the hub node's address and the principal's NodePort), both
// ways, so both ends see the connection die.
type kindCut struct {
	docker dockerFunc
	node   string
	rules  [][]string
	// inserted says which rules are in the chain now.
	inserted []bool
	// cutSeen waits until the cut shows: the hub sees the agent gone.
	// held says whether the cut still holds (before Restore).
	cutSeen func(ctx context.Context) error
	held    func(ctx context.Context) error
	mu      sync.Mutex
}

// kindCutRules are the rules that cut pods of a node off ip:port.
func kindCutRules(ip string, port int, comment string) [][]string {
	p := strconv.Itoa(port)
	tail := []string{"-m", "comment", "--comment", comment, "-j", "REJECT", "--reject-with", "tcp-reset"}
	return [][]string{
		append([]string{"-p", "tcp", "-d", ip, "--dport", p}, tail...),
		append([]string{"-p", "tcp", "-s", ip, "--sport", p}, tail...),
	}
}

func (c *kindCut) iptables(ctx context.Context, args ...string) error {
	full := append([]string{"exec", c.node, "iptables", "-w"}, args...)
	_, errOut, err := c.docker(ctx, full...)
	if err != nil {
		return dockerErr(full, errOut, err)
	}
	return nil
}

func (c *kindCut) where() string {
	return "`docker exec " + c.node + " iptables -S FORWARD`"
}

// Cut inserts the rules (those not in yet) and waits until the hub sees
// the agent cut off: an idle stream only dies when a packet crosses the
// rules (keepalives every 5 s), and Cut promises a dropped connection.
func (c *kindCut) Cut(ctx context.Context) error {
	c.mu.Lock()
	for i, r := range c.rules {
		if c.inserted[i] {
			continue
		}
		if err := c.iptables(ctx, append([]string{"-I", "FORWARD", "1"}, r...)...); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("cut the agent off in kind node %s: %w", c.node, err)
		}
		c.inserted[i] = true
	}
	c.mu.Unlock()
	if c.cutSeen == nil {
		return nil
	}
	return c.cutSeen(ctx)
}

// Restore checks that the cut held, then removes the rules.
func (c *kindCut) Restore(ctx context.Context) error {
	var heldErr error
	if c.held != nil {
		heldErr = c.held(ctx)
	}
	if err := c.remove(ctx); err != nil {
		return err
	}
	return heldErr
}

// Close removes whatever rules are still in.
func (c *kindCut) Close(ctx context.Context) error { return c.remove(ctx) }

func (c *kindCut) remove(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for i := len(c.rules) - 1; i >= 0; i-- {
		if !c.inserted[i] {
			continue
		}
		full := append([]string{"exec", c.node, "iptables", "-w", "-D", "FORWARD"}, c.rules[i]...)
		_, errOut, err := c.docker(ctx, full...)
		if err != nil && !ruleGone(errOut) {
			errs = append(errs, dockerErr(full, errOut, err))
			continue
		}
		c.inserted[i] = false
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove the cut's rules from kind node %s (see %s): %w", c.node, c.where(), errors.Join(errs...))
	}
	return nil
}

// ruleGone says whether iptables -D failed because the rule is not there
// (someone removed it, or the node restarted): nothing left to remove.
func ruleGone(stderr []byte) bool {
	s := string(stderr)
	return strings.Contains(s, "does a matching rule exist") || strings.Contains(s, "Bad rule") || strings.Contains(s, "No chain/target/match by that name")
}

// kindPartition prepares the cut between spoke's agent and the principal
// on kind, uncut: it finds the spoke's node and the principal's address
// as the agent dials it, checks that the node's iptables answers, and
// registers removing the rules.
func kindPartition(ctx context.Context, e *Env, spoke string) (*kindCut, error) {
	host, port, err := kindPrincipal(e)
	if err != nil {
		return nil, err
	}
	spokeNode, err := kindNodeName(e, spoke)
	if err != nil {
		return nil, err
	}
	hubNode, err := kindNodeName(e, Hub)
	if err != nil {
		return nil, err
	}
	sn, err := inspectKindNode(ctx, kindDocker, spokeNode)
	if err != nil {
		return nil, err
	}
	ip := host
	if net.ParseIP(host) == nil {
		if host != hubNode {
			return nil, fmt.Errorf("agents dial the principal at %s (fleet.json), want the hub node %s on its NodePort; `tether up` rewrites the record", e.Fleet().Principal, hubNode)
		}
		hn, err := inspectKindNode(ctx, kindDocker, hubNode)
		if err != nil {
			return nil, err
		}
		if ip, err = hn.addressFor(&sn); err != nil {
			return nil, err
		}
	}
	c := &kindCut{
		docker: kindDocker,
		node:   spokeNode,
		rules:  kindCutRules(ip, port, "tether scenario "+e.name+": agent of "+spoke+" cut off the principal"),
	}
	c.inserted = make([]bool, len(c.rules))
	if err := c.iptables(ctx, "-S", "FORWARD"); err != nil {
		return nil, fmt.Errorf("the firewall of kind node %s does not answer, so the scenario cannot cut it: %w", spokeNode, err)
	}
	c.cutSeen = func(ctx context.Context) error {
		return eventually(ctx, 30*time.Second, "the hub sees "+spoke+"'s agent cut off", func(ctx context.Context) error {
			connected, err := hubSaysConnected(ctx, e, spoke)
			if err != nil {
				return err
			}
			if connected {
				return fmt.Errorf("hub Agent %s/%s still says connected although the rules are in (%s; principal log %s, agent log %s)",
					cluster.SystemNamespace, spoke, c.where(), e.ComponentLog("principal"), e.ComponentLog("agent-"+spoke))
			}
			return nil
		})
	}
	c.held = func(ctx context.Context) error {
		connected, err := hubSaysConnected(ctx, e, spoke)
		if err != nil {
			return err
		}
		if connected {
			return fmt.Errorf("the cut did not hold: hub Agent %s/%s says connected while its traffic to %s:%d was rejected (%s; agent log %s)",
				cluster.SystemNamespace, spoke, ip, port, c.where(), e.ComponentLog("agent-"+spoke))
		}
		return nil
	}
	e.Cleanup("remove the cut's firewall rules from kind node "+spokeNode, c.Close)
	e.Logf("agent-%s reaches the principal at %s = %s:%d through the FORWARD chain of kind node %s; the cut rejects it there", spoke, e.Fleet().Principal, ip, port, spokeNode)

	// On embedded the agent is replaced, and the new one fetched Git when
	// it started. The agent pod stays here: have it fetch now, so its next
	// Git poll (minutes away, see `tether agent --poll`) cannot fall
	// inside the cut and carry a commit the cut should hold back.
	res := e.Tether(ctx, "app", "refresh", fleet.SampleApp, "-n", cluster.SystemNamespace, "--context", cluster.ContextName(spoke))
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("tether app refresh %s -n %s --context %s: exit %d: %s (agent log %s)",
			fleet.SampleApp, cluster.SystemNamespace, cluster.ContextName(spoke), res.ExitCode, lastLines(res.Stderr, 3), e.ComponentLog("agent-"+spoke))
	}
	return c, nil
}

// hubSaysConnected reads status.connected of spoke's Agent on the hub.
func hubSaysConnected(ctx context.Context, e *Env, spoke string) (bool, error) {
	dyn, err := e.Dynamic(Hub)
	if err != nil {
		return false, err
	}
	u, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).Get(ctx, spoke, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("hub Agent %s/%s: %w", cluster.SystemNamespace, spoke, err)
	}
	connected, _, _ := unstructured.NestedBool(u.Object, "status", "connected")
	return connected, nil
}

// kindDeployment reads a component's Deployment and the selector of its
// pods.
func kindDeployment(ctx context.Context, e *Env, clusterName, name string) (*kubernetes.Clientset, *appsv1.Deployment, string, error) {
	cs, err := e.Kube(clusterName)
	if err != nil {
		return nil, nil, "", err
	}
	d, err := cs.AppsV1().Deployments(deploy.DefaultNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, "", fmt.Errorf("Deployment %s/%s on %s: %w (`kubectl --context tether-%s -n %s get deploy`)", deploy.DefaultNamespace, name, clusterName, err, clusterName, deploy.DefaultNamespace)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, nil, "", fmt.Errorf("Deployment %s/%s on %s: selector: %w", deploy.DefaultNamespace, name, clusterName, err)
	}
	return cs, d, sel.String(), nil
}

// kindPodsCmd is how a user lists a Deployment's pods.
func kindPodsCmd(clusterName, selector string) string {
	return "`kubectl --context tether-" + clusterName + " -n " + deploy.DefaultNamespace + " get pods -l " + selector + "`"
}

// describePods says what each pod is doing, for error messages.
func describePods(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "no pods"
	}
	var out []string
	for _, p := range pods {
		s := p.Name + " " + string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			s += " (terminating)"
		}
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil {
				s += " (" + c.Name + ": " + w.Reason + ")"
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// kindKillPods deletes a component's pods with grace period 0 (the
// kubelet kills them at once, as SIGKILL would) and waits until its
// Deployment runs a new one.
func kindKillPods(ctx context.Context, e *Env, component string) error {
	clusterName, name := kindComponent(component)
	cs, _, sel, err := kindDeployment(ctx, e, clusterName, name)
	if err != nil {
		return err
	}
	pods := cs.CoreV1().Pods(deploy.DefaultNamespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list the pods of %s on %s: %w", name, clusterName, err)
	}
	old := map[types.UID]bool{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		old[p.UID] = true
		if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s on %s: %w", deploy.DefaultNamespace, p.Name, clusterName, err)
		}
		e.Logf("deleted pod %s/%s on %s with grace period 0 (was %s)", deploy.DefaultNamespace, p.Name, clusterName, p.Status.Phase)
	}
	if len(old) == 0 {
		return fmt.Errorf("no pod of Deployment %s on %s to delete; seen: %s (%s)", name, clusterName, describePods(list.Items), kindPodsCmd(clusterName, sel))
	}
	return eventually(ctx, 2*time.Minute, "a new "+name+" pod running on "+clusterName, func(ctx context.Context) error {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		for _, p := range list.Items {
			if !old[p.UID] && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				e.Logf("%s runs again as pod %s", name, p.Name)
				return nil
			}
		}
		return fmt.Errorf("Deployment %s on %s has %s, want a new pod Running (%s; `kubectl --context tether-%s -n %s describe deploy %s`)",
			name, clusterName, describePods(list.Items), kindPodsCmd(clusterName, sel), clusterName, deploy.DefaultNamespace, name)
	})
}

// kindStop scales a component's Deployment to 0 and waits until its pods
// are gone. It returns the replica count it had, and registers a cleanup
// that scales it back to that count (and waits until it is available),
// whatever happens in between.
func kindStop(ctx context.Context, e *Env, component string) (int32, error) {
	clusterName, name := kindComponent(component)
	cs, _, sel, err := kindDeployment(ctx, e, clusterName, name)
	if err != nil {
		return 0, err
	}
	deps := cs.AppsV1().Deployments(deploy.DefaultNamespace)
	sc, err := deps.GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("read the scale of Deployment %s on %s: %w", name, clusterName, err)
	}
	n := sc.Spec.Replicas
	if n < 1 {
		return 0, fmt.Errorf("Deployment %s on %s has %d replicas, want it running before the scenario stops it (`kubectl --context tether-%s -n %s get deploy %s`; `tether up` restores it)",
			name, clusterName, n, clusterName, deploy.DefaultNamespace, name)
	}
	e.Cleanup(fmt.Sprintf("scale Deployment %s on %s back to %d", name, clusterName, n), func(ctx context.Context) error {
		return kindStart(ctx, e, component, n)
	})
	if err := kindScale(ctx, e, component, 0); err != nil {
		return 0, err
	}
	e.Logf("scaled Deployment %s/%s on %s from %d to 0", deploy.DefaultNamespace, name, clusterName, n)
	return n, eventually(ctx, 90*time.Second, name+"'s pods gone from "+clusterName, func(ctx context.Context) error {
		list, err := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		if len(list.Items) > 0 {
			return fmt.Errorf("Deployment %s on %s is scaled to 0 but has %s (%s)", name, clusterName, describePods(list.Items), kindPodsCmd(clusterName, sel))
		}
		return nil
	})
}

// kindScale sets a component's Deployment's replica count.
func kindScale(ctx context.Context, e *Env, component string, n int32) error {
	clusterName, name := kindComponent(component)
	cs, err := e.Kube(clusterName)
	if err != nil {
		return err
	}
	deps := cs.AppsV1().Deployments(deploy.DefaultNamespace)
	sc, err := deps.GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read the scale of Deployment %s on %s: %w", name, clusterName, err)
	}
	if sc.Spec.Replicas == n {
		return nil
	}
	sc.Spec.Replicas = n
	if _, err := deps.UpdateScale(ctx, name, sc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("scale Deployment %s on %s to %d: %w", name, clusterName, n, err)
	}
	return nil
}

// kindStart scales a component's Deployment to n and waits until n of its
// pods are available.
func kindStart(ctx context.Context, e *Env, component string, n int32) error {
	if err := kindScale(ctx, e, component, n); err != nil {
		return err
	}
	clusterName, name := kindComponent(component)
	return eventually(ctx, 2*time.Minute, fmt.Sprintf("%s on %s available at %d replicas", name, clusterName, n), func(ctx context.Context) error {
		cs, d, sel, err := kindDeployment(ctx, e, clusterName, name)
		if err != nil {
			return err
		}
		s := d.Status
		if s.ObservedGeneration >= d.Generation && s.AvailableReplicas >= n && s.UpdatedReplicas >= n {
			return nil
		}
		list, _ := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		var pods []corev1.Pod
		if list != nil {
			pods = list.Items
		}
		return fmt.Errorf("Deployment %s on %s has %d of %d replicas available; pods: %s (%s; `kubectl --context tether-%s -n %s describe deploy %s`)",
			name, clusterName, s.AvailableReplicas, n, describePods(pods), kindPodsCmd(clusterName, sel), clusterName, deploy.DefaultNamespace, name)
	})
}

// logFromNow returns a reader of what a component (principal, git,
// agent-<spoke>) logs from now on: the rest of its log file on the
// embedded provider, its pods' log since now on kind.
func logFromNow(ctx context.Context, e *Env, component string) (func(context.Context) string, error) {
	if !e.Kind() {
		path := e.ComponentLog(component)
		from := len(readFile(path))
		return func(context.Context) string {
			if log := readFile(path); len(log) >= from {
				return log[from:]
			}
			return ""
		}, nil
	}
	clusterName, name := kindComponent(component)
	cs, _, sel, err := kindDeployment(ctx, e, clusterName, name)
	if err != nil {
		return nil, err
	}
	// The API has whole seconds: from the start of this one.
	since := metav1.NewTime(time.Now().Truncate(time.Second))
	return func(ctx context.Context) string {
		list, err := cs.CoreV1().Pods(deploy.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return ""
		}
		var b strings.Builder
		for _, p := range list.Items {
			raw, err := cs.CoreV1().Pods(deploy.DefaultNamespace).GetLogs(p.Name, &corev1.PodLogOptions{SinceTime: &since}).DoRaw(ctx)
			if err == nil {
				b.Write(raw)
			}
		}
		return b.String()
	}, nil
}

func ptrTo[T any](v T) *T { return &v }
