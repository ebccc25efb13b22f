package protocol

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A message the receiver can never handle (a spec the API server refuses)
// used to end the session unacknowledged, so it came first again on every
// reconnect and nothing behind it was ever handled. It is answered with a
// Nack, covered by an Ack so a peer that does not know Nack drops it too,
// and the next message is handled on the same session.
func TestRejectedMessageIsNackedAndTheNextIsHandled(t *testing.T) {
	out := NewOutbox()
	f := newFakeStream(false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var handled []uint64
	done := serve(ctx, f, out, func(_ context.Context, m *Message) error {
		handled = append(handled, m.Seq)
		if m.Seq == 1 {
			return Reject(errors.New("admission webhook denied the request"))
		}
		return nil
	})
	<-f.waiting
	f.recv <- &Message{Seq: 1, App: &AppUpdate{Name: "poison"}}
	<-f.waiting
	f.recv <- &Message{Seq: 2, App: &AppUpdate{Name: "healthy"}}
	<-f.waiting
	var nacked, acked uint64
	for acked < 2 {
		m := nextSent(t, f)
		if m.Nack != nil {
			if m.Nack.Seq != 1 || m.Ack != 1 || m.Nack.Reason == "" {
				t.Fatalf("nack sent as %+v (nack %+v), want seq 1 with an ack of 1 and a reason", m, m.Nack)
			}
			nacked = m.Nack.Seq
			continue
		}
		acked = max(acked, m.Ack)
	}
	if nacked != 1 {
		t.Errorf("message 1 was not nacked")
	}
	if len(handled) != 2 {
		t.Errorf("handled %v, want 1 and 2 on the same session", handled)
	}
	select {
	case err := <-done:
		t.Fatalf("the session ended on a rejected message: %v", err)
	default:
	}
}

// A sender that gets a Nack drops the entry it names, says which, and
// keeps the others: it does not send the refused message again.
func TestNackDropsTheEntryAndReportsIt(t *testing.T) {
	out := NewOutbox()
	out.PutState("app/poison", Message{App: &AppUpdate{Name: "poison"}})
	out.PutState("app/healthy", Message{App: &AppUpdate{Name: "healthy"}})
	f := newFakeStream(false)
	ctx, cancel := context.WithCancel(context.Background())
	type drop struct {
		kind, name, reason string
	}
	dropped := make(chan drop, 4)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, f, out, ignore, func(m Message, reason string) {
			k, n := Describe(&m)
			dropped <- drop{k, n, reason}
		})
	}()
	first, second := nextSent(t, f), nextSent(t, f)
	if first.App.Name != "poison" || second.App.Name != "healthy" {
		t.Fatalf("sent %s then %s", first.App.Name, second.App.Name)
	}
	<-f.waiting
	f.recv <- &Message{Ack: first.Seq, Nack: &Nack{Seq: first.Seq, Reason: "refused"}}
	select {
	case d := <-dropped:
		if d != (drop{"app", "poison", "refused"}) {
			t.Errorf("dropped %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the nack was not reported")
	}
	<-f.waiting
	if out.Len() != 1 {
		t.Fatalf("%d entries after the nack, want the unacknowledged healthy one", out.Len())
	}
	cancel()
	<-done
	// On the next stream only the healthy one goes again.
	again := newFakeStream(false)
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	serve(actx, again, out, ignore)
	if m := nextSent(t, again); m.App.Name != "healthy" {
		t.Errorf("the next stream sent %s first, want healthy", m.App.Name)
	}
	select {
	case m := <-again.sent:
		t.Errorf("the next stream also sent %+v", m.App)
	case <-time.After(100 * time.Millisecond):
	}
}

// A frame this side cannot decode (a newer peer changed a field's type)
// used to fail the stream's Recv, so it came first again on every
// reconnect. The codec keeps its sequence number and Serve nacks it
// without handing it on.
func TestUndecodableMessageIsNacked(t *testing.T) {
	var m Message
	if err := (Codec{}).Unmarshal([]byte(`{"seq":7,"ack":2,"app":{"name":5}}`), &m); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if m.Seq != 7 || m.Ack != 2 || m.App != nil || m.undecodable == "" {
		t.Fatalf("decoded as %+v", m)
	}
	var bad Message
	if err := (Codec{}).Unmarshal([]byte(`{"seq":"x"}`), &bad); err == nil {
		t.Error("a frame without a readable seq decoded")
	}

	out := NewOutbox()
	f := newFakeStream(false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handled := 0
	done := serve(ctx, f, out, func(context.Context, *Message) error { handled++; return nil })
	<-f.waiting
	f.recv <- &m
	<-f.waiting
	sent := nextSent(t, f)
	if sent.Nack == nil || sent.Nack.Seq != 7 || sent.Ack != 7 {
		t.Fatalf("answered with %+v", sent)
	}
	if handled != 0 {
		t.Error("the undecodable message was handed on")
	}
	select {
	case err := <-done:
		t.Fatalf("session ended: %v", err)
	default:
	}
}
