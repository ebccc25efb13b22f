package engine

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// inSync reports whether live holds every field desired sets, and the first
// path where it does not.
//
// Comparing only the fields Git sets (a subset match) is what lets the
// engine compare against the informer cache: the API server adds defaults
// (imagePullPolicy, protocol, clusterIP …) that Git never mentions, and
// those must not count as drift. Server-side apply owns the same fields, so
// a field Git sets and the cluster changed is exactly what self-heal reverts.
func inSync(desired, live *unstructured.Unstructured) (bool, string) {
	if live == nil {
		return false, "missing"
	}
	for k, v := range desired.Object {
		switch k {
		case "status", "apiVersion", "kind":
			continue
		case "metadata":
			dm, _ := v.(map[string]any)
			lm, _ := live.Object["metadata"].(map[string]any)
			for _, f := range []string{"labels", "annotations"} {
				if dv, ok := dm[f]; ok {
					if ok, path := subset(dv, lm[f], "metadata."+f); !ok {
						return false, path
					}
				}
			}
			continue
		}
		if ok, path := subset(v, live.Object[k], k); !ok {
			return false, path
		}
	}
	return true, ""
}

func subset(desired, live any, path string) (bool, string) {
	switch d := desired.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return len(d) == 0 && live == nil, path
		}
		for k, dv := range d {
			if ok, p := subset(dv, l[k], path+"."+k); !ok {
				return false, p
			}
		}
		return true, ""
	case []any:
		l, ok := live.([]any)
		if !ok {
			return len(d) == 0 && live == nil, path
		}
		if len(d) != len(l) {
			return false, path
		}
		for i := range d {
			if ok, p := subset(d[i], l[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return false, p
			}
		}
		return true, ""
	case nil:
		return live == nil, path
	default:
		return scalarEqual(d, live), path
	}
}

// scalarEqual treats numbers by value (YAML ints vs JSON floats) and
// quantities by amount ("0.5" and "500m" are the same CPU).
func scalarEqual(d, l any) bool {
	if reflect.DeepEqual(d, l) {
		return true
	}
	df, dok := number(d)
	lf, lok := number(l)
	if dok && lok {
		return df == lf
	}
	ds, ls := fmt.Sprint(d), fmt.Sprint(l)
	if ds == ls {
		return true
	}
	dq, err1 := resource.ParseQuantity(ds)
	lq, err2 := resource.ParseQuantity(ls)
	return err1 == nil && err2 == nil && dq.Cmp(lq) == 0
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
