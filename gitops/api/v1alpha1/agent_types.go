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
}

// AgentList is a list of Agents.
//
// +kubebuilder:object:root=true
type AgentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Agent `json:"items"`
}
