package intercept

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tether-dev/tether/intercept/record"
)

func TestReachURLSaysHTTPWhenThePortDoes(t *testing.T) {
	http := "http"
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80},
		{Name: "http-admin", Port: 81},
		{Name: "web", Port: 82, AppProtocol: &http},
		{Name: "postgres", Port: 5432},
	}}}
	for port, want := range map[int32]string{
		80:   "http://127.0.0.1:4000/",
		81:   "http://127.0.0.1:4000/",
		82:   "http://127.0.0.1:4000/",
		5432: "127.0.0.1:4000",
		9999: "127.0.0.1:4000", // not a port of the Service
	} {
		if got := ReachURL(svc, port, "127.0.0.1:4000"); got != want {
			t.Errorf("ReachURL(port %d) = %q, want %q", port, got, want)
		}
	}
}

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
