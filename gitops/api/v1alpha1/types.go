package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sync statuses.
const (
	SyncStatusSynced    = "Synced"
	SyncStatusOutOfSync = "OutOfSync"
	SyncStatusUnknown   = "Unknown"
)

// Operation phases.
const (
	OperationRunning   = "Running"
	OperationSucceeded = "Succeeded"
	OperationFailed    = "Failed"
)

// Condition types.
const (
	// ConditionComparisonError: Git or rendering failed; the cluster keeps
	// its last synced state.
	ConditionComparisonError = "ComparisonError"
	// ConditionSyncError: applying or pruning failed.
	ConditionSyncError = "SyncError"
	// ConditionDeliveryError: a message about this Application between
	// the hub and its spoke was refused (by the API server that was to
	// store it) and dropped; the message says which and why.
	ConditionDeliveryError = "DeliveryError"
	// ConditionStatusTruncated: the spoke's status was too large for the
	// hub and was shortened there; the message says what was left out.
	ConditionStatusTruncated = "StatusTruncated"
)

// Sync options.
const (
	SyncOptionCreateNamespace = "CreateNamespace=true"
)

// Annotations the engine reads.
const (
	// AnnotationRefresh on an Application asks for a Git fetch and a
	// reconcile now; the engine removes it once done. On the hub the
	// principal relays it to the spoke and removes it once the spoke's
	// answer is written. The value identifies the request (an answer
	// removes only the value it answered): write a new one each time.
	AnnotationRefresh = "gitops.tether.dev/refresh"
	// AnnotationSyncWave orders resources within a sync (lower first).
	AnnotationSyncWave = "gitops.tether.dev/sync-wave"
	// AnnotationTrackingID marks a live object as created by an
	// Application: "<app namespace>/<app name>". Prune only ever deletes
	// objects carrying the pruning Application's ID.
	AnnotationTrackingID = "gitops.tether.dev/tracking-id"
	// LabelManaged lets the engine watch only the objects it manages.
	LabelManaged = "gitops.tether.dev/managed"
)

// Application is the GitOps unit: a Git source rendered and applied to a
// namespace of the cluster it lives in.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=app;apps,categories=tether
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Sync",type=string,JSONPath=`.status.sync.status`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health.status`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.sync.revision`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ApplicationSpec `json:"spec"`
	// Operation requests a one-shot sync. The engine runs it once and
	// clears it; its result shows in status.operationState.
	// +optional
	Operation *Operation `json:"operation,omitempty"`
	// +optional
	Status ApplicationStatus `json:"status,omitempty"`
}

// ApplicationSpec says what to sync, where, and how.
type ApplicationSpec struct {
	Source      Source      `json:"source"`
	Destination Destination `json:"destination"`
	// +optional
	SyncPolicy *SyncPolicy `json:"syncPolicy,omitempty"`
}

// Source is a folder of a Git repository at a revision.
type Source struct {
	// RepoURL is the repository's clone URL (smart HTTP).
	// +kubebuilder:validation:MinLength=1
	RepoURL string `json:"repoURL"`
	// TargetRevision is a branch, a tag or a commit SHA; empty means HEAD.
	// +optional
	TargetRevision string `json:"targetRevision,omitempty"`
	// Path is the folder inside the repository; empty means the root.
	// +optional
	Path string `json:"path,omitempty"`
	// Kustomize adjusts a Kustomize rendering; a folder with a
	// kustomization.yaml is rendered with Kustomize either way.
	// +optional
	Kustomize *KustomizeSource `json:"kustomize,omitempty"`
}

// KustomizeSource holds overrides applied on top of the folder's
// kustomization.
type KustomizeSource struct {
	// +optional
	NamePrefix string `json:"namePrefix,omitempty"`
	// +optional
	NameSuffix string `json:"nameSuffix,omitempty"`
	// +optional
	CommonLabels map[string]string `json:"commonLabels,omitempty"`
	// Images overrides images, each "name=newName:tag" or "name:tag".
	// +optional
	Images []string `json:"images,omitempty"`
}

