package v1alpha1

import (
	_ "embed"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and version of the API.
const (
	Group   = "gitops.tether.dev"
	Version = "v1alpha1"
)

// GroupVersion is the API's group and version.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// ApplicationsResource is the Applications' resource, for dynamic clients.
var ApplicationsResource = GroupVersion.WithResource("applications")

// AgentsResource is the Agents' resource, for dynamic clients.
var AgentsResource = GroupVersion.WithResource("agents")

//go:embed crd/gitops.tether.dev_applications.yaml
var applicationCRD []byte

//go:embed crd/gitops.tether.dev_agents.yaml
var agentCRD []byte

// ApplicationCRD returns the generated Application CRD (YAML).
func ApplicationCRD() []byte { return append([]byte(nil), applicationCRD...) }

// AgentCRD returns the generated Agent CRD (YAML).
func AgentCRD() []byte { return append([]byte(nil), agentCRD...) }

// AddToScheme registers the API's types.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Application{}, &ApplicationList{}, &Agent{}, &AgentList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
