package tui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// tailLines is how much of a log is shown when it is opened; older lines
// are in the file for anyone who needs them.
const tailLines = 500

// tailBytes bounds the read behind tailLines, so opening a log of
// gigabytes costs the same as opening a small one.
const tailBytes = 512 << 10

// pollBytes bounds one follow read, so a component writing a burst of
// logs cannot stall the UI; the rest comes with the next polls.
const pollBytes = 1 << 20

// readLog reads what a log gained since offset. offset < 0 (first read) or
// a file smaller than offset (truncated, or replaced by a new run) returns
// the tail and reset. Only whole lines are returned; a line still being
// written stays in the file until its newline arrives.
func readLog(path string, offset int64) (data []byte, next int64, reset bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, offset, false, err
	}
	size := info.Size()
	if offset < 0 || size < offset {
		start := max(0, size-tailBytes)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, offset, false, err
		}
		if start > 0 {
			// The first line is cut in the middle; drop it.
			if i := bytes.IndexByte(buf, '\n'); i >= 0 {
				buf, start = buf[i+1:], start+int64(i+1)
			}
		}
		end := bytes.LastIndexByte(buf, '\n') + 1
		buf = buf[:end]
		return lastLines(buf, tailLines), start + int64(end), true, nil
	}
	n := min(size-offset, pollBytes)
	if n == 0 {
		return nil, offset, false, nil
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, offset, false, err
	}
	end := bytes.LastIndexByte(buf, '\n') + 1
	if end == 0 && n == pollBytes {
		end = len(buf) // one enormous line: show it in pieces rather than never
	}
	return buf[:end], offset + int64(end), false, nil
}

func lastLines(b []byte, n int) []byte {
	idx := len(b)
	if idx > 0 && b[idx-1] == '\n' {
		idx--
	}
	for range n {
		i := bytes.LastIndexByte(b[:idx], '\n')
		if i < 0 {
			return b
		}
		idx = i
	}
	return b[idx+1:]
}

// OpenLog returns a logger writing slog text lines to path (appended),
// and a function closing the file. While the UI runs, logs must never reach
// the terminal, so the CLI builds the workbench's logger with this too.
func OpenLog(path string, level slog.Leveler) (*slog.Logger, func() error, error) {
	w, err := newReopeningFile(path)
	if err != nil {
		return nil, nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), w.Close, nil
}

// reopeningFile is an append-only log file that is opened again when it
// disappears: `down` clears the state folder, which holds the UI's log, and
// later lines must not go to a deleted file nobody can read.
type reopeningFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func newReopeningFile(path string) (*reopeningFile, error) {
	r := &reopeningFile{path: path}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *reopeningFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return fmt.Errorf("create the log folder: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open the log: %w", err)
	}
	r.f = f
	return nil
}

func (r *reopeningFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if cur, err := r.f.Stat(); err == nil {
		if onDisk, err := os.Stat(r.path); err != nil || !os.SameFile(cur, onDisk) {
			_ = r.f.Close()
			if err := r.open(); err != nil {
				r.f = nil
				return 0, err
			}
		}
	}
	return r.f.Write(p)
}

func (r *reopeningFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
