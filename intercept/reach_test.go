package intercept

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tether-dev/tether/cluster/svcproxy"
	"github.com/tether-dev/tether/intercept/record"
)

// TestRecordedReach: what the holder records, another process reads, per
// intercept, until the holder forgets it.
func TestRecordedReach(t *testing.T) {
	dir := t.TempDir()
	a := record.Record{Cluster: "spoke-1", Namespace: "sample", Name: "web-80"}
	b := record.Record{Cluster: "spoke-2", Namespace: "sample", Name: "web-80"}
	forget := RecordReach(dir, a, "http://127.0.0.1:4000/")
	if got := RecordedReach(dir, a); got != "http://127.0.0.1:4000/" {
		t.Fatalf("recorded %q", got)
	}
	if got := RecordedReach(dir, b); got != "" {
		t.Fatalf("another intercept's reach: %q, want none", got)
	}
	forget()
	if got := RecordedReach(dir, a); got != "" {
		t.Fatalf("after forget: %q", got)
	}
}

// ReachOf prefers what the holder recorded, else the embedded service
// proxy's route, else says why there is none.
func TestReachOf(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rec := record.Record{Cluster: "spoke-1", Namespace: "sample", Service: "web", Port: 80, Name: "web-80"}
	cs := fake.NewClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "sample"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	if got, err := ReachOf(ctx, dir, cs, rec); err == nil || got != "" {
		t.Fatalf("no record, no proxy: %q, %v; want an error", got, err)
	}
	path := svcproxy.RoutesFile(dir, "spoke-1")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]svcproxy.Route{{Namespace: "sample", Service: "web", Port: 80, Address: "127.0.0.1:4000"}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReachOf(ctx, dir, cs, rec); err != nil || got != "http://127.0.0.1:4000/" {
		t.Errorf("the proxy's route: %q, %v", got, err)
	}
	forget := RecordReach(dir, rec, "http://127.0.0.1:5000/")
	defer forget()
	if got, err := ReachOf(ctx, dir, cs, rec); err != nil || got != "http://127.0.0.1:5000/" {
		t.Errorf("the holder's record: %q, %v", got, err)
	}
}
