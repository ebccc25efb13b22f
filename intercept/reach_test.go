package intercept

import (
	"testing"

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
