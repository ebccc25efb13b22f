// Package repo keeps one local copy per Git repository for the sync engine:
// fetches bring only what changed (go-git negotiates with the server), a
// revision (branch, tag or SHA) resolves to a commit, and each commit's tree
// is written out once so renderers can read plain files.
package repo
