package sample

import (
	"errors"
	"strconv"
	"strings"

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

// SetImage returns content with image set on every container and init
// container of every Deployment whose image is another tag (or digest) of
// the same repository, and reports whether any changed. Containers running
// another repository's image are left alone, as is content without such a
// container, which is returned unchanged. Like SetReplicas it edits the YAML
// tree, so the rest of the file survives as written.
func SetImage(content []byte, image string) ([]byte, bool, error) {
	repo := imageRepository(image)
	if repo == "" {
		return nil, false, errors.New("empty image reference")
	}
	nodes, err := kio.FromBytes(content)
	if err != nil {
		return nil, false, err
	}
	changed := false
	for _, node := range nodes {
		if node.GetKind() != "Deployment" {
			continue
		}
		for _, list := range []string{"containers", "initContainers"} {
			seq, err := node.Pipe(yaml.Lookup("spec", "template", "spec", list))
			if err != nil || seq == nil {
				continue
			}
			err = seq.VisitElements(func(c *yaml.RNode) error {
				f := c.Field("image")
				if f == nil || f.Value == nil {
					return nil
				}
				cur := yaml.GetValue(f.Value)
				if cur == image || imageRepository(cur) != repo {
					return nil
				}
				changed = true
				return c.PipeE(yaml.SetField("image", yaml.NewScalarRNode(image)))
			})
			if err != nil {
				return nil, false, err
			}
		}
	}
	if !changed {
		return content, false, nil
	}
	out, err := kio.StringAll(nodes)
	if err != nil {
		return nil, false, err
	}
	return []byte(out), true, nil
}

// imageRepository is ref without its tag or digest:
// "tether.local/tether:abc" and "tether.local/tether@sha256:…" both give
// "tether.local/tether", and a registry port ("host:5000/x") is kept.
func imageRepository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}
