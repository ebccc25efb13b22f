package gitserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// recorder wraps the server handler to observe what went over the wire:
// the object count of every packfile served and the request encodings.
type recorder struct {
	next http.Handler

	mu        sync.Mutex
	packs     []uint32 // object counts of upload-pack packfiles, in order
	encodings []string // Content-Encoding of upload-pack requests
	rounds    int      // upload-pack POSTs
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
		rc.next.ServeHTTP(w, r)
		return
	}
	tw := &teeWriter{ResponseWriter: w}
	rc.next.ServeHTTP(tw, r)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.rounds++
	rc.encodings = append(rc.encodings, r.Header.Get("Content-Encoding"))
	if i := bytes.Index(tw.buf.Bytes(), []byte("PACK")); i >= 0 && tw.buf.Len() >= i+12 {
		rc.packs = append(rc.packs, binary.BigEndian.Uint32(tw.buf.Bytes()[i+8:i+12]))
	}
}

func (rc *recorder) snapshot() (packs []uint32, encodings []string, rounds int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]uint32(nil), rc.packs...), append([]string(nil), rc.encodings...), rc.rounds
}

type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	return t.ResponseWriter.Write(p)
}

func (t *teeWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type fixture struct {
	srv  *Server
	base string
	rec  *recorder
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: srv.Handler()}
	hs := httptest.NewServer(rec)
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
	})
	return &fixture{srv: srv, base: hs.URL, rec: rec}
}

func (f *fixture) url(name string) string { return URL(f.base, name) }

// testWriter sends logs to t.Log so they show up only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func signature() *object.Signature {
	return &object.Signature{Name: "Test", Email: "test@example.com", When: time.Now()}
}

// initLocal creates a non-bare go-git repository on main with origin at url.
func initLocal(t *testing.T, url string) (*git.Repository, string) {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		t.Fatal(err)
	}
	return repo, dir
}

// commitFile writes path=content in the worktree and commits it.
func commitFile(t *testing.T, repo *git.Repository, dir, path, content string) plumbing.Hash {
	t.Helper()
	full := filepath.Join(dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add(path); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("update "+path, &git.CommitOptions{Author: signature()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func push(t *testing.T, repo *git.Repository, specs ...string) {
	t.Helper()
	var rs []config.RefSpec
	for _, s := range specs {
		rs = append(rs, config.RefSpec(s))
	}
	err := repo.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: rs})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Fatalf("push %v: %v", specs, err)
	}
}

func readFile(t *testing.T, dir, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gitCLI runs the git binary with a private HOME and no system config, so
// the developer's own settings cannot change what the test exercises.
type gitCLI struct {
	t    *testing.T
	home string
}

func newGitCLI(t *testing.T) *gitCLI {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git CLI not on PATH; skipping the interoperability test with the real git client")
	}
	return &gitCLI{t: t, home: t.TempDir()}
}

func (g *gitCLI) run(dir string, args ...string) string {
	g.t.Helper()
	out, err := g.try(dir, nil, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func (g *gitCLI) try(dir string, env []string, args ...string) (string, error) {
	base := []string{"-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false"}
	cmd := exec.Command("git", append(base, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+g.home, "XDG_CONFIG_HOME="+g.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func waitEvent(t *testing.T, ch <-chan PushEvent) PushEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a push event")
		return PushEvent{}
	}
}
