package sample

import (
	"errors"
	"strconv"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// SetReplicas returns content with spec.replicas set to n in every
// Deployment of the (possibly multi-document) YAML. It edits the YAML tree
// rather than decoding into API types so comments, field order and the other
// documents survive the change, as they would in a hand edit.
func SetReplicas(content []byte, n int) ([]byte, error) {
	if n < 0 {
		return nil, errors.New("replicas must not be negative")
	}
	nodes, err := kio.FromBytes(content)
	if err != nil {
		return nil, err
	}
	found := false
	for _, node := range nodes {
		if node.GetKind() != "Deployment" {
			continue
		}
		found = true
		if err := node.PipeE(
			yaml.LookupCreate(yaml.MappingNode, "spec"),
			yaml.SetField("replicas", yaml.NewScalarRNode(strconv.Itoa(n))),
		); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, errors.New("no Deployment found")
	}
	out, err := kio.StringAll(nodes)
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}
