package tui

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAHeldInterceptThatEndsElsewhereLeavesHeld(t *testing.T) {
	s := &workbenchSource{held: map[string]*heldIntercept{}}
	stopped := errors.New("stopped from outside")
	end := make(chan error, 1)
	waited := make(chan struct{})
	s.hold("spoke-1/web-80", &heldIntercept{to: "localhost:8080"}, func(ctx context.Context) error {
		select {
		case <-waited:
			return stopped
		case <-ctx.Done():
			return nil
		}
	}, func(err error) { end <- err })

	s.mu.Lock()
	_, ok := s.held["spoke-1/web-80"]
	s.mu.Unlock()
	if !ok {
		t.Fatal("the intercept is not held")
	}
	close(waited)
	select {
	case err := <-end:
		if !errors.Is(err, stopped) {
			t.Errorf("ended(%v), want the intercept's error", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("an intercept that ended elsewhere was not noticed")
	}
	s.mu.Lock()
	_, ok = s.held["spoke-1/web-80"]
	s.mu.Unlock()
	if ok {
		t.Error("an intercept that ended elsewhere is still held")
	}
}

func TestTakingAHeldInterceptOutEndsItsWatchQuietly(t *testing.T) {
	s := &workbenchSource{held: map[string]*heldIntercept{}}
	h := &heldIntercept{}
	returned := make(chan struct{})
	ended := make(chan struct{}, 1)
	s.hold("spoke-1/web-80", h, func(ctx context.Context) error {
		<-ctx.Done()
		close(returned)
		return nil
	}, func(error) { ended <- struct{}{} })
	// What StopIntercept and Close do.
	s.mu.Lock()
	delete(s.held, "spoke-1/web-80")
	s.mu.Unlock()
	h.cancel()
	select {
	case <-returned:
	case <-time.After(2 * time.Second):
		t.Fatal("the watch did not end with its cancel")
	}
	select {
	case <-ended:
		t.Error("an intercept stopped here was reported as ended elsewhere")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestAnEndedWatchLeavesANewInterceptOfTheSameNameAlone(t *testing.T) {
	s := &workbenchSource{held: map[string]*heldIntercept{}}
	release := make(chan struct{})
	ended := make(chan struct{}, 1)
	old := &heldIntercept{}
	s.hold("k", old, func(context.Context) error { <-release; return errors.New("lost") }, func(error) { ended <- struct{}{} })
	newer := &heldIntercept{}
	s.mu.Lock()
	s.held["k"] = newer
	s.mu.Unlock()
	close(release)
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	got := s.held["k"]
	s.mu.Unlock()
	if got != newer {
		t.Error("the old intercept's end removed the new one")
	}
	select {
	case <-ended:
		t.Error("ended ran for an intercept no longer held")
	default:
	}
}
