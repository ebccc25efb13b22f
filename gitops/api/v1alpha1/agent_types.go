package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Agent is a spoke's connection to the principal, as the hub sees it. The
// principal keeps one per spoke in the hub's tether-system namespace, so
// kubectl and the TUI can show the fleet.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=tether
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Connected",type=boolean,JSONPath=`.status.connected`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Apps",type=integer,JSONPath=`.status.applications`
// +kubebuilder:printcolumn:name="Outbox",type=integer,JSONPath=`.status.pending`
// +kubebuilder:printcolumn:name="Restarts",type=integer,JSONPath=`.status.restarts`
// +kubebuilder:printcolumn:name="Last Seen",type=date,JSONPath=`.status.lastSeen`
type Agent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec AgentSpec `json:"spec,omitempty"`
	// +optional
	Status AgentStatus `json:"status,omitempty"`
}

// AgentSpec says how the spoke is run.
type AgentSpec struct {
	// Mode is "managed": the hub is the source of truth.
	// +optional
	Mode string `json:"mode,omitempty"`
}

// AgentStatus is the connection's state.
type AgentStatus struct {
	Connected bool `json:"connected"`
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// +optional
	ConnectedSince *metav1.Time `json:"connectedSince,omitempty"`
	// +optional
	Version string `json:"version,omitempty"`
	// Applications is how many Applications the hub holds for the spoke.
	// +optional
	Applications int `json:"applications,omitempty"`
	// +optional
	Address string `json:"address,omitempty"`
	// Pending is how many messages await the agent's acknowledgement.
	// +optional
	Pending int `json:"pending,omitempty"`
	// LastHubToSpokeMillis is the latest hub-to-spoke propagation delay:
	// from the principal queuing a hub change (a spec, an operation, a
	// refresh) to the agent acknowledging it handled it on the spoke, by
	// the principal's clock alone. Unset until one was measured; a
	// restarted principal shows the last one until it measures anew.
	// +optional
	LastHubToSpokeMillis *int64 `json:"lastHubToSpokeMillis,omitempty"`
	// LastSpokeToHubMillis is the latest spoke-to-hub propagation delay:
	// from the agent reading an Application's status on the spoke to the
	// principal writing it on the hub. It compares the spoke's clock with
	// the principal's, so skew between hosts adds to it (none on a
	// workbench, where both are one machine's).
	// +optional
	LastSpokeToHubMillis *int64 `json:"lastSpokeToHubMillis,omitempty"`
	// Restarts is how often the agent's process was restarted, as it said
	// at its last connection: by the workbench's supervisor, or the
	// kubelet (its Pod's restartCount).
	// +optional
	Restarts int `json:"restarts,omitempty"`
}

// AgentList is a list of Agents.
//
// +kubebuilder:object:root=true
type AgentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Agent `json:"items"`
}
