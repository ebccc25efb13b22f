package protocol

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is an Observer writing down what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
	// queued holds the queued times Acked and Handled were given.
	queued []time.Time
}

func (r *recorder) add(e string, q ...time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.queued = append(r.queued, q...)
}

func (r *recorder) Sent(kind string)                      { r.add("sent " + kind) }
func (r *recorder) Acked(kind string, queued time.Time)   { r.add("acked "+kind, queued) }
func (r *recorder) Nacked(kind string)                    { r.add("nacked " + kind) }
func (r *recorder) Received(kind string)                  { r.add("received " + kind) }
func (r *recorder) Handled(kind string, queued time.Time) { r.add("handled "+kind, queued) }
func (r *recorder) Rejected(kind string)                  { r.add("rejected " + kind) }

func (r *recorder) count(e string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, got := range r.events {
		if got == e {
			n++
		}
	}
	return n
}

func (r *recorder) waitFor(t *testing.T, e string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); r.count(e) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%q seen %d times, want %d; events %v", e, r.count(e), n, r.events)
		}
	}
}

// The outbox stamps what it queues, and an observed stream tells what
// the peer acknowledged and refused, and what we handled and refused,
// with the queued times propagation is measured from.
func TestObservedStreamCountsAcksNacksAndCarriesQueuedTimes(t *testing.T) {
	before := time.Now()
	out := NewOutbox()
	out.PutState("app/web", Message{App: &AppUpdate{Name: "web"}})
	out.PutIntent(op("1"))
	out.PutIntent(op("2"))
	f := newFakeStream(false)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Observe(f, rec), out, func(_ context.Context, m *Message) error {
			if m.Seq == 2 {
				return Reject(errors.New("refused"))
			}
			return nil
		}, nil)
	}()
	var sent []*Message
	for range 3 {
		m := nextSent(t, f)
		if m.Queued.Before(before) || m.Queued.After(time.Now()) {
			t.Errorf("message %d queued at %v, want the time it was put in the outbox", m.Seq, m.Queued)
		}
		sent = append(sent, m)
	}
	// The peer handles 1, refuses 2 (a nack with an ack of it) and
	// handles 3.
	<-f.waiting
	f.recv <- &Message{Ack: 2, Nack: &Nack{Seq: 2, Reason: "no"}}
	<-f.waiting
	f.recv <- &Message{Ack: 3}
	rec.waitFor(t, "acked app", 1)
	rec.waitFor(t, "acked operation", 1)
	rec.waitFor(t, "nacked operation", 1)

	// The peer's messages: the first handled, the second refused.
	peerQueued := time.Now().Add(-3 * time.Second)
	<-f.waiting
	f.recv <- &Message{Seq: 1, Queued: peerQueued, Status: &StatusUpdate{Name: "web"}}
	<-f.waiting
	f.recv <- &Message{Seq: 2, Queued: peerQueued, Status: &StatusUpdate{Name: "db"}}
	rec.waitFor(t, "handled status", 1)
	rec.waitFor(t, "rejected status", 1)
	<-f.waiting

	if n := rec.count("sent app") + rec.count("sent operation"); n != 3 {
		t.Errorf("%d sent, want 3", n)
	}
	if n := rec.count("received status"); n != 2 {
		t.Errorf("%d received, want 2", n)
	}
	for _, e := range []string{"acked operation", "handled status"} {
		if n := rec.count(e); n != 1 {
			t.Errorf("%q %d times, want once: a refused message is not also acknowledged", e, n)
		}
	}
	rec.mu.Lock()
	queued := slices.Clone(rec.queued)
	rec.mu.Unlock()
	want := []time.Time{sent[0].Queued, sent[2].Queued, peerQueued}
	if fmt.Sprint(queued) != fmt.Sprint(want) {
		t.Errorf("queued times given %v, want %v (ours acknowledged, then the peer's handled)", queued, want)
	}
	cancel()
	<-done
}

// A sender's own stamp (a status's time of reading) is kept.
func TestOutboxKeepsASendersStamp(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out := NewOutbox()
	out.PutIntent(Message{Queued: at, Refresh: &RefreshRequest{RepoURL: "r"}})
	m, ok := out.Open().Next()
	if !ok || !m.Queued.Equal(at) {
		t.Errorf("queued %v, want %v", m.Queued, at)
	}
}
