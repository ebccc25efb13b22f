package gitserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

func TestGoGitPushAndClone(t *testing.T) {
	f := newFixture(t, Options{})
	if err := f.srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.CreateRepo("app.git"); err != nil { // idempotent, suffix optional
		t.Fatal(err)
	}

	// An initialised but empty repository advertises no refs; go-git
	// refuses to clone that, so the first commit is pushed from a new repo.
	_, err := git.PlainClone(t.TempDir(), false, &git.CloneOptions{URL: f.url("app")})
	if !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		t.Fatalf("clone of empty repo: got %v, want ErrEmptyRemoteRepository", err)
	}

	repo, dir := initLocal(t, f.url("app"))
	head := commitFile(t, repo, dir, "README.md", "hello\n")
	push(t, repo, "refs/heads/main:refs/heads/main")

	for _, url := range []string{f.url("app"), f.base + "/app"} { // with and without .git
		clone := t.TempDir()
		cr, err := git.PlainClone(clone, false, &git.CloneOptions{URL: url})
		if err != nil {
			t.Fatalf("clone %s: %v", url, err)
		}
		if got := readFile(t, clone, "README.md"); got != "hello\n" {
			t.Fatalf("README.md = %q", got)
		}
		ref, err := cr.Head()
		if err != nil {
			t.Fatal(err)
		}
		if ref.Name() != plumbing.Main || ref.Hash() != head {
			t.Fatalf("HEAD = %s %s, want main %s", ref.Name(), ref.Hash(), head)
		}
	}
	if repos, err := f.srv.Repos(); err != nil || len(repos) != 1 || repos[0] != "app" {
		t.Fatalf("Repos() = %v, %v", repos, err)
	}
}

func TestGitCLI(t *testing.T) {
	g := newGitCLI(t)
	f := newFixture(t, Options{AutoCreate: true})
	url := f.url("team/site")

	// AutoCreate: the first push creates the repository.
	src := t.TempDir()
	g.run(src, "init", "-q")
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.run(src, "add", ".")
	g.run(src, "commit", "-q", "-m", "v1")
	g.run(src, "remote", "add", "origin", url)
	g.run(src, "push", "-q", "origin", "main")

	dst := filepath.Join(t.TempDir(), "clone")
	g.run("", "clone", "-q", url, dst)
	if got := readFile(t, dst, "index.html"); got != "v1\n" {
		t.Fatalf("index.html = %q", got)
	}
	if got := g.run(dst, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Fatalf("clone HEAD = %q", got)
	}

	// A second push, then a fetch in the clone.
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.run(src, "commit", "-q", "-am", "v2")
	g.run(src, "push", "-q", "origin", "main")
	g.run(dst, "fetch", "-q", "origin")
	if a, b := g.run(src, "rev-parse", "HEAD"), g.run(dst, "rev-parse", "origin/main"); a != b {
		t.Fatalf("fetched origin/main = %s, pushed %s", b, a)
	}
	g.run(dst, "merge", "-q", "--ff-only", "origin/main")
	if got := readFile(t, dst, "index.html"); got != "v2\n" {
		t.Fatalf("index.html after fetch = %q", got)
	}

	// A branch at an existing commit: the CLI sends an empty pack.
	g.run(src, "push", "-q", "origin", "HEAD:refs/heads/copy")
	// Annotated tag.
	g.run(src, "tag", "-a", "v2", "-m", "release v2")
	g.run(src, "push", "-q", "origin", "v2")
	g.run(dst, "fetch", "-q", "--tags", "origin")
	if a, b := g.run(src, "rev-parse", "v2^{commit}"), g.run(dst, "rev-parse", "v2^{commit}"); a != b {
		t.Fatalf("tag v2 -> %s in clone, %s in source", b, a)
	}
	// Deleting a branch carries no pack at all.
	g.run(src, "push", "-q", "origin", ":refs/heads/copy")
	if out := g.run(src, "ls-remote", "origin"); strings.Contains(out, "refs/heads/copy") {
		t.Fatalf("copy still advertised after delete:\n%s", out)
	}

	// A non-fast-forward push is refused (by the CLI, which sees the
	// server's newer main); --force goes through.
	g.run(dst, "commit", "-q", "--allow-empty", "-m", "from clone")
	g.run(dst, "push", "-q", "origin", "main")
	g.run(src, "commit", "-q", "--allow-empty", "-m", "diverged")
	if out, err := g.try(src, nil, "push", "origin", "main"); err == nil {
		t.Fatalf("non-fast-forward push succeeded:\n%s", out)
	}
	g.run(src, "push", "-q", "--force", "origin", "main")
	if a, b := g.run(src, "rev-parse", "HEAD"), g.run(src, "ls-remote", "origin", "refs/heads/main"); !strings.HasPrefix(b, a) {
		t.Fatalf("forced main = %q, want %s", b, a)
	}
}

