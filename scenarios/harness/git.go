package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Repo is a working copy a scenario commits to and pushes from, over the
// same smart HTTP a user's git would use.
type Repo struct {
	URL  string
	Dir  string
	repo *git.Repository
}

// CloneRepo clones url into dir, or starts an empty repository pointing at
// it when the remote has no commits yet.
func CloneRepo(ctx context.Context, url, dir string) (*Repo, error) {
	r, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: url})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		_ = os.RemoveAll(dir)
		r, err = git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
		if err == nil {
			_, err = r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", url, err)
	}
	return &Repo{URL: url, Dir: dir, repo: r}, nil
}

// Write puts a file into the working copy.
func (r *Repo) Write(path, content string) error {
	p := filepath.Join(r.Dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// Remove deletes a file from the working copy.
func (r *Repo) Remove(path string) error {
	return os.Remove(filepath.Join(r.Dir, filepath.FromSlash(path)))
}

// CommitPush commits everything and pushes main, returning the new SHA.
func (r *Repo) CommitPush(ctx context.Context, msg string) (string, error) {
	wt, err := r.repo.Worktree()
	if err != nil {
		return "", err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return "", err
	}
	h, err := wt.Commit(msg, &git.CommitOptions{
		AllowEmptyCommits: true,
		Author:            &object.Signature{Name: "scenario", Email: "scenario@tether.dev", When: time.Now()},
	})
	if err != nil {
		return "", err
	}
	err = r.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/main"}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", fmt.Errorf("push %s: %w", r.URL, err)
	}
	return h.String(), nil
}
