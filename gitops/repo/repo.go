package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// keepTrees bounds the checked-out trees kept per cache; older ones are
// removed when a new one is written.
const keepTrees = 32

// Cache holds local copies of repositories under one folder.
type Cache struct {
	dir string
	mu  sync.Mutex
	// repos is keyed by URL; each entry has its own lock so a slow fetch of
	// one repository never holds up another.
	repos map[string]*entry
	trees []string // checkout folders, oldest first
}

type entry struct {
	mu        sync.Mutex
	repo      *git.Repository
	head      plumbing.ReferenceName // the remote's HEAD branch
	lastFetch time.Time
}

// NewCache keeps repositories below dir.
func NewCache(dir string) *Cache {
	return &Cache{dir: dir, repos: map[string]*entry{}}
}

func (c *Cache) entryFor(url string) (*entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.repos[url]; ok {
		return e, nil
	}
	sum := sha256.Sum256([]byte(url))
	path := filepath.Join(c.dir, "repos", hex.EncodeToString(sum[:8]))
	r, err := git.PlainOpen(path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.PlainInit(path, true)
		if err == nil {
			_, err = r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}, Fetch: []config.RefSpec{
				"+refs/heads/*:refs/remotes/origin/*",
				"+refs/tags/*:refs/tags/*",
			}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open local copy of %s: %w", url, err)
	}
	e := &entry{repo: r}
	c.repos[url] = e
	return e, nil
}

// Fetch brings the local copy of url up to date.
func (c *Cache) Fetch(ctx context.Context, url string) error {
	e, err := c.entryFor(url)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fetch(ctx, url)
}

func (e *entry) fetch(ctx context.Context, url string) error {
	remote, err := e.repo.Remote("origin")
	if err != nil {
		return err
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{})
	if err != nil {
		return fmt.Errorf("repository %s is unreachable: %w", url, err)
	}
	for _, r := range refs {
		if r.Name() == plumbing.HEAD && r.Type() == plumbing.SymbolicReference {
			e.head = r.Target()
		}
	}
	if len(refs) == 0 {
		return fmt.Errorf("repository %s is empty: push a commit first", url)
	}
	err = e.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Tags: git.AllTags, Force: true, Prune: true})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	e.lastFetch = time.Now()
	return nil
}

// Resolve turns a revision of url into a commit SHA. With fetch, or when
// the repository was never fetched, it fetches first.
func (c *Cache) Resolve(ctx context.Context, url, revision string, fetch bool) (string, error) {
	e, err := c.entryFor(url)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if fetch || e.lastFetch.IsZero() {
		if err := e.fetch(ctx, url); err != nil {
			return "", err
		}
	}
	h, err := e.resolve(revision)
	if err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	return h.String(), nil
}

func (e *entry) resolve(revision string) (plumbing.Hash, error) {
	r := e.repo
	if revision == "" || revision == "HEAD" {
		if e.head == "" {
			return plumbing.ZeroHash, errors.New("the remote has no HEAD branch: set targetRevision")
		}
		revision = e.head.Short()
	}
	candidates := []plumbing.ReferenceName{
		plumbing.NewRemoteReferenceName("origin", revision),
		plumbing.NewTagReferenceName(revision),
	}
	if strings.HasPrefix(revision, "refs/heads/") {
		candidates = append(candidates, plumbing.NewRemoteReferenceName("origin", strings.TrimPrefix(revision, "refs/heads/")))
	}
	for _, name := range candidates {
		ref, err := r.Reference(name, true)
		if err != nil {
			continue
		}
		return peel(r, ref.Hash())
	}
	if isHex(revision) && len(revision) >= 4 {
		if len(revision) == 40 {
			if _, err := r.CommitObject(plumbing.NewHash(revision)); err == nil {
				return plumbing.NewHash(revision), nil
			}
		} else if h, err := r.ResolveRevision(plumbing.Revision(revision)); err == nil {
			return *h, nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("revision %q is not a branch, tag or commit of the repository (branches: %s)", revision, strings.Join(e.branches(), ", "))
}

func (e *entry) branches() []string {
	var out []string
	refs, err := e.repo.References()
	if err != nil {
		return nil
	}
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Name().IsRemote() {
			out = append(out, strings.TrimPrefix(ref.Name().Short(), "origin/"))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// peel follows annotated tags to the commit they name.
func peel(r *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 {
		tag, err := r.TagObject(h)
		if err != nil {
			return h, nil // not a tag object: a commit
		}
		h = tag.Target
	}
	return plumbing.ZeroHash, errors.New("tag chain too long")
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// Checkout writes the tree of commit sha (once) and returns its folder.
// Renderers read it like any directory; nothing writes to it afterwards.
func (c *Cache) Checkout(ctx context.Context, url, sha string) (string, error) {
	dest := filepath.Join(c.dir, "trees", sha)
	if _, err := os.Stat(filepath.Join(dest, ".tether-complete")); err == nil {
		return dest, nil
	}
	e, err := c.entryFor(url)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	commit, err := e.repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return "", fmt.Errorf("%s: commit %s: %w", url, sha, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return "", err
	}
	tmp := dest + ".tmp"
	_ = os.RemoveAll(tmp)
	err = tree.Files().ForEach(func(f *object.File) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Symlinks and submodules are not followed: a manifest folder is
		// plain files, and a link could point outside the checkout.
		if f.Mode == filemode.Symlink || f.Mode == filemode.Submodule {
			return nil
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer rd.Close()
		out, err := os.Create(p)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, rd); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err == nil {
		if err = os.MkdirAll(tmp, 0o755); err == nil {
			err = os.WriteFile(filepath.Join(tmp, ".tether-complete"), nil, 0o644)
		}
	}
	if err == nil {
		_ = os.RemoveAll(dest)
		err = os.Rename(tmp, dest)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("check out %s of %s: %w", sha, url, err)
	}
	c.remember(dest)
	return dest, nil
}

func (c *Cache) remember(tree string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trees = append(c.trees, tree)
	for len(c.trees) > keepTrees {
		_ = os.RemoveAll(c.trees[0])
		c.trees = c.trees[1:]
	}
}

// ShortSHA is how tether shows a commit to people: its first 8 hex digits
// (what the CLI, the UI and condition messages print).
func ShortSHA(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
