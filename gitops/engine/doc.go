// Package engine is the sync engine an agent runs on its spoke: the
// Application controller.
//
// For each Application it resolves the Git revision (one cached clone per
// repository), renders the folder (plain YAML or Kustomize, in-process),
// compares the result with the live objects held in informer caches, and —
// when the sync policy or a one-shot operation says so — applies with
// server-side apply after a server-side dry run of the whole set, prunes what
// left Git, and reports sync, health, per-resource state and history in the
// Application's status.
//
// Live state comes from informers on the managed kinds, filtered to objects
// the engine labelled, so a reconcile costs no API reads and a change to a
// managed object (drift) wakes its Application within a moment.
//
// A reconcile is a list of named steps over one reconcilePass (in the
// manner of kind's create actions): load, skip a delivered operation,
// resolve, compare, decide, sync, write status, clear what was served,
// schedule. Each step reads what earlier ones learnt; a failed step's error
// names it. Objects are written through cluster/kubeapply, the workbench's
// one server-side apply.
package engine
