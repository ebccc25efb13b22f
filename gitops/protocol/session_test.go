package protocol

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// fakeStream is one end of a stream whose every step the test drives:
// what Recv returns (recv, closed for EOF), what was sent (sent), and,
// when gated, when a Send returns (one token of gate per Send).
type fakeStream struct {
	ctx  context.Context
	recv chan *Message
	sent chan *Message
	gate chan struct{}
	// waiting gets a token each time Recv is about to block, i.e. once
	// the message before has been dealt with.
	waiting chan struct{}
}

func newFakeStream(gated bool) *fakeStream {
	f := &fakeStream{ctx: context.Background(), recv: make(chan *Message), sent: make(chan *Message, 64), waiting: make(chan struct{}, 64)}
	if gated {
		f.gate = make(chan struct{})
	}
	return f
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Send(m *Message) error {
	f.sent <- m
	if f.gate != nil {
		<-f.gate
	}
	return nil
}

func (f *fakeStream) Recv() (*Message, error) {
	f.waiting <- struct{}{}
	m, ok := <-f.recv
	if !ok {
		return nil, io.EOF
	}
	return m, nil
}

func op(id string) Message {
	return Message{Operation: &OperationRequest{App: "web", Operation: v1alpha1.Operation{ID: id}}}
}

// nextSent waits for the next message the stream sent.
func nextSent(t *testing.T, f *fakeStream) *Message {
	t.Helper()
	select {
	case m := <-f.sent:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sent")
		return nil
	}
}

// serve runs Serve in the background; the returned channel yields its
// result.
func serve(ctx context.Context, f *fakeStream, out *Outbox, handle func(context.Context, *Message) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, f, out, handle, nil) }()
	return done
}

func ignore(context.Context, *Message) error { return nil }

// An agent reconnects while the old stream's sender is stuck in a write
// to the dead connection. Once it gets out, it must not take an entry
// that belongs to the new stream: that entry would go into the dead
// connection, and the new stream's next cumulative ack would remove it
// unseen.
func TestOldStreamsSenderCannotTakeANewStreamsEntry(t *testing.T) {
	out := NewOutbox()
	out.PutIntent(op("1"))

	oldCtx, cancelOld := context.WithCancel(context.Background())
	old := newFakeStream(true)
	oldDone := serve(oldCtx, old, out, ignore)
	if m := nextSent(t, old); m.Operation.Operation.ID != "1" {
		t.Fatalf("old stream sent %+v first", m)
	}
	// The old sender is now inside Send, and the connection is dead.
	cancelOld()

	cur := newFakeStream(true)
	curDone := serve(context.Background(), cur, out, ignore)
	defer close(cur.recv)
	got := map[string]uint64{}
	m := nextSent(t, cur)
	got[m.Operation.Operation.ID] = m.Seq

	out.PutIntent(op("2"))
	old.gate <- struct{}{} // the old sender's write returns
	// Give the old sender the moment it needs to take "2", if it can.
	time.Sleep(100 * time.Millisecond)
	select {
	case m := <-old.sent:
		t.Errorf("the old stream's sender took %q (seq %d) after the new stream began", m.Operation.Operation.ID, m.Seq)
	default:
	}
	out.PutIntent(op("3"))
	for len(got) < 3 {
		cur.gate <- struct{}{}
		select {
		case m := <-cur.sent:
			got[m.Operation.Operation.ID] = m.Seq
			continue
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
	// The peer acknowledges everything it got on the new stream.
	var high uint64
	for _, s := range got {
		high = max(high, s)
	}
	cur.recv <- &Message{Ack: high}
	<-cur.waiting
	<-cur.waiting
	for _, id := range []string{"1", "2", "3"} {
		if _, ok := got[id]; !ok {
			t.Errorf("intent %s never reached the new stream", id)
		}
	}
	if out.Len() != 0 {
		t.Errorf("%d entries left after the peer acknowledged all it got", out.Len())
	}
	select {
	case <-oldDone:
	case <-time.After(5 * time.Second):
		t.Error("the old session did not end after its context")
	}
	select {
	case err := <-curDone:
		t.Errorf("the new session ended: %v", err)
	default:
	}
}

// A late ack on the old stream numbers entries of the old stream; it must
// not remove the entries the new stream numbered alike: here the newer
// state, which the old stream's peer never saw.
func TestLateAckOnTheOldStreamLeavesTheNewStreamsEntries(t *testing.T) {
	out := NewOutbox()
	out.PutState("status/web", status("web", "v1"))

	oldCtx, cancelOld := context.WithCancel(context.Background())
	old := newFakeStream(false)
	oldDone := serve(oldCtx, old, out, ignore)
	<-old.waiting
	if m := nextSent(t, old); m.Seq != 1 || m.Status.Status.Sync.Revision != "v1" {
		t.Fatalf("old stream sent %+v", m)
	}
	out.PutState("status/web", status("web", "v2"))
	cancelOld()
	<-oldDone

	curCtx, cancelCur := context.WithCancel(context.Background())
	cur := newFakeStream(false)
	curDone := serve(curCtx, cur, out, ignore)
	if m := nextSent(t, cur); m.Seq != 1 || m.Status.Status.Sync.Revision != "v2" {
		t.Fatalf("new stream sent %+v, want v2 as 1", m)
	}
	// The old peer's ack of v1 arrives now.
	old.recv <- &Message{Ack: 1}
	<-old.waiting
	if out.Len() != 1 {
		t.Fatalf("%d entries after the old stream's late ack; v2 must wait for the new stream's", out.Len())
	}
	// The new stream breaks before its peer acknowledged: v2 goes again.
	cancelCur()
	<-curDone
	again := newFakeStream(false)
	againCtx, cancelAgain := context.WithCancel(context.Background())
	defer cancelAgain()
	serve(againCtx, again, out, ignore)
	if m := nextSent(t, again); m.Status.Status.Sync.Revision != "v2" {
		t.Fatalf("after the break the stream sent %+v, want v2 again", m)
	}
}

// A session that ends waits for the message being handled, and hands no
// more to its handler: the next session's handler must not race a stale
// one (an older spec applied after a newer one).
func TestServeReturnsOnlyAfterItsHandlerAndHandlesNothingAfter(t *testing.T) {
	out := NewOutbox()
	ctx, cancel := context.WithCancel(context.Background())
	f := newFakeStream(false)
	var mu sync.Mutex
	var handled []uint64
	inHandle, release := make(chan struct{}), make(chan struct{})
	done := serve(ctx, f, out, func(_ context.Context, m *Message) error {
		mu.Lock()
		handled = append(handled, m.Seq)
		mu.Unlock()
		if m.Seq == 1 {
			close(inHandle)
			<-release
		}
		return nil
	})
	<-f.waiting
	f.recv <- &Message{Seq: 1, Refresh: &RefreshRequest{RepoURL: "r"}}
	<-inHandle
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while its handler still ran", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its handler did")
	}
	// A message that was on its way when the session ended.
	go func() { f.recv <- &Message{Seq: 2, Refresh: &RefreshRequest{RepoURL: "r"}} }()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 {
		t.Errorf("handled %v after the session ended, want only 1", handled)
	}
}
