package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tether-dev/tether/gitops/protocol"
)

// middle makes the jitter pick the middle of its range, so every wait is
// the backoff's step.
func middle(n int64) int64 { return n / 2 }

func TestBackoffGrowsWithFailuresAndStartsOverAfterAWorkingStream(t *testing.T) {
	b := newBackoff(middle)
	failed := func() time.Duration { return b.after(false, 100*time.Millisecond) }
	// Attempts that fail double the wait, up to the cap.
	for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if got := failed(); got != want {
			t.Fatalf("failure %d: wait %v, want %v", i+1, got, want)
		}
	}
	// A stream the principal answered worked, however briefly: the
	// next attempt comes as soon as the first one would (the end of an
	// intercept of the principal, a principal restart).
	if got := b.after(true, 2*time.Second); got != firstBackoff {
		t.Errorf("after an answered stream: wait %v, want %v", got, firstBackoff)
	}
	if got := failed(); got != time.Second {
		t.Errorf("a failure after it: wait %v, want %v", got, time.Second)
	}
	// A stream that lasted, answered or not, worked too.
	for range 4 {
		failed()
	}
	if got := b.after(false, time.Minute); got != firstBackoff {
		t.Errorf("after a minute-long stream: wait %v, want %v", got, firstBackoff)
	}
}

func TestBackoffJitterSpreadsAFleet(t *testing.T) {
	low := newBackoff(func(int64) int64 { return 0 })
	high := newBackoff(func(n int64) int64 { return n - 1 })
	for range 3 {
		low.after(false, 0)
		high.after(false, 0)
	}
	// The fourth wait's step is 4 s: the waits range over [2 s, 6 s).
	if got := low.after(false, 0); got != 2*time.Second {
		t.Errorf("lowest jitter: %v, want 2s", got)
	}
	if got := high.after(false, 0); got != 6*time.Second-time.Nanosecond {
		t.Errorf("highest jitter: %v, want just under 6s", got)
	}
}

// fakeStream answers Recv with its messages, then with err.
type fakeStream struct {
	msgs []*protocol.Message
	err  error
}

func (f *fakeStream) Send(*protocol.Message) error { return nil }
func (f *fakeStream) Context() context.Context     { return context.Background() }
func (f *fakeStream) Recv() (*protocol.Message, error) {
	if len(f.msgs) == 0 {
		return nil, f.err
	}
	m := f.msgs[0]
	f.msgs = f.msgs[1:]
	return m, nil
}

func TestAnsweredStreamNotesThePrincipalsFirstMessage(t *testing.T) {
	broken := &answeredStream{Stream: &fakeStream{err: errors.New("connection reset")}}
	if _, err := broken.Recv(); err == nil || broken.answered.Load() {
		t.Errorf("a stream that broke before any message counts as answered")
	}
	ok := &answeredStream{Stream: &fakeStream{msgs: []*protocol.Message{{Ack: 3}}, err: errors.New("EOF")}}
	if _, err := ok.Recv(); err != nil || !ok.answered.Load() {
		t.Errorf("an acknowledgement from the principal does not count as an answer: %v", err)
	}
	if _, err := ok.Recv(); err == nil || !ok.answered.Load() {
		t.Errorf("the stream breaking later unanswers it")
	}
}
