package v1alpha1

import (
	"encoding/json"
	"fmt"
	"strings"
)

// AnnotationLeasedFields on a live object says that another controller
// holds some of its fields for as long as a Lease (coordination.k8s.io/v1,
// in the object's namespace) is renewed: the engine compares and applies
// those fields as the cluster has them meanwhile, so self-heal does not
// undo the other controller's change, and takes them back for Git as soon
// as the Lease lapses or is deleted. tether's intercepts use it for the
// selector of a Service they route to a traffic-agent; anything that
// borrows fields of GitOps-managed objects for a while may.
const AnnotationLeasedFields = "gitops.tether.dev/leased-fields"

// LeasedFields is the value of AnnotationLeasedFields, as JSON.
type LeasedFields struct {
	// Lease is the name of the Lease whose renewal keeps the fields.
	Lease string `json:"lease"`
	// Fields are dotted paths of map fields, such as "spec.selector".
	Fields []string `json:"fields"`
}

// ParseLeasedFields reads the annotation's value, nil when there is none.
func ParseLeasedFields(annotations map[string]string) (*LeasedFields, error) {
	v, ok := annotations[AnnotationLeasedFields]
	if !ok {
		return nil, nil
	}
	var l LeasedFields
	if err := json.Unmarshal([]byte(v), &l); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", AnnotationLeasedFields, err)
	}
	if l.Lease == "" || len(l.Fields) == 0 {
		return nil, fmt.Errorf("annotation %s names no lease or no fields: %q", AnnotationLeasedFields, v)
	}
	for _, f := range l.Fields {
		if f == "" || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") || strings.HasPrefix(f, "metadata.") {
			return nil, fmt.Errorf("annotation %s: field %q is not a dotted path outside metadata", AnnotationLeasedFields, f)
		}
	}
	return &l, nil
}

// Value is the annotation's value for l.
func (l LeasedFields) Value() string {
	b, _ := json.Marshal(l)
	return string(b)
}
