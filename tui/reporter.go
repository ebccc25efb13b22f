package tui

import (
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/tether-dev/tether/cluster/progress"
)

// Reporter is a progress.Reporter that turns steps into UI messages. Build
// it before the workbench (cluster.Options.Progress takes it) and hand the
// same value to Options.Reporter; the UI reads what it sends.
type Reporter struct {
	ch     chan tea.Msg
	closed chan struct{}
	once   sync.Once
	nextID atomic.Int64
	now    func() time.Time
}

// NewReporter returns a Reporter whose steps are timed with now (nil means
// time.Now); tests pass a fixed clock.
func NewReporter(now func() time.Time) *Reporter {
	if now == nil {
		now = time.Now
	}
	// The buffer absorbs bursts (every cluster starts its steps at once);
	// beyond it Start and Done wait for the UI rather than being lost.
	return &Reporter{ch: make(chan tea.Msg, 256), closed: make(chan struct{}), now: now}
}

var _ progress.Reporter = (*Reporter)(nil)

// Start implements progress.Reporter.
func (r *Reporter) Start(title string) progress.Step {
	id := int(r.nextID.Add(1))
	r.deliver(stepStartMsg{id: id, title: title, at: r.now()})
	return &reporterStep{r: r, id: id}
}

// Close stops delivery: steps reported after the UI has gone (an Up still
// cleaning up after quit) are dropped instead of blocking their goroutine.
func (r *Reporter) Close() { r.once.Do(func() { close(r.closed) }) }

// deliver never drops: a lost Start or Done would leave a step spinning
// forever on screen.
func (r *Reporter) deliver(msg tea.Msg) {
	select {
	case r.ch <- msg:
	case <-r.closed:
	}
}

// offer may drop: an update is superseded by the next one, so when the UI
// is behind, skipping one loses nothing that matters and never slows the
// build that reports thousands of them.
func (r *Reporter) offer(msg tea.Msg) {
	select {
	case r.ch <- msg:
	default:
	}
}

// next waits for the next message. The root model re-issues it after each
// message, which is how a channel feeds a bubbletea program.
func (r *Reporter) next() tea.Cmd {
	return func() tea.Msg {
		select {
		case msg := <-r.ch:
			return msg
		case <-r.closed:
			return nil
		}
	}
}

type reporterStep struct {
	r    *Reporter
	id   int
	done atomic.Bool
}

func (s *reporterStep) Update(detail string) {
	if s.done.Load() {
		return
	}
	s.r.offer(stepUpdateMsg{id: s.id, detail: detail})
}

func (s *reporterStep) Done(err error) {
	if s.done.Swap(true) {
		return
	}
	s.r.deliver(stepDoneMsg{id: s.id, err: err, at: s.r.now()})
}