// TestGitCLINegotiation makes the CLI negotiate over several stateless
// rounds: the clone holds many commits the server has never seen, newer than
// the common ones, so the first rounds of "have" lines find nothing common.
func TestGitCLINegotiation(t *testing.T) {
	g := newGitCLI(t)
	f := newFixture(t, Options{})
	if err := f.srv.CreateRepo("big"); err != nil {
		t.Fatal(err)
	}
	url := f.url("big")
	src := t.TempDir()
	g.run(src, "init", "-q")
	g.run(src, "remote", "add", "origin", url)
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(src, "f.txt"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		g.run(src, "add", ".")
		g.run(src, "commit", "-q", "-m", fmt.Sprint("c", i))
	}
	g.run(src, "push", "-q", "origin", "main")

	dst := filepath.Join(t.TempDir(), "clone")
	g.run("", "clone", "-q", url, dst)
	g.run(dst, "checkout", "-q", "-b", "local")
	future := time.Now().Add(24 * time.Hour)
	for i := range 60 {
		date := future.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		if _, err := g.try(dst, []string{"GIT_COMMITTER_DATE=" + date, "GIT_AUTHOR_DATE=" + date},
			"commit", "-q", "--allow-empty", "-m", fmt.Sprint("local ", i)); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.WriteFile(filepath.Join(src, "f.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.run(src, "commit", "-q", "-am", "new")
	g.run(src, "push", "-q", "origin", "main")

	_, _, roundsBefore := f.rec.snapshot()
	g.run(dst, "fetch", "-q", "origin")
	if a, b := g.run(src, "rev-parse", "HEAD"), g.run(dst, "rev-parse", "origin/main"); a != b {
		t.Fatalf("origin/main = %s, want %s", b, a)
	}
	packs, encodings, rounds := f.rec.snapshot()
	if rounds-roundsBefore < 2 {
		t.Errorf("fetch used %d upload-pack round(s), want a multi-round negotiation", rounds-roundsBefore)
	}
	if got := packs[len(packs)-1]; got != 3 {
		t.Errorf("fetch pack holds %d objects, want 3 (commit, tree, blob)", got)
	}
	gz := false
	for _, e := range encodings {
		gz = gz || e == "gzip"
	}
	if !gz {
		t.Errorf("no gzip-encoded upload-pack request seen (encodings %q)", encodings)
	}
}

func TestPushEventsAndWebhook(t *testing.T) {
	hooks := make(chan PushEvent, 10)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev PushEvent
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook content type %q", r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		hooks <- ev
	}))
	defer hook.Close()

	events := make(chan PushEvent, 10)
	f := newFixture(t, Options{
		OnPush:   func(ev PushEvent) { events <- ev },
		Webhooks: []string{failing.URL, hook.URL},
	})
	if err := f.srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	repo, dir := initLocal(t, f.url("app"))
	first := commitFile(t, repo, dir, "a.txt", "1")
	push(t, repo, "refs/heads/main:refs/heads/main")
	ev := waitEvent(t, events)
	want := PushEvent{Repo: "app", Ref: "refs/heads/main", Before: plumbing.ZeroHash.String(), After: first.String()}
	if ev.Repo != want.Repo || ev.Ref != want.Ref || ev.Before != want.Before || ev.After != want.After || ev.Time.IsZero() {
		t.Fatalf("event = %+v, want %+v", ev, want)
	}
	if hev := waitEvent(t, hooks); hev.After != first.String() || hev.Ref != "refs/heads/main" || hev.Repo != "app" {
		t.Fatalf("webhook event = %+v", hev)
	}

	second := commitFile(t, repo, dir, "a.txt", "2")
	push(t, repo, "refs/heads/main:refs/heads/main")
	ev = waitEvent(t, events)
	if ev.Before != first.String() || ev.After != second.String() {
		t.Fatalf("second event = %+v, want %s -> %s", ev, first, second)
	}
	if hev := waitEvent(t, hooks); hev.Before != first.String() || hev.After != second.String() {
		t.Fatalf("second webhook event = %+v", hev)
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected extra event %+v", ev)
	default:
	}
}

