package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Reporter starts steps. Implementations must be safe for concurrent use:
// clusters are created in parallel and each reports its own steps.
type Reporter interface {
	Start(title string) Step
}

// Step is one running step.
type Step interface {
	// Update says what the step is doing now, e.g. "1200/2400 packages".
	Update(detail string)
	// Done ends the step; a nil error means it succeeded.
	Done(err error)
}

// Discard is a Reporter that shows nothing.
func Discard() Reporter { return discard{} }

type discard struct{}

func (discard) Start(string) Step { return discardStep{} }

type discardStep struct{}

func (discardStep) Update(string) {}
func (discardStep) Done(error)    {}

// Lines writes one line when a step starts and one when it ends, with the
// time it took. Updates are printed at most every interval so a build that
// reports thousands of packages doesn't flood a CI log.
func Lines(w io.Writer, interval time.Duration) Reporter {
	return &lines{w: w, interval: interval, now: time.Now}
}

type lines struct {
	mu       sync.Mutex
	w        io.Writer
	interval time.Duration
	now      func() time.Time
}

func (l *lines) Start(title string) Step {
	l.printf(" • %s ...\n", title)
	return &lineStep{l: l, title: title, start: l.now()}
}

func (l *lines) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = fmt.Fprintf(l.w, format, args...)
}

type lineStep struct {
	l          *lines
	title      string
	start      time.Time
	mu         sync.Mutex
	lastUpdate time.Time
	done       bool
}

func (s *lineStep) Update(detail string) {
	s.mu.Lock()
	now := s.l.now()
	if s.done || now.Sub(s.lastUpdate) < s.l.interval {
		s.mu.Unlock()
		return
	}
	s.lastUpdate = now
	s.mu.Unlock()
	s.l.printf("   %s: %s\n", s.title, detail)
}

func (s *lineStep) Done(err error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	s.mu.Unlock()
	took := s.l.now().Sub(s.start).Round(100 * time.Millisecond)
	if err != nil {
		s.l.printf(" ✗ %s (%s): %v\n", s.title, took, err)
		return
	}
	s.l.printf(" ✓ %s (%s)\n", s.title, took)
}
