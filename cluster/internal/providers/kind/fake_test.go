package kind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/tether-dev/tether/cluster/internal/providers/kind/nodeimage"
	"github.com/tether-dev/tether/cluster/progress"
)

// fakeLib is an in-memory kind.
type fakeLib struct {
	mu         sync.Mutex
	clusters   []string
	nodes      map[string][]nodes.Node
	kubeconfig map[string]string // "name/internal" -> kubeconfig
	createErr  error
	deleteErr  error
	creates    []fakeCreate
	deletes    [][2]string
	// unfinished clusters have node containers but no kubeconfig yet, as
	// a create interrupted before kubeadm ran leaves them.
	unfinished map[string]bool
	// onCreate, when set, runs at the start of Create.
	onCreate func(name string, req createRequest)
}

type fakeCreate struct {
	name string
	req  createRequest
}

func newFakeLib() *fakeLib {
	return &fakeLib{nodes: map[string][]nodes.Node{}, kubeconfig: map[string]string{}, unfinished: map[string]bool{}}
}

func (f *fakeLib) Create(name string, req createRequest) error {
	if f.onCreate != nil {
		f.onCreate(name, req)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, fakeCreate{name, req})
	delete(f.unfinished, name)
	f.clusters = append(f.clusters, name) // a failed create leaves a half-made cluster
	return f.createErr
}

func (f *fakeLib) Delete(name, kubeconfigPath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, [2]string{name, kubeconfigPath})
	if f.deleteErr != nil {
		return f.deleteErr
	}
	f.clusters = slices.DeleteFunc(f.clusters, func(s string) bool { return s == name })
	return nil
}

func (f *fakeLib) KubeConfig(name string, internal bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kc, ok := f.kubeconfig[fmt.Sprintf("%s/%t", name, internal)]
	if !ok || f.unfinished[name] {
		return "", fmt.Errorf("no kubeconfig for %s", name)
	}
	return kc, nil
}

func (f *fakeLib) createCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.creates)
}

func (f *fakeLib) ListInternalNodes(name string) ([]nodes.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[name], nil
}

func (f *fakeLib) List() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.clusters), nil
}

// fakeNode is a kind node container that records the commands run in it.
type fakeNode struct {
	name, role, ipv4 string
	// failCtr makes `ctr` fail, as a node with a full disk would.
	failCtr bool

	mu   sync.Mutex
	cmds []*fakeCmd
}

var _ nodes.Node = (*fakeNode)(nil)

func (n *fakeNode) String() string               { return n.name }
func (n *fakeNode) Role() (string, error)        { return n.role, nil }
func (n *fakeNode) IP() (string, string, error)  { return n.ipv4, "", nil }
func (n *fakeNode) SerialLogs(w io.Writer) error { return nil }
func (n *fakeNode) Command(name string, args ...string) kindexec.Cmd {
	c := &fakeCmd{node: n, args: append([]string{name}, args...)}
	n.mu.Lock()
	n.cmds = append(n.cmds, c)
	n.mu.Unlock()
	return c
}

func (n *fakeNode) CommandContext(_ context.Context, name string, args ...string) kindexec.Cmd {
	return n.Command(name, args...)
}

func (n *fakeNode) commands() []*fakeCmd {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.cmds)
}

// containerdConfig is what `containerd config dump` prints in a kind node.
const containerdConfig = `version = 3
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
`

// fakeCmd records its arguments and what was fed to its stdin.
type fakeCmd struct {
	node   *fakeNode
	args   []string
	stdin  io.Reader
	stdout io.Writer
	ran    bool
	input  []byte
}

func (c *fakeCmd) Run() error {
	c.ran = true
	if c.stdin != nil {
		b, err := io.ReadAll(c.stdin)
		if err != nil {
			return err
		}
		c.input = b
	}
	switch {
	case len(c.args) >= 3 && c.args[0] == "containerd" && c.args[1] == "config" && c.args[2] == "dump":
		if c.stdout != nil {
			_, _ = io.WriteString(c.stdout, containerdConfig)
		}
	case c.args[0] == "ctr" && c.node.failCtr:
		return &kindexec.RunError{Command: c.args, Inner: errors.New("exit status 1")}
	}
	return nil
}

func (c *fakeCmd) SetEnv(...string) kindexec.Cmd      { return c }
func (c *fakeCmd) SetStdin(r io.Reader) kindexec.Cmd  { c.stdin = r; return c }
func (c *fakeCmd) SetStdout(w io.Writer) kindexec.Cmd { c.stdout = w; return c }
func (c *fakeCmd) SetStderr(io.Writer) kindexec.Cmd   { return c }
func (c *fakeCmd) String() string                     { return strings.Join(c.args, " ") }
func (c *fakeCmd) hasArgs(want ...string) bool        { return containsAll(c.args, want) }

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// fakeRunner answers commands by their joined arguments.
type fakeRunner struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	calls   []string
	// deadlines records whether each call's context had a deadline, and
	// budgets how long it had left.
	deadlines []bool
	budgets   []time.Duration
}

// callsWith returns the calls starting with prefix.
func (r *fakeRunner) callsWith(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

type fakeAnswer struct {
	stdout, stderr string
	err            error
}

func (r *fakeRunner) run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := strings.Join(append([]string{name}, args...), " ")
	r.calls = append(r.calls, cmd)
	dl, has := ctx.Deadline()
	r.deadlines = append(r.deadlines, has)
	if has {
		r.budgets = append(r.budgets, time.Until(dl))
	} else {
		r.budgets = append(r.budgets, 0)
	}
	a, ok := r.answers[cmd]
	if !ok {
		return nil, []byte("unexpected command"), fmt.Errorf("fake runner: unexpected %q", cmd)
	}
	return []byte(a.stdout), []byte(a.stderr), a.err
}

// fakeProgress records steps.
type fakeProgress struct {
	mu    sync.Mutex
	steps []*fakeStep
}

type fakeStep struct {
	title   string
	done    bool
	err     error
	updates []string
}

func (p *fakeProgress) Start(title string) progress.Step {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &fakeStep{title: title}
	p.steps = append(p.steps, s)
	return s
}

func (s *fakeStep) Update(d string) { s.updates = append(s.updates, d) }
func (s *fakeStep) Done(err error)  { s.done, s.err = true, err }

// step returns the step whose title starts with prefix, or nil.
func (p *fakeProgress) step(prefix string) *fakeStep {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.steps {
		if strings.HasPrefix(s.title, prefix) {
			return s
		}
	}
	return nil
}

func (p *fakeProgress) titles() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range p.steps {
		out = append(out, s.title)
	}
	return out
}

// fakeImages is tether's offline node image.
type fakeImages struct {
	present  bool
	canBuild error
	buildErr error
	ensures  atomic.Int32
	opts     nodeimage.Options
}

const fakeTetherImage = nodeimage.Repository + ":v1.37.2-0123abcd"

func (i *fakeImages) Ref() string                  { return fakeTetherImage }
func (i *fakeImages) Present(context.Context) bool { return i.present }
func (i *fakeImages) CanBuild() error              { return i.canBuild }
func (i *fakeImages) Ensure(ctx context.Context, opts nodeimage.Options) (string, error) {
	i.ensures.Add(1)
	i.opts = opts
	// Long enough for parallel creates to pile up behind the build.
	time.Sleep(20 * time.Millisecond)
	if i.buildErr != nil {
		return "", i.buildErr
	}
	return fakeTetherImage, nil
}
