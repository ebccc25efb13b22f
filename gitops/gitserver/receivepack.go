package gitserver

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// statusOK is the report-status word for an accepted command.
const statusOK = "ok"

func (s *Server) serveReceivePack(w http.ResponseWriter, r *http.Request, name string) {
	body, err := requestBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer body.Close()
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(body); err != nil {
		s.log.Warn("bad receive-pack request", "repo", name, "err", err)
		http.Error(w, "malformed receive-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !isRepo(s.repoDir(name)) {
		s.fail(w, r, name, transport.ErrRepositoryNotFound)
		return
	}

	report, events := s.receive(r, name, req)
	// Publishing before answering means a client whose push returned can
	// rely on OnPush having run, which keeps scenario steps deterministic.
	s.publish(events)

	resultHeaders(w, serviceReceive)
	if req.Capabilities.Supports(capability.ReportStatus) {
		if err := report.Encode(w); err != nil {
			s.log.Warn("report-status not sent", "repo", name, "err", err)
		}
	}
}

// receive applies one push under the repository lock and returns the
// report-status for the client and one event per ref that changed.
func (s *Server) receive(r *http.Request, name string, req *packp.ReferenceUpdateRequest) (*packp.ReportStatus, []PushEvent) {
	lock := s.repoLock(name)
	lock.Lock()
	defer lock.Unlock()

	report := packp.NewReportStatus()
	report.UnpackStatus = statusOK
	status := map[plumbing.ReferenceName]string{}

	sto, err := s.open(name)
	if err != nil {
		report.UnpackStatus = "repository unavailable"
		for _, c := range req.Commands {
			status[c.Name] = "repository unavailable"
		}
		return finish(report, req, status), nil
	}

	// The old value each client command expects is compared with the ref on
	// disk, because go-git would otherwise overwrite a ref that moved since
	// the client read the advertisement.
	before := map[plumbing.ReferenceName]plumbing.Hash{}
	var accepted []*packp.Command
	for _, c := range req.Commands {
		cur := plumbing.ZeroHash
		if ref, err := sto.Reference(c.Name); err == nil {
			cur = ref.Hash()
		} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
			status[c.Name] = "cannot read ref"
			continue
		}
		switch {
		case !strings.HasPrefix(c.Name.String(), "refs/") || c.Name.Validate() != nil:
			status[c.Name] = "funny refname"
		case cur != c.Old:
			status[c.Name] = "stale info"
		default:
			before[c.Name] = cur
			accepted = append(accepted, c)
		}
	}

	if len(accepted) > 0 {
		sub := *req
		sub.Commands = accepted
		sub.Packfile = nonEmpty(req.Packfile)
		// report-status is always requested from go-git, because it is the
		// only way to learn which commands it applied.
		sub.Capabilities = capability.NewList()
		for _, c := range req.Capabilities.All() {
			_ = sub.Capabilities.Set(c, req.Capabilities.Get(c)...)
		}
		_ = sub.Capabilities.Set(capability.ReportStatus)

		var rs *packp.ReportStatus
		sess, err := s.git.NewReceivePackSession(&transport.Endpoint{Protocol: "http", Path: name}, nil)
		if err == nil {
			rs, err = sess.ReceivePack(r.Context(), &sub)
		}
		if rs != nil {
			report.UnpackStatus = rs.UnpackStatus
			for _, cs := range rs.CommandStatuses {
				status[cs.ReferenceName] = cs.Status
			}
		}
		if err != nil {
			s.log.Warn("push partly or wholly rejected", "repo", name, "err", err)
		}
		for _, c := range accepted {
			if _, ok := status[c.Name]; ok {
				continue
			}
			if report.UnpackStatus != statusOK {
				status[c.Name] = "unpacker error"
			} else {
				status[c.Name] = "not applied"
			}
		}
	}

	var events []PushEvent
	now := time.Now().UTC()
	for _, c := range accepted {
		if status[c.Name] != statusOK {
			continue
		}
		events = append(events, PushEvent{
			Repo:   name,
			Ref:    c.Name.String(),
			Before: before[c.Name].String(),
			After:  c.New.String(),
			Time:   now,
		})
	}
	for _, c := range req.Commands {
		if st := status[c.Name]; st != statusOK {
			s.log.Info("ref update rejected", "repo", name, "ref", c.Name.String(), "reason", st)
		}
	}
	return finish(report, req, status), events
}

// finish lists the command statuses in request order, which is how git's
// own receive-pack reports them.
func finish(report *packp.ReportStatus, req *packp.ReferenceUpdateRequest, status map[plumbing.ReferenceName]string) *packp.ReportStatus {
	for _, c := range req.Commands {
		st, ok := status[c.Name]
		if !ok {
			st = "not applied"
		}
		report.CommandStatuses = append(report.CommandStatuses, &packp.CommandStatus{ReferenceName: c.Name, Status: st})
	}
	return report
}

// nonEmpty returns nil for a request without pack data: go-git treats an
// empty packfile as an unpack error, yet delete-only pushes carry none.
func nonEmpty(rc io.ReadCloser) io.ReadCloser {
	if rc == nil {
		return nil
	}
	br := bufio.NewReader(rc)
	if _, err := br.Peek(1); err != nil {
		return nil
	}
	return struct {
		io.Reader
		io.Closer
	}{br, rc}
}
