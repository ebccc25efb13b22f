package fleet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServingPod(t *testing.T) {
	pod := func(name string, phase corev1.PodPhase, ready, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		if deleting {
			now := metav1.NewTime(time.Now())
			p.DeletionTimestamp = &now
		}
		return p
	}
	pods := []corev1.Pod{
		pod("old", corev1.PodRunning, true, true),
		pod("starting", corev1.PodRunning, false, false),
		pod("pending", corev1.PodPending, false, false),
		pod("new", corev1.PodRunning, true, false),
	}
	if got := servingPod(pods); got != "new" {
		t.Errorf("servingPod = %q, want the running, ready, not terminating one", got)
	}
	if got := servingPod(pods[:3]); got != "" {
		t.Errorf("servingPod = %q, want none", got)
	}
}