func TestFetchGetsOnlyNewObjects(t *testing.T) {
	f := newFixture(t, Options{})
	if err := f.srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	repo, dir := initLocal(t, f.url("app"))
	for i := range 5 {
		commitFile(t, repo, dir, fmt.Sprintf("dir%d/file.txt", i), fmt.Sprint(i))
	}
	push(t, repo, "refs/heads/main:refs/heads/main")

	cloneDir := t.TempDir()
	clone, err := git.PlainClone(cloneDir, false, &git.CloneOptions{URL: f.url("app")})
	if err != nil {
		t.Fatal(err)
	}
	packs, _, _ := f.rec.snapshot()
	if got := packs[len(packs)-1]; got != 5*4 { // per commit: commit, root tree, dir tree, blob
		t.Fatalf("clone pack holds %d objects, want 20", got)
	}

	next := commitFile(t, repo, dir, "top.txt", "new")
	push(t, repo, "refs/heads/main:refs/heads/main")

	err = clone.FetchContext(context.Background(), &git.FetchOptions{RemoteName: "origin"})
	if err != nil {
		t.Fatal(err)
	}
	packs, _, _ = f.rec.snapshot()
	if got := packs[len(packs)-1]; got != 3 {
		t.Fatalf("fetch pack holds %d objects, want 3 (commit, root tree, blob)", got)
	}
	ref, err := clone.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Hash() != next {
		t.Fatalf("origin/main = %s, want %s", ref.Hash(), next)
	}
	if err := clone.FetchContext(context.Background(), &git.FetchOptions{}); !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Fatalf("second fetch: %v, want already up to date", err)
	}
}

func TestUnknownRepoAndBadNames(t *testing.T) {
	f := newFixture(t, Options{})
	_, err := git.PlainClone(t.TempDir(), false, &git.CloneOptions{URL: f.url("missing")})
	if !errors.Is(err, transport.ErrRepositoryNotFound) {
		t.Fatalf("clone of missing repo: %v, want ErrRepositoryNotFound", err)
	}
	if g, ok := tryGitCLI(t); ok {
		out, err := g.try("", nil, "ls-remote", f.url("missing"))
		if err == nil || !strings.Contains(out, "not found") {
			t.Fatalf("git ls-remote of missing repo: err=%v\n%s", err, out)
		}
	}

	// Pushing to a missing repository without AutoCreate fails too.
	repo, dir := initLocal(t, f.url("missing"))
	commitFile(t, repo, dir, "a", "a")
	err = repo.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/main"}})
	if !errors.Is(err, transport.ErrRepositoryNotFound) {
		t.Fatalf("push to missing repo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.srv.Root(), "missing.git")); !os.IsNotExist(err) {
		t.Fatalf("missing.git was created: %v", err)
	}

	// Requests straight to the handler, so no client cleans the path first.
	h := f.srv.Handler()
	for _, p := range []string{
		"/../etc.git/info/refs?service=git-upload-pack",
		"/a/../../x.git/info/refs?service=git-upload-pack",
		"/a/b/c.git/info/refs?service=git-upload-pack",
		"/.git/info/refs?service=git-upload-pack",
		"/..%2f..%2fetc.git/info/refs?service=git-upload-pack",
		"/%2e%2e.git/info/refs?service=git-upload-pack",
	} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, p, nil))
		if rr.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rr.Code)
		}
	}
	for _, name := range []string{"..", "../x", "a/../b", "a/b/c", ".hidden", "", "/", "a b", "a\\b", "x.git.git"} {
		if _, err := CleanName(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CleanName(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := f.srv.CreateRepo(name); err == nil {
			t.Errorf("CreateRepo(%q) succeeded", name)
		}
	}
	for name, want := range map[string]string{"app": "app", "app.git": "app", "/team/app.git/": "team/app", "a-b_c.d": "a-b_c.d"} {
		if got, err := CleanName(name); err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}

	// Dumb HTTP and unknown paths are refused.
	if err := f.srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/app.git/info/refs", nil))
	if rr.Code != http.StatusForbidden {
		t.Errorf("dumb info/refs = %d, want 403", rr.Code)
	}
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/app.git/HEAD", nil))
	if rr.Code != http.StatusNotFound {
		t.Errorf("GET HEAD = %d, want 404", rr.Code)
	}
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/app.git/git-upload-pack", nil))
	if rr.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET git-upload-pack = %d, want 405", rr.Code)
	}
}

func TestAdvertisementHeaders(t *testing.T) {
	f := newFixture(t, Options{})
	if err := f.srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"git-upload-pack", "git-receive-pack"} {
		resp, err := http.Get(f.base + "/app.git/info/refs?service=" + svc)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-"+svc+"-advertisement" {
			t.Errorf("%s content type %q", svc, ct)
		}
		if !strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
			t.Errorf("%s Cache-Control %q", svc, resp.Header.Get("Cache-Control"))
		}
		prefix := fmt.Sprintf("%04x# service=%s\n0000", len("# service=")+len(svc)+5, svc)
		if !strings.HasPrefix(string(body), prefix) {
			t.Errorf("%s body starts %q, want %q", svc, body[:min(len(body), 40)], prefix)
		}
		for _, forbidden := range []string{"side-band", "atomic", "push-options", "report-status-v2", "shallow", "thin-pack"} {
			if strings.Contains(string(body), " "+forbidden) {
				t.Errorf("%s advertises unimplemented %q: %q", svc, forbidden, body)
			}
		}
	}
}

