package protocol

import (
	"testing"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

func status(name, rev string) Message {
	return Message{Status: &StatusUpdate{Name: name, Status: &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Revision: rev}}}}
}

func drain(o *Cursor) []*Message {
	var out []*Message
	for {
		m, ok := o.Next()
		if !ok {
			return out
		}
		out = append(out, m)
	}
}

func TestStatesCoalesceButIntentsNeverDo(t *testing.T) {
	o := NewOutbox()
	o.PutState("status/web", status("web", "a"))
	o.PutIntent(Message{Operation: &OperationRequest{App: "web", Operation: v1alpha1.Operation{ID: "op1"}}})
	o.PutState("status/web", status("web", "b"))
	o.PutIntent(Message{Operation: &OperationRequest{App: "web", Operation: v1alpha1.Operation{ID: "op2"}}})
	o.PutIntent(Message{Refresh: &RefreshRequest{RepoURL: "r"}})
	o.PutIntent(Message{Refresh: &RefreshRequest{RepoURL: "r"}})

	got := drain(o.Open())
	if len(got) != 5 {
		t.Fatalf("got %d messages, want 5 (1 coalesced status + 4 intents)", len(got))
	}
	if got[0].Status.Status.Sync.Revision != "b" {
		t.Fatalf("coalesced status = %q, want the latest, b", got[0].Status.Status.Sync.Revision)
	}
	if got[1].Operation.Operation.ID != "op1" || got[2].Operation.Operation.ID != "op2" {
		t.Fatal("operations reordered or lost")
	}
	for i, m := range got {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}
}

func TestUnackedMessagesAreResentInOrderAfterReset(t *testing.T) {
	o := NewOutbox()
	for _, id := range []string{"1", "2", "3"} {
		o.PutIntent(Message{Operation: &OperationRequest{App: "a", Operation: v1alpha1.Operation{ID: id}}})
	}
	c := o.Open()
	first := drain(c)
	c.Ack(first[0].Seq) // only the first arrived before the stream broke
	o.PutState("status/a", status("a", "x"))
	c = o.Open()
	again := drain(c)
	if len(again) != 3 {
		t.Fatalf("after reset got %d messages, want 2 unacked intents + 1 state", len(again))
	}
	if again[0].Operation.Operation.ID != "2" || again[1].Operation.Operation.ID != "3" || again[2].Status == nil {
		t.Fatalf("resend order wrong: %+v", again)
	}
	if again[0].Seq != 1 {
		t.Fatalf("numbering did not restart: %d", again[0].Seq)
	}
	c.Ack(3)
	if o.Len() != 0 {
		t.Fatalf("%d left after acking everything", o.Len())
	}
}

func TestInFlightStateIsFollowedByTheNewerOneAndOnlyTheNewestSurvivesReset(t *testing.T) {
	o := NewOutbox()
	o.PutState("status/a", status("a", "1"))
	c := o.Open()
	inflight := drain(c)
	o.PutState("status/a", status("a", "2"))
	if got := drain(c); len(got) != 1 || got[0].Status.Status.Sync.Revision != "2" {
		t.Fatalf("newer state not queued behind the in-flight one: %+v", got)
	}
	o.PutState("status/a", status("a", "3"))
	got := drain(o.Open())
	if len(got) != 1 || got[0].Status.Status.Sync.Revision != "3" {
		t.Fatalf("after reset want only the newest state, got %d (%+v)", len(got), got)
	}
	_ = inflight
}

func TestSpecChecksumChangesWithTheSpec(t *testing.T) {
	a := &v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: "r", Path: "p"}}
	b := a.DeepCopy()
	if SpecChecksum(a) != SpecChecksum(b) {
		t.Fatal("equal specs, different checksums")
	}
	b.Source.Path = "q"
	if SpecChecksum(a) == SpecChecksum(b) {
		t.Fatal("different specs, same checksum")
	}
}

// The outbox-level rule behind the session tests: after an Open, an
// earlier stream's cursor numbers nothing and acknowledges nothing.
func TestOpenVoidsEarlierCursors(t *testing.T) {
	o := NewOutbox()
	o.PutIntent(Message{Refresh: &RefreshRequest{RepoURL: "a"}})
	old := o.Open()
	if m, ok := old.Next(); !ok || m.Seq != 1 {
		t.Fatalf("old stream's first message: %+v %v", m, ok)
	}
	cur := o.Open()
	o.PutIntent(Message{Refresh: &RefreshRequest{RepoURL: "b"}})
	if m, ok := old.Next(); ok {
		t.Fatalf("a replaced cursor numbered %+v", m)
	}
	got := drain(cur)
	if len(got) != 2 || got[0].Refresh.RepoURL != "a" || got[1].Refresh.RepoURL != "b" {
		t.Fatalf("new stream got %+v, want a then b", got)
	}
	old.Ack(2)
	if o.Len() != 2 {
		t.Fatalf("a replaced cursor's ack removed entries: %d left, want 2", o.Len())
	}
	cur.Ack(2)
	if o.Len() != 0 {
		t.Fatalf("%d left after the current stream acknowledged both", o.Len())
	}
}
