package gitserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// PushEvent describes one ref a push changed. A push that updates several
// refs produces one event per ref.
type PushEvent struct {
	// Repo is the repository name without ".git" ("app", "team/app").
	Repo string `json:"repo"`
	// Ref is the full ref name ("refs/heads/main", "refs/tags/v1").
	Ref string `json:"ref"`
	// Before is the ref's previous hex SHA; all zeros when it was created.
	Before string `json:"before"`
	// After is the ref's new hex SHA; all zeros when it was deleted.
	After string `json:"after"`
	// Time is when the server accepted the push.
	Time time.Time `json:"time"`
}

const (
	webhookAttempts = 3
	webhookBackoff  = 250 * time.Millisecond
)

// publish tells the callback and the webhooks about an accepted push.
func (s *Server) publish(events []PushEvent) {
	if len(events) == 0 {
		return
	}
	for _, ev := range events {
		s.log.Info("ref updated", "repo", ev.Repo, "ref", ev.Ref, "before", ev.Before, "after", ev.After)
		if s.opts.OnPush != nil {
			s.opts.OnPush(ev)
		}
	}
	if len(s.opts.Webhooks) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.log.Warn("webhooks skipped after close", "repo", events[0].Repo, "events", len(events))
		return
	}
	// One goroutine per URL keeps each receiver's events in push order
	// while a slow or dead receiver cannot hold up the others or the push.
	for _, url := range s.opts.Webhooks {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for _, ev := range events {
				s.deliver(url, ev)
			}
		}()
	}
}

func (s *Server) deliver(url string, ev PushEvent) {
	body, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("webhook payload not encoded", "url", url, "err", err)
		return
	}
	var lastErr error
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		if attempt > 1 {
			select {
			case <-time.After(webhookBackoff * time.Duration(attempt-1)):
			case <-s.stop:
				s.log.Warn("webhook delivery abandoned", "url", url, "repo", ev.Repo, "ref", ev.Ref, "err", lastErr)
				return
			}
		}
		if lastErr = s.post(url, body); lastErr == nil {
			return
		}
		s.log.Debug("webhook attempt failed", "url", url, "attempt", attempt, "err", lastErr)
	}
	s.log.Warn("webhook delivery failed", "url", url, "repo", ev.Repo, "ref", ev.Ref, "attempts", webhookAttempts, "err", lastErr)
}

func (s *Server) post(url string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tether-gitserver")
	req.Header.Set("X-Tether-Event", "push")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
