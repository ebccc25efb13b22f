package gitserver

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
)

// TestGitCLIDeltaPush pushes a small edit of a large file, which the CLI
// would send as a delta against the blob the server already has (a thin
// pack) unless the server asks for self-contained packs.
func TestGitCLIDeltaPush(t *testing.T) {
	g := newGitCLI(t)
	f := newFixture(t, Options{AutoCreate: true})
	url := f.url("thin")
	src := t.TempDir()
	g.run(src, "init", "-q")
	g.run(src, "remote", "add", "origin", url)
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "line %d of a file big enough to be worth a delta\n", i)
	}
	big := b.String()
	if err := os.WriteFile(filepath.Join(src, "big.txt"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	g.run(src, "add", ".")
	g.run(src, "commit", "-q", "-m", "big")
	g.run(src, "push", "-q", "origin", "main")
	if err := os.WriteFile(filepath.Join(src, "big.txt"), []byte(strings.Replace(big, "line 1000 ", "LINE 1000 ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.run(src, "commit", "-q", "-am", "edit")
	g.run(src, "push", "origin", "main")

	dst := filepath.Join(t.TempDir(), "clone")
	g.run("", "clone", "-q", url, dst)
	if got := readFile(t, dst, "big.txt"); !strings.Contains(got, "LINE 1000 ") {
		t.Fatal("edit not in clone")
	}
	g.run(dst, "fsck", "--strict")
}

// TestStaleOldValueRejected sends a receive-pack command whose old value no
// longer matches the ref: go-git alone would apply it, the server must not.
func TestStaleOldValueRejected(t *testing.T) {
	events := make(chan PushEvent, 4)
	f := newFixture(t, Options{OnPush: func(ev PushEvent) { events <- ev }})
	if err := f.srv.CreateRepo("app"); err != nil {
		t.Fatal(err)
	}
	repo, dir := initLocal(t, f.url("app"))
	first := commitFile(t, repo, dir, "a", "1")
	push(t, repo, "refs/heads/main:refs/heads/main")
	waitEvent(t, events)
	second := commitFile(t, repo, dir, "a", "2")
	push(t, repo, "refs/heads/main:refs/heads/main")
	waitEvent(t, events)

	req := packp.NewReferenceUpdateRequest()
	if err := req.Capabilities.Set(capability.ReportStatus); err != nil {
		t.Fatal(err)
	}
	req.Commands = []*packp.Command{
		{Name: "refs/heads/main", Old: first, New: plumbing.ZeroHash},   // stale delete
		{Name: "refs/heads/copy", Old: plumbing.ZeroHash, New: second},  // fine
		{Name: "refs/heads/other", Old: second, New: plumbing.ZeroHash}, // does not exist
	}
	var body bytes.Buffer
	if err := req.Encode(&body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(f.url("app")+"/git-receive-pack", "application/x-git-receive-pack-request", &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-git-receive-pack-result" {
		t.Errorf("content type %q", ct)
	}
	rs := packp.NewReportStatus()
	if err := rs.Decode(resp.Body); err != nil {
		t.Fatal(err)
	}
	got := map[plumbing.ReferenceName]string{}
	for _, cs := range rs.CommandStatuses {
		got[cs.ReferenceName] = cs.Status
	}
	want := map[plumbing.ReferenceName]string{"refs/heads/main": "stale info", "refs/heads/copy": "ok", "refs/heads/other": "stale info"}
	if rs.UnpackStatus != "ok" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("report = unpack %q %v, want %v", rs.UnpackStatus, got, want)
	}
	if ev := waitEvent(t, events); ev.Ref != "refs/heads/copy" || ev.After != second.String() {
		t.Fatalf("event = %+v", ev)
	}
	clone, err := git.PlainClone(t.TempDir(), true, &git.CloneOptions{URL: f.url("app")})
	if err != nil {
		t.Fatal(err)
	}
	if ref, err := clone.Reference("refs/remotes/origin/main", true); err != nil || ref.Hash() != second {
		t.Fatalf("main on server = %v, %v; want %s", ref, err, second)
	}
}
