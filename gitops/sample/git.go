package sample

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Branch is the branch the sample lives on.
const Branch = "main"

// DefaultAuthor signs commits when no author is given.
const DefaultAuthor = "tether <tether@tether.dev>"

// Edit changes a checked-out worktree; Commit records whatever it changed.
type Edit func(fs billy.Filesystem) error

// Seed makes the sample files on the main branch of repoURL match
// Files(spokes, w), committing as author ("Name <email>", DefaultAuthor when
// empty) and pushing. An empty repository gets its first commit. When the
// tree already matches, nothing is committed and the current head is
// returned. Anything else in README.md, plain/ and kustomize/ is put back,
// undoing commits there; files outside them are never touched. The
// workbench calls Ensure, which seeds only a repository that has no sample
// yet; Seed is for resetting one.
func Seed(ctx context.Context, repoURL string, spokes []string, w Workload, author string) (string, error) {
	files, err := Files(spokes, w)
	if err != nil {
		return "", err
	}
	sig, err := signature(author)
	if err != nil {
		return "", err
	}
	repo, err := open(ctx, repoURL)
	if err != nil {
		return "", err
	}
	return commitPush(ctx, repo, repoURL, "Seed sample application", sig, seedEdit(files))
}

func seedEdit(files map[string][]byte) Edit {
	return func(wfs billy.Filesystem) error {
		if err := removeStale(wfs, files); err != nil {
			return err
		}
		for _, p := range sortedKeys(files) {
			if err := util.WriteFile(wfs, p, files[p], 0o644); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
		return nil
	}
}

// Ensure is what the workbench runs on every `tether up`. A repository
// without a main branch (just created, or missing on a server that creates
// repositories on first push) is seeded as Seed does. An existing one keeps
// its history and its content, commits made since the seed included; only
// what follows from the workbench itself is committed, and only when it
// differs:
//
//   - the overlay of a spoke that has none is added, and the overlays of
//     spokes no longer listed are removed (each spoke's Application points
//     at its own overlay);
//   - containers running another tag of w.Image's repository are moved to
//     w.Image, so a rebuilt tether image (a new digest-derived tag on kind)
//     is what the sample runs, including on nodes that never had the old
//     one. An image from another repository, set by a commit, is left alone.
//
// It returns the head of main and whether this call seeded the repository.
func Ensure(ctx context.Context, repoURL string, spokes []string, w Workload, author string) (head string, seeded bool, err error) {
	files, err := Files(spokes, w)
	if err != nil {
		return "", false, err
	}
	names, _ := normalise(spokes)
	w, _ = w.withDefaults()
	sig, err := signature(author)
	if err != nil {
		return "", false, err
	}
	repo, err := open(ctx, repoURL)
	if err != nil {
		return "", false, err
	}
	if _, err := repo.Head(); errors.Is(err, plumbing.ErrReferenceNotFound) {
		head, err := commitPush(ctx, repo, repoURL, "Seed sample application", sig, seedEdit(files))
		return head, err == nil, err
	} else if err != nil {
		return "", false, fmt.Errorf("sample: head of %s: %w", repoURL, err)
	}
	head, err = commitPush(ctx, repo, repoURL, "Update the sample for the workbench's spokes and image", sig, func(wfs billy.Filesystem) error {
		if err := syncOverlays(wfs, names); err != nil {
			return err
		}
		for _, p := range []string{PlainDeployment, KustomizeBase + "/deployment.yaml"} {
			if err := retag(wfs, p, w.Image); err != nil {
				return err
			}
		}
		return nil
	})
	return head, false, err
}

// syncOverlays adds the default overlay of every spoke without one and
// removes the overlay folders of spokes not in names.
func syncOverlays(wfs billy.Filesystem, names []string) error {
	want := map[string]bool{}
	for _, s := range names {
		want[s] = true
		p := OverlayDir(s) + "/kustomization.yaml"
		if _, err := wfs.Stat(p); errors.Is(err, os.ErrNotExist) {
			if err := util.WriteFile(wfs, p, []byte(overlay(s)), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		} else if err != nil {
			return err
		}
	}
	parent := path.Dir(OverlayDir("x"))
	entries, err := wfs.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && !want[e.Name()] {
			if err := util.RemoveAll(wfs, path.Join(parent, e.Name())); err != nil {
				return fmt.Errorf("remove the overlay of %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// retag applies SetImage to the file at p, if there is one.
func retag(wfs billy.Filesystem, p, image string) error {
	content, err := util.ReadFile(wfs, p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	out, changed, err := SetImage(content, image)
	if err != nil {
		// A commit broke the file; leave it to whoever did.
		return nil
	}
	if !changed {
		return nil
	}
	return util.WriteFile(wfs, p, out, 0o644)
}

// Commit clones repoURL, applies edit, and when the worktree changed commits
// it with message (as DefaultAuthor) and pushes to main. It returns the new
// head, or the unchanged head when edit changed nothing.
//
//	sha, err := sample.Commit(ctx, url, "scale web to 3", sample.Scale(sample.PlainDeployment, 3))
func Commit(ctx context.Context, repoURL, message string, edits ...Edit) (string, error) {
	sig, err := signature("")
	if err != nil {
		return "", err
	}
	return change(ctx, repoURL, message, sig, func(wfs billy.Filesystem) error {
		for _, e := range edits {
			if err := e(wfs); err != nil {
				return err
			}
		}
		return nil
	})
}

// Scale sets spec.replicas of every Deployment in the YAML file at path.
func Scale(path string, replicas int) Edit {
	return func(wfs billy.Filesystem) error {
		content, err := util.ReadFile(wfs, path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		out, err := SetReplicas(content, replicas)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return util.WriteFile(wfs, path, out, 0o644)
	}
}

// ScaleOverlay sets the replica count of a spoke's overlay: what the
// sample Application of that spoke deploys.
func ScaleOverlay(spoke string, replicas int) Edit {
	return func(wfs billy.Filesystem) error {
		if !validSpoke(spoke) {
			return fmt.Errorf("spoke name %q is not a DNS label", spoke)
		}
		return util.WriteFile(wfs, OverlayDir(spoke)+"/kustomization.yaml", []byte(overlayWithReplicas(spoke, replicas)), 0o644)
	}
}

// WriteFile creates or replaces the file at path, for example with broken
// YAML to see a sync fail.
func WriteFile(path string, content []byte) Edit {
	return func(wfs billy.Filesystem) error {
		return util.WriteFile(wfs, path, content, 0o644)
	}
}

// RemoveFile deletes the file at path; a missing file is not an error.
func RemoveFile(path string) Edit {
	return func(wfs billy.Filesystem) error {
		if err := wfs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
}

// change is the clone-edit-commit-push cycle behind Commit. The clone
// lives in memory: the sample is small, and nothing is left on disk when a
// scenario is interrupted.
func change(ctx context.Context, repoURL, message string, sig *object.Signature, edit Edit) (string, error) {
	repo, err := open(ctx, repoURL)
	if err != nil {
		return "", err
	}
	return commitPush(ctx, repo, repoURL, message, sig, edit)
}

// commitPush applies edit to repo's worktree and, when that changed
// anything, commits and pushes main. It returns the new head, or the
// unchanged one.
func commitPush(ctx context.Context, repo *git.Repository, repoURL, message string, sig *object.Signature, edit Edit) (string, error) {
	wt, err := repo.Worktree()
	if err != nil {
		return "", err
	}
	if err := edit(wt.Filesystem); err != nil {
		return "", fmt.Errorf("sample: edit: %w", err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return "", fmt.Errorf("sample: stage: %w", err)
	}
	status, err := wt.Status()
	if err != nil {
		return "", fmt.Errorf("sample: status: %w", err)
	}
	if status.IsClean() {
		if head, err := repo.Head(); err == nil {
			return head.Hash().String(), nil
		}
		return "", errors.New("sample: nothing to commit to an empty repository")
	}
	sig.When = time.Now()
	h, err := wt.Commit(message, &git.CommitOptions{All: true, Author: sig, Committer: sig})
	if err != nil {
		return "", fmt.Errorf("sample: commit: %w", err)
	}
	ref := plumbing.NewBranchReferenceName(Branch)
	err = repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(ref + ":" + ref)},
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", fmt.Errorf("sample: push to %s: %w", repoURL, err)
	}
	return h.String(), nil
}

// open clones main of repoURL into memory, or starts a fresh repository when
// the remote has no main yet.
func open(ctx context.Context, repoURL string) (*git.Repository, error) {
	ref := plumbing.NewBranchReferenceName(Branch)
	repo, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL:           repoURL,
		ReferenceName: ref,
		SingleBranch:  true,
	})
	if err == nil {
		return repo, nil
	}
	// A missing repository is treated like an empty one: servers that
	// create repositories on first push (gitserver's AutoCreate) accept the
	// push, the others reject it with the same "not found" error.
	if !errors.Is(err, transport.ErrEmptyRemoteRepository) && !errors.Is(err, transport.ErrRepositoryNotFound) && !isMissingBranch(err) {
		return nil, fmt.Errorf("sample: clone %s: %w", repoURL, err)
	}
	repo, err = git.InitWithOptions(memory.NewStorage(), memfs.New(), git.InitOptions{DefaultBranch: ref})
	if err != nil {
		return nil, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{repoURL}}); err != nil {
		return nil, err
	}
	return repo, nil
}

func isMissingBranch(err error) bool {
	var nf git.NoMatchingRefSpecError
	return errors.As(err, &nf) || errors.Is(err, plumbing.ErrReferenceNotFound)
}

// removeStale deletes sample-owned files that are not in want, such as the
// overlay of a spoke that no longer exists.
func removeStale(wfs billy.Filesystem, want map[string][]byte) error {
	var stale []string
	err := util.Walk(wfs, "/", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := path.Clean(p)
		if len(rel) > 0 && rel[0] == '/' {
			rel = rel[1:]
		}
		if fi.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if _, ok := want[rel]; !ok && ownedPath(rel) {
			stale = append(stale, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list worktree: %w", err)
	}
	for _, p := range stale {
		if err := wfs.Remove(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

func signature(author string) (*object.Signature, error) {
	if author == "" {
		author = DefaultAuthor
	}
	addr, err := mail.ParseAddress(author)
	if err != nil {
		return nil, fmt.Errorf("sample: author %q is not \"Name <email>\": %w", author, err)
	}
	name := addr.Name
	if name == "" {
		name = addr.Address
	}
	return &object.Signature{Name: name, Email: addr.Address}, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