func TestBranchesForcePushAndTags(t *testing.T) {
	events := make(chan PushEvent, 10)
	f := newFixture(t, Options{OnPush: func(ev PushEvent) { events <- ev }})
	if err := f.srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	repo, dir := initLocal(t, f.url("app"))
	base := commitFile(t, repo, dir, "a.txt", "base")
	push(t, repo, "refs/heads/main:refs/heads/main")
	waitEvent(t, events)

	// A second branch created at an existing commit.
	push(t, repo, "refs/heads/main:refs/heads/feature")
	ev := waitEvent(t, events)
	if ev.Ref != "refs/heads/feature" || ev.Before != plumbing.ZeroHash.String() || ev.After != base.String() {
		t.Fatalf("branch creation event = %+v", ev)
	}

	// feature moves ahead, then is force-pushed back to a sibling commit.
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("feature"), Create: true}); err != nil {
		t.Fatal(err)
	}
	ahead := commitFile(t, repo, dir, "b.txt", "ahead")
	push(t, repo, "refs/heads/feature:refs/heads/feature")
	if ev := waitEvent(t, events); ev.Before != base.String() || ev.After != ahead.String() {
		t.Fatalf("feature update event = %+v", ev)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: base, Mode: git.HardReset}); err != nil {
		t.Fatal(err)
	}
	sibling := commitFile(t, repo, dir, "c.txt", "sibling")
	if err := repo.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{"refs/heads/feature:refs/heads/feature"}}); err == nil {
		t.Fatal("non-fast-forward push without force succeeded")
	}
	push(t, repo, "+refs/heads/feature:refs/heads/feature")
	if ev := waitEvent(t, events); ev.Ref != "refs/heads/feature" || ev.Before != ahead.String() || ev.After != sibling.String() {
		t.Fatalf("force-push event = %+v, want %s -> %s", ev, ahead, sibling)
	}

	// Tags: one lightweight, one annotated.
	if _, err := repo.CreateTag("light", base, nil); err != nil {
		t.Fatal(err)
	}
	annotated, err := repo.CreateTag("v1.0.0", sibling, &git.CreateTagOptions{Tagger: signature(), Message: "release"})
	if err != nil {
		t.Fatal(err)
	}
	push(t, repo, "refs/tags/*:refs/tags/*")
	got := map[string]PushEvent{}
	for range 2 {
		ev := waitEvent(t, events)
		got[ev.Ref] = ev
	}
	if ev := got["refs/tags/light"]; ev.After != base.String() || ev.Before != plumbing.ZeroHash.String() {
		t.Fatalf("lightweight tag event = %+v", ev)
	}
	if ev := got["refs/tags/v1.0.0"]; ev.After != annotated.Hash().String() {
		t.Fatalf("annotated tag event = %+v, want after %s", ev, annotated.Hash())
	}

	clone, err := git.PlainClone(t.TempDir(), true, &git.CloneOptions{URL: f.url("app"), Tags: git.AllTags})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := clone.TagObject(annotated.Hash())
	if err != nil {
		t.Fatalf("annotated tag object not cloned: %v", err)
	}
	if tag.Target != sibling || tag.Message != "release\n" && tag.Message != "release" {
		t.Fatalf("tag = %+v", tag)
	}
	if ref, err := clone.Reference(plumbing.NewRemoteReferenceName("origin", "feature"), true); err != nil || ref.Hash() != sibling {
		t.Fatalf("cloned feature = %v, %v; want %s", ref, err, sibling)
	}

	// Deleting a branch is an event with a zero "after".
	push(t, repo, ":refs/heads/feature")
	if ev := waitEvent(t, events); ev.Ref != "refs/heads/feature" || ev.After != plumbing.ZeroHash.String() || ev.Before != sibling.String() {
		t.Fatalf("delete event = %+v", ev)
	}
}

func TestListenAndServe(t *testing.T) {
	srv, err := New(t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := srv.ListenAndServe(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	url := URL("http://"+addr.String(), "app")
	repo, dir := initLocal(t, url)
	commitFile(t, repo, dir, "a", "a")
	push(t, repo, "refs/heads/main:refs/heads/main")
	if _, err := git.PlainClone(t.TempDir(), false, &git.CloneOptions{URL: url}); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := http.Get(url + "/info/refs?service=git-upload-pack")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still answering after ctx was cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ListenAndServe(context.Background(), "127.0.0.1:0"); err == nil {
		t.Fatal("ListenAndServe after Close succeeded")
	}
}

func tryGitCLI(t *testing.T) (*gitCLI, bool) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, false
	}
	return &gitCLI{t: t, home: t.TempDir()}, true
}
