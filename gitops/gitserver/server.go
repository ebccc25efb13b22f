package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// DefaultBranch is the branch HEAD points at in repositories this server
// creates.
const DefaultBranch = "main"

// ErrInvalidName is returned for repository names that could escape the root
// folder or that Git hosting conventions would not accept.
var ErrInvalidName = errors.New("gitserver: invalid repository name")

// Options configures a Server. The zero value is usable.
type Options struct {
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger
	// OnPush is called once per updated ref after a push was accepted and
	// the refs were written. It runs on the request's goroutine, in ref
	// order, before the client gets its answer (so it has run by the time a
	// client's push returns): keep it short or hand the event off.
	OnPush func(PushEvent)
	// Webhooks are URLs that receive each PushEvent as a JSON POST. Delivery
	// is asynchronous and retried; failures are logged and never affect the
	// push.
	Webhooks []string
	// WebhookClient sends webhook requests; when nil, a client with a 5s
	// timeout that opens a connection per delivery.
	WebhookClient *http.Client
	// AutoCreate creates a missing repository when a client starts a push to
	// it, so scenarios can push without provisioning first.
	AutoCreate bool
}

// Server hosts the bare repositories below one root folder.
type Server struct {
	root   string
	opts   Options
	log    *slog.Logger
	git    transport.Transport
	client *http.Client

	// mu guards locks, closed and the Add side of wg.
	mu     sync.Mutex
	locks  map[string]*sync.Mutex
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}
}

// New returns a Server for the repositories in root, creating root if needed.
func New(root string, opts Options) (*Server, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("gitserver: resolve root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("gitserver: create root %q: %w", abs, err)
	}
	s := &Server{
		root:   abs,
		opts:   opts,
		log:    opts.Logger,
		client: opts.WebhookClient,
		locks:  map[string]*sync.Mutex{},
		stop:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.client == nil {
		// Pushes are rare, and an idle connection kept behind kube-proxy
		// stays with the pod it reached first: a fresh connection per
		// delivery follows the webhook's Service wherever it leads now
		// (an intercept of the principal, a new pod).
		s.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment}}
	}
	s.git = server.NewServer(loader{s})
	return s, nil
}

// Root returns the absolute folder holding the repositories.
func (s *Server) Root() string { return s.root }

// CreateRepo creates the bare repository name (with or without ".git") with
// HEAD pointing at refs/heads/main. It is a no-op when the repository exists.
func (s *Server) CreateRepo(name string) error {
	name, err := CleanName(name)
	if err != nil {
		return err
	}
	lock := s.repoLock(name)
	lock.Lock()
	defer lock.Unlock()
	dir := s.repoDir(name)
	if isRepo(dir) {
		return nil
	}
	_, err = git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(DefaultBranch)},
	})
	if err != nil {
		return fmt.Errorf("gitserver: create %q: %w", name, err)
	}
	s.log.Info("repository created", "repo", name, "path", dir)
	return nil
}

// Repos lists the repository names (without ".git"), sorted.
func (s *Server) Repos() ([]string, error) {
	var names []string
	err := filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || path == s.root || !strings.HasSuffix(d.Name(), ".git") {
			return nil
		}
		if isRepo(path) {
			rel, err := filepath.Rel(s.root, path)
			if err != nil {
				return err
			}
			names = append(names, strings.TrimSuffix(filepath.ToSlash(rel), ".git"))
		}
		return filepath.SkipDir
	})
	sort.Strings(names)
	return names, err
}

// ListenAndServe listens on addr ("127.0.0.1:0" picks a free port) and serves
// Handler in the background until ctx ends or Close is called. It returns the
// address actually bound, so callers can build clone URLs from it.
func (s *Server) ListenAndServe(ctx context.Context, addr string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("gitserver: server closed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gitserver: listen on %s: %w", addr, err)
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("git http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
		case <-s.stop:
		}
		// Let in-flight pushes finish so a ref update is never cut off
		// halfway, but do not hang shutdown on a stuck client.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			s.log.Warn("git http server shutdown incomplete", "addr", ln.Addr().String(), "err", err)
			_ = hs.Close()
		}
	}()
	s.log.Info("git http server listening", "addr", ln.Addr().String(), "root", s.root)
	return ln.Addr(), nil
}

// Close stops the listeners started by ListenAndServe and waits for them and
// for pending webhook deliveries to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// URL returns the clone URL of repository name on a server reachable at base
// (for example "http://127.0.0.1:3000" or an in-cluster address).
func URL(base, name string) string {
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimSuffix(strings.Trim(name, "/"), ".git") + ".git"
}

// CleanName validates a repository name and returns it without the ".git"
// suffix. Names are one or two path segments ("app" or "team/app") of
// letters, digits, '.', '_' and '-', not starting with '.', so they can never
// climb out of the root folder or hit Git's own files.
func CleanName(raw string) (string, error) {
	name := strings.TrimSuffix(strings.Trim(raw, "/"), ".git")
	segments := strings.Split(name, "/")
	if name == "" || len(segments) > 2 || len(name) > 200 {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, raw)
	}
	for _, seg := range segments {
		if seg == "" || seg[0] == '.' || seg[0] == '-' || strings.HasSuffix(seg, ".git") {
			return "", fmt.Errorf("%w: %q", ErrInvalidName, raw)
		}
		for _, r := range seg {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
			if !ok {
				return "", fmt.Errorf("%w: %q", ErrInvalidName, raw)
			}
		}
	}
	if strings.Contains(name, "..") {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, raw)
	}
	return name, nil
}

func (s *Server) repoDir(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name)+".git")
}

// repoLock serialises ref updates per repository: go-git's receive-pack does
// not compare old values itself, so the check and the write must not
// interleave with another push.
func (s *Server) repoLock(name string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[name]
	if !ok {
		l = &sync.Mutex{}
		s.locks[name] = l
	}
	return l
}

// open returns a storer for an existing, already validated repository name.
func (s *Server) open(name string) (*filesystem.Storage, error) {
	dir := s.repoDir(name)
	if !isRepo(dir) {
		return nil, transport.ErrRepositoryNotFound
	}
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault()), nil
}

func isRepo(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "HEAD"))
	if err != nil || fi.IsDir() {
		return false
	}
	fi, err = os.Stat(filepath.Join(dir, "objects"))
	return err == nil && fi.IsDir()
}

// loader hands go-git's transport/server the repositories of this Server;
// the endpoint path is always a name that CleanName accepted.
type loader struct{ s *Server }

func (l loader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	return l.s.open(ep.Path)
}
