package fleet

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRolledOut(t *testing.T) {
	d := func(gen, observed int64, replicas, updated, available int32) *appsv1.Deployment {
		one := int32(1)
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: &one},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated, AvailableReplicas: available},
		}
	}
	for name, tc := range map[string]struct {
		d    *appsv1.Deployment
		want bool
	}{
		"rolled out":                      {d(2, 2, 1, 1, 1), true},
		"new spec not observed yet":       {d(3, 2, 1, 1, 1), false},
		"old pod still counted available": {d(2, 2, 1, 0, 1), false},
		"old and new pods side by side":   {d(2, 2, 2, 1, 1), false},
		"new pod not available yet":       {d(2, 2, 1, 1, 0), false},
	} {
		if got := rolledOut(tc.d); got != tc.want {
			t.Errorf("%s: rolledOut = %v, want %v", name, got, tc.want)
		}
	}
}
