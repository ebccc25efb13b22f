package protocol

import (
	"sync"
)

// Outbox holds what one side still has to deliver to its peer. It outlives
// streams: what was sent but not acknowledged when a stream broke is sent
// again, in order, on the next one.
type Outbox struct {
	mu      sync.Mutex
	entries []*entry
	nextSeq uint64
	// wake is signalled (non-blocking) when something new is queued.
	wake chan struct{}
}

type entry struct {
	key string // "" for intents
	msg Message
	seq uint64 // 0 while unsent on the current stream
}

// NewOutbox returns an empty outbox.
func NewOutbox() *Outbox {
	return &Outbox{wake: make(chan struct{}, 1)}
}

// Wake is signalled when messages are waiting to be sent.
func (o *Outbox) Wake() <-chan struct{} { return o.wake }

func (o *Outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// PutState queues a state message under key. An unsent message with the
// same key is replaced (only the latest state matters); one already in
// flight stays, and the new state follows it.
func (o *Outbox) PutState(key string, m Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.entries {
		if e.key == key && e.seq == 0 {
			e.msg = m
			o.signal()
			return
		}
	}
	o.entries = append(o.entries, &entry{key: key, msg: m})
	o.signal()
}

// PutIntent queues a one-shot message. Intents are never coalesced or
// dropped: each is delivered until acknowledged.
func (o *Outbox) PutIntent(m Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entries = append(o.entries, &entry{msg: m})
	o.signal()
}

// Next returns the next unsent message, numbered for the current stream.
func (o *Outbox) Next() (*Message, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.entries {
		if e.seq == 0 {
			o.nextSeq++
			e.seq = o.nextSeq
			m := e.msg
			m.Seq = e.seq
			return &m, true
		}
	}
	return nil, false
}

// Ack drops every message numbered up to seq on the current stream.
func (o *Outbox) Ack(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.entries[:0]
	for _, e := range o.entries {
		if e.seq == 0 || e.seq > seq {
			out = append(out, e)
		}
	}
	for i := len(out); i < len(o.entries); i++ {
		o.entries[i] = nil
	}
	o.entries = out
}

// Reset starts a new stream: numbering restarts and everything not yet
// acknowledged becomes unsent again, keeping its order.
func (o *Outbox) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nextSeq = 0
	for _, e := range o.entries {
		e.seq = 0
	}
	// Two unsent states with one key can exist after a reset (one was in
	// flight); only the newest is worth sending.
	latest := map[string]int{}
	for i, e := range o.entries {
		if e.key != "" {
			latest[e.key] = i
		}
	}
	out := o.entries[:0]
	for i, e := range o.entries {
		if e.key == "" || latest[e.key] == i {
			out = append(out, e)
		}
	}
	o.entries = out
	if len(o.entries) > 0 {
		o.signal()
	}
}

// Len is the number of messages not yet acknowledged.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}
