package tui

import (
	"errors"
	"testing"
	"time"

	"github.com/tether-dev/tether/cluster/progress"
)

func TestReporterDeliversSteps(t *testing.T) {
	r := NewReporter(fixedNow)
	var rep progress.Reporter = r
	s := rep.Start("create hub")
	s.Update("etcd ready")
	boom := errors.New("boom")
	s.Done(boom)
	s.Done(nil) // a second Done is ignored, as with progress.Lines
	s.Update("late")

	want := []any{
		stepStartMsg{id: 1, title: "create hub", at: t0},
		stepUpdateMsg{id: 1, detail: "etcd ready"},
		stepDoneMsg{id: 1, err: boom, at: t0},
	}
	for i, w := range want {
		if got := r.next()(); got != w {
			t.Fatalf("message %d = %#v, want %#v", i, got, w)
		}
	}
	select {
	case msg := <-r.ch:
		t.Fatalf("unexpected message %#v", msg)
	default:
	}
}

func TestReporterCloseUnblocks(t *testing.T) {
	r := NewReporter(nil)
	for range cap(r.ch) {
		r.Start("fill")
	}
	done := make(chan struct{})
	go func() {
		r.Start("one more").Done(nil) // blocks: the UI is not reading
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Start should wait for the UI when the buffer is full")
	case <-time.After(50 * time.Millisecond):
	}
	r.Close()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Close did not release a blocked step")
	}
	// Updates never block, full buffer or not.
	r.Start("x").Update("y")
}
