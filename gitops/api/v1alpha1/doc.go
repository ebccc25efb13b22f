// Package v1alpha1 is the Application API (group gitops.tether.dev): what to
// sync from Git, where, and how, and the status the sync engine reports.
//
// The CRD in crd/ is generated from these types by controller-gen (go tool
// task generate), so the schema and the Go types cannot drift apart.
//
// +kubebuilder:object:generate=true
// +groupName=gitops.tether.dev
package v1alpha1
