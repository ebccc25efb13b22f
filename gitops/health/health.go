package health

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Code is the health verdict for one object or, through Worst, for many.
type Code string

const (
	// Healthy: the object is what its spec asks for.
	Healthy Code = "Healthy"
	// Progressing: not there yet, but expected to get there on its own.
	Progressing Code = "Progressing"
	// Degraded: failed, or will not get there without someone acting.
	Degraded Code = "Degraded"
	// Missing: the object does not exist in the cluster.
	Missing Code = "Missing"
	// Unknown: the object could not be judged (malformed status, unknown pod phase).
	Unknown Code = "Unknown"
)

// Status is a Code with a short human explanation, suitable for a status
// condition or a UI column.
type Status struct {
	Code    Code
	Message string
}

// rank orders codes from best to worst for aggregation:
//
//	Healthy < Progressing < Unknown < Missing < Degraded
//
// Progressing sits just above Healthy because it resolves by itself. Unknown
// ranks above it so that an object we cannot judge is never hidden behind
// one that is merely busy, but below Missing and Degraded, which are facts
// that need action. Missing ranks below Degraded because a missing object is
// usually just not synced yet, while Degraded means something is broken.
// Argo CD orders Missing above Degraded; we do not, since for a fleet view
// "broken" is the more urgent signal.
func (c Code) rank() int {
	switch c {
	case Healthy:
		return 0
	case Progressing:
		return 1
	case Missing:
		return 3
	case Degraded:
		return 4
	default: // Unknown and anything unrecognised
		return 2
	}
}

// Worst returns whichever of a and b is worse, for aggregating the health of
// an Application from its objects. Unrecognised codes count as Unknown.
func Worst(a, b Code) Code {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// IsWorse reports whether a is strictly worse than b.
func IsWorse(a, b Code) bool { return a.rank() > b.rank() }

// Assess judges one live object. A nil object is Missing.
func Assess(obj *unstructured.Unstructured) Status {
	if obj == nil {
		return Status{Code: Missing, Message: "Resource does not exist"}
	}
	// A finalizer-held object is on its way out whatever its status says;
	// reporting its last status would show e.g. Healthy for a dying Deployment.
	if obj.GetDeletionTimestamp() != nil {
		return Status{Code: Progressing, Message: "Pending deletion"}
	}

	gk := obj.GroupVersionKind().GroupKind()
	switch gk {
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
		return deploymentHealth(obj)
	case schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		return statefulSetHealth(obj)
	case schema.GroupKind{Group: "apps", Kind: "DaemonSet"}:
		return daemonSetHealth(obj)
	case schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}:
		return replicaSetHealth(obj)
	case schema.GroupKind{Kind: "Pod"}:
		return podHealth(obj)
	case schema.GroupKind{Kind: "Service"}:
		return serviceHealth(obj)
	case schema.GroupKind{Kind: "PersistentVolumeClaim"}:
		return pvcHealth(obj)
	case schema.GroupKind{Kind: "Namespace"}:
		return namespaceHealth(obj)
	case schema.GroupKind{Group: "batch", Kind: "Job"}:
		return jobHealth(obj)
	}
	return conditionsHealth(obj)
}

// convert decodes obj into a typed API struct. A failure means the live
// status does not match the schema we know, which we cannot judge.
func convert(obj *unstructured.Unstructured, into any) *Status {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, into); err != nil {
		return &Status{Code: Unknown, Message: fmt.Sprintf("cannot read %s status: %v", obj.GetKind(), err)}
	}
	return nil
}

// conditionsHealth covers CRDs and any other kind through the conventions
// most controllers follow (kstatus): observedGeneration, Stalled, Ready or
// Available, Reconciling. Objects without a status (ConfigMap, Secret, RBAC)
// have nothing to converge and are Healthy.
func conditionsHealth(obj *unstructured.Unstructured) Status {
	status, ok := obj.Object["status"].(map[string]any)
	if !ok || len(status) == 0 {
		return Status{Code: Healthy}
	}

	conds := map[string]map[string]any{}
	list, _ := status["conditions"].([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			if t, _ := m["type"].(string); t != "" {
				conds[t] = m
			}
		}
	}
	describe := func(c map[string]any) string {
		msg, _ := c["message"].(string)
		if msg == "" {
			msg, _ = c["reason"].(string)
		}
		return msg
	}

	if c := conds["Stalled"]; c != nil && c["status"] == "True" {
		return Status{Code: Degraded, Message: or(describe(c), "Stalled")}
	}
	// A condition describes the generation the controller last saw; until it
	// has seen the current one, a True Ready is about the old spec.
	if og, ok, _ := unstructured.NestedInt64(status, "observedGeneration"); ok && og < obj.GetGeneration() {
		return Status{Code: Progressing, Message: fmt.Sprintf("Waiting for the controller to observe generation %d", obj.GetGeneration())}
	}
	for _, t := range []string{"Ready", "Available"} {
		c := conds[t]
		if c == nil {
			continue
		}
		switch c["status"] {
		case "True":
			return Status{Code: Healthy, Message: describe(c)}
		case "False":
			reason, _ := c["reason"].(string)
			if progressingReason(reason) || (conds["Reconciling"] != nil && conds["Reconciling"]["status"] == "True") {
				return Status{Code: Progressing, Message: or(describe(c), "Not "+strings.ToLower(t)+" yet")}
			}
			return Status{Code: Degraded, Message: or(describe(c), "Not "+strings.ToLower(t))}
		default:
			return Status{Code: Progressing, Message: or(describe(c), t+" is unknown")}
		}
	}
	if c := conds["Reconciling"]; c != nil && c["status"] == "True" {
		return Status{Code: Progressing, Message: or(describe(c), "Reconciling")}
	}
	return Status{Code: Healthy}
}

// progressingReason recognises the reasons controllers commonly give for a
// False Ready that is expected to turn True by itself.
func progressingReason(reason string) bool {
	r := strings.ToLower(reason)
	for _, s := range []string{"progress", "reconcil", "pending", "waiting", "creating", "initializ", "provisioning", "updating", "deploying", "starting", "scaling"} {
		if strings.Contains(r, s) {
			return true
		}
	}
	return false
}

func or(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}