// Destination is where the manifests go. The cluster is implied: the one
// the Application lives in.
type Destination struct {
	// Namespace for namespaced resources that do not name one.
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`
}

// SyncPolicy says when to sync without being asked.
type SyncPolicy struct {
	// +optional
	Automated *Automated `json:"automated,omitempty"`
	// SyncOptions such as "CreateNamespace=true".
	// +optional
	SyncOptions []string `json:"syncOptions,omitempty"`
}

// Automated sync: apply whenever Git moves.
type Automated struct {
	// Prune deletes resources that left Git (only ones this Application
	// created).
	// +optional
	Prune bool `json:"prune,omitempty"`
	// SelfHeal re-applies when the live state drifts from Git.
	// +optional
	SelfHeal bool `json:"selfHeal,omitempty"`
}

// Operation is a one-shot request.
type Operation struct {
	// ID identifies the request so it runs once even if delivered twice.
	// +optional
	ID string `json:"id,omitempty"`
	// +optional
	InitiatedBy string         `json:"initiatedBy,omitempty"`
	Sync        *SyncOperation `json:"sync,omitempty"`
}

// SyncOperation asks for a sync, optionally at a given revision.
type SyncOperation struct {
	// Revision overrides the source's targetRevision for this sync.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Prune deletes resources that left Git during this sync.
	// +optional
	Prune bool `json:"prune,omitempty"`
}

// ApplicationStatus is what the engine observed and did.
type ApplicationStatus struct {
	// +optional
	Sync SyncStatus `json:"sync,omitempty"`
	// +optional
	Health HealthStatus `json:"health,omitempty"`
	// +optional
	Resources []ResourceStatus `json:"resources,omitempty"`
	// +optional
	Conditions []ApplicationCondition `json:"conditions,omitempty"`
	// +optional
	OperationState *OperationState `json:"operationState,omitempty"`
	// History lists the last synced revisions, newest last.
	// +optional
	History []RevisionHistory `json:"history,omitempty"`
	// +optional
	ReconciledAt *metav1.Time `json:"reconciledAt,omitempty"`
}

// SyncStatus compares Git with the cluster.
type SyncStatus struct {
	// +kubebuilder:validation:Enum=Synced;OutOfSync;Unknown
	Status string `json:"status,omitempty"`
	// Revision is the commit SHA compared.
	// +optional
	Revision string `json:"revision,omitempty"`
}

// HealthStatus is the health of a resource or of the whole Application.
type HealthStatus struct {
	// +kubebuilder:validation:Enum=Healthy;Progressing;Degraded;Missing;Unknown
	Status string `json:"status,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// ResourceStatus is one managed resource.
type ResourceStatus struct {
	// +optional
	Group   string `json:"group,omitempty"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Status is Synced or OutOfSync.
	Status string `json:"status"`
	// +optional
	Health *HealthStatus `json:"health,omitempty"`
	// RequiresPruning marks a resource that left Git but is still live.
	// +optional
	RequiresPruning bool `json:"requiresPruning,omitempty"`
}

// ApplicationCondition reports an error or warning.
type ApplicationCondition struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
}

// OperationState is the progress and result of the last operation.
type OperationState struct {
	Operation Operation `json:"operation"`
	// +kubebuilder:validation:Enum=Running;Succeeded;Failed
	Phase string `json:"phase"`
	// +optional
	Message string `json:"message,omitempty"`
	// SyncRevision is the commit SHA the sync applied.
	// +optional
	SyncRevision string      `json:"syncRevision,omitempty"`
	StartedAt    metav1.Time `json:"startedAt"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// RevisionHistory is one completed sync.
type RevisionHistory struct {
	ID         int64       `json:"id"`
	Revision   string      `json:"revision"`
	DeployedAt metav1.Time `json:"deployedAt"`
	// +optional
	InitiatedBy string `json:"initiatedBy,omitempty"`
}

// ApplicationList is a list of Applications.
//
// +kubebuilder:object:root=true
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}

// SetCondition sets the condition of type typ to msg, keeping its
// transition time when the message is unchanged.
func (s *ApplicationStatus) SetCondition(typ, msg string, now metav1.Time) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			if s.Conditions[i].Message != msg {
				s.Conditions[i].Message, s.Conditions[i].LastTransitionTime = msg, &now
			}
			return
		}
	}
	s.Conditions = append(s.Conditions, ApplicationCondition{Type: typ, Message: msg, LastTransitionTime: &now})
}

// RemoveCondition removes the condition of type typ, and says whether
// there was one.
func (s *ApplicationStatus) RemoveCondition(typ string) bool {
	out := make([]ApplicationCondition, 0, len(s.Conditions))
	for _, c := range s.Conditions {
		if c.Type != typ {
			out = append(out, c)
		}
	}
	removed := len(out) != len(s.Conditions)
	if len(out) == 0 {
		out = nil
	}
	s.Conditions = out
	return removed
}
