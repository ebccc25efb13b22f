package sample

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/cluster/svcproxy"
)

// TestStandInClaimsSamplePodsOnly: the sample's pods get the stand-in's
// address for ServerPort; a traffic-agent pod carrying the workload's
// labels keeps its own.
func TestStandInClaimsSamplePodsOnly(t *testing.T) {
	key := svcproxy.LocalAddressKey(ServerPort)
	pod := func(name string, labels, ann map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "sample", Labels: labels, Annotations: ann}}
	}
	cs := fake.NewClientset(
		pod("web-1", map[string]string{"app.kubernetes.io/name": AppName}, nil),
		pod("web-2", map[string]string{"app.kubernetes.io/name": AppName}, map[string]string{key: "127.0.0.1:1"}),
		pod("agent", map[string]string{"app.kubernetes.io/name": AppName, "app.kubernetes.io/component": "traffic-agent"}, map[string]string{key: "127.0.0.1:2"}),
		pod("other", map[string]string{"app.kubernetes.io/name": "other"}, nil),
	)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- StandIn(ctx, cs, "sample", "127.0.0.1:9", nil) }()
	want := map[string]string{"web-1": "127.0.0.1:9", "web-2": "127.0.0.1:9", "agent": "127.0.0.1:2", "other": ""}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := map[string]string{}
		for name := range want {
			p, err := cs.CoreV1().Pods("sample").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got[name] = p.Annotations[key]
		}
		same := true
		for name, w := range want {
			same = same && got[name] == w
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("annotations %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("StandIn after its context ended: %v", err)
	}
}
