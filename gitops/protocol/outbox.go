package protocol

import (
	"sync"
)

// Outbox holds what one side still has to deliver to its peer. It outlives
// streams: what was sent but not acknowledged when a stream broke is sent
// again, in order, on the next one.
//
// Each stream works on the outbox through its own Cursor (Open). Opening
// one voids every earlier cursor, so a stream that is ending, or whose
// goroutines outlive it, can neither number an entry (and write it into a
// dead connection) nor remove one by an ack: sequence numbers mean
// something only on the stream that gave them out.
type Outbox struct {
	mu      sync.Mutex
	entries []*entry
	nextSeq uint64
	// stream counts Opens; only the cursor holding the latest may number
	// or acknowledge entries.
	stream uint64
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
	stamp(&m)
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
	stamp(&m)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entries = append(o.entries, &entry{msg: m})
	o.signal()
}

// Cursor is one stream's view of an Outbox: it numbers the entries it
// sends and removes those its peer acknowledges, until the next Open.
type Cursor struct {
	o      *Outbox
	stream uint64
}

// Open starts a new stream: numbering restarts, everything not yet
// acknowledged becomes unsent again, keeping its order, and every earlier
// cursor stops working (its Next finds nothing, its Ack removes nothing).
func (o *Outbox) Open() *Cursor {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stream++
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
	for i := len(out); i < len(o.entries); i++ {
		o.entries[i] = nil
	}
	o.entries = out
	if len(o.entries) > 0 {
		o.signal()
	}
	return &Cursor{o: o, stream: o.stream}
}

// Next returns the next unsent message, numbered for the cursor's stream,
// or nothing once a newer stream opened.
func (c *Cursor) Next() (*Message, bool) {
	o := c.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.stream != o.stream {
		return nil, false
	}
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

// Ack drops every message numbered up to seq on the cursor's stream; an
// ack arriving on a stream a newer one replaced drops nothing (what it
// covers was made unsent again and goes out on the new stream).
func (c *Cursor) Ack(seq uint64) {
	o := c.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.stream != o.stream {
		return
	}
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

// Nack removes the message numbered seq on the cursor's stream, which the
// peer refused, and returns it (to say what was dropped); nothing on a
// stream a newer one replaced.
func (c *Cursor) Nack(seq uint64) (Message, bool) {
	o := c.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.stream != o.stream || seq == 0 {
		return Message{}, false
	}
	for i, e := range o.entries {
		if e.seq == seq {
			copy(o.entries[i:], o.entries[i+1:])
			o.entries[len(o.entries)-1] = nil
			o.entries = o.entries[:len(o.entries)-1]
			m := e.msg
			m.Seq = seq
			return m, true
		}
	}
	return Message{}, false
}

// Len is the number of messages not yet acknowledged.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}
