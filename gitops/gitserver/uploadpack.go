package gitserver

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// uploadRequest is one stateless upload-pack round as sent by a client.
type uploadRequest struct {
	caps  *capability.List
	wants []plumbing.Hash
	haves []plumbing.Hash
	// done is false for the intermediate negotiation rounds, which must be
	// answered with ACK/NAK lines only.
	done bool
}

func parseUploadRequest(r io.Reader) (*uploadRequest, error) {
	req := &uploadRequest{caps: capability.NewList()}
	sc := pktline.NewScanner(r)
	inWants := true
	for sc.Scan() {
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\n"))
		if len(line) == 0 { // flush-pkt
			if inWants {
				inWants = false
				continue
			}
			return req, nil
		}
		switch {
		case inWants && bytes.HasPrefix(line, []byte("want ")):
			rest := line[len("want "):]
			if len(rest) < 40 {
				return nil, fmt.Errorf("malformed want line %q", line)
			}
			h, err := parseHash(rest[:40])
			if err != nil {
				return nil, err
			}
			if len(req.wants) == 0 {
				if err := req.caps.Decode(rest[40:]); err != nil {
					return nil, fmt.Errorf("capabilities: %w", err)
				}
			}
			req.wants = append(req.wants, h)
		case bytes.HasPrefix(line, []byte("have ")):
			// go-git's client sends haves without the flush after wants.
			inWants = false
			h, err := parseHash(line[len("have "):])
			if err != nil {
				return nil, err
			}
			req.haves = append(req.haves, h)
		case bytes.Equal(line, []byte("done")):
			req.done = true
			return req, nil
		case bytes.HasPrefix(line, []byte("shallow ")), bytes.HasPrefix(line, []byte("deepen")):
			return nil, errors.New("shallow fetches are not supported")
		case bytes.HasPrefix(line, []byte("filter ")):
			return nil, errors.New("partial clone filters are not supported")
		default:
			return nil, fmt.Errorf("unexpected line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// A body that ends without "done" or a closing flush is still a
	// negotiation round.
	return req, nil
}

func parseHash(b []byte) (plumbing.Hash, error) {
	b = bytes.TrimSpace(b)
	if len(b) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("malformed object id %q", b)
	}
	if _, err := hex.DecodeString(string(b)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("malformed object id %q", b)
	}
	return plumbing.NewHash(string(b)), nil
}

// serveUploadPack answers one round of a fetch. go-git's upload-pack always
// returns a packfile, which is only right for the final round; the
// intermediate rounds of the git CLI's stateless negotiation are answered
// here, following upload-pack.c's get_common_commits.
func (s *Server) serveUploadPack(w http.ResponseWriter, r *http.Request, name string) {
	body, err := requestBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer body.Close()
	req, err := parseUploadRequest(body)
	if err != nil {
		s.log.Warn("bad upload-pack request", "repo", name, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(req.wants) == 0 {
		http.Error(w, "upload-pack request without wants", http.StatusBadRequest)
		return
	}
	sto, err := s.open(name)
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	for _, h := range req.wants {
		if sto.HasEncodedObject(h) != nil {
			http.Error(w, "not our ref "+h.String(), http.StatusBadRequest)
			return
		}
	}
	var common []plumbing.Hash
	for _, h := range req.haves {
		if sto.HasEncodedObject(h) == nil {
			common = append(common, h)
		}
	}
	multiAck := req.caps.Supports(capability.MultiACKDetailed)

	var pack io.ReadCloser
	if req.done {
		pack, err = s.buildPack(r, name, req, common)
		if err != nil {
			s.fail(w, r, name, err)
			return
		}
		defer pack.Close()
	}

	resultHeaders(w, serviceUpload)
	bw := bufio.NewWriter(w)
	e := pktline.NewEncoder(bw)
	for i, h := range common {
		switch {
		case multiAck:
			err = e.Encodef("ACK %s common\n", h)
		case i == 0:
			err = e.Encodef("ACK %s\n", h)
		}
		if err != nil {
			return
		}
	}
	last := plumbing.ZeroHash
	if len(common) > 0 {
		last = common[len(common)-1]
	}
	if !req.done {
		// Any common commit is enough to cut the pack down; saying "ready"
		// spares the client further rounds.
		if multiAck && len(common) > 0 {
			_ = e.Encodef("ACK %s ready\n", last)
		}
		if multiAck || len(common) == 0 {
			_ = e.Encodef("NAK\n")
		}
		_ = bw.Flush()
		return
	}
	switch {
	case len(common) == 0:
		err = e.Encodef("NAK\n")
	case multiAck:
		err = e.Encodef("ACK %s\n", last)
	}
	if err != nil {
		return
	}
	if _, err := io.Copy(bw, pack); err != nil {
		s.log.Warn("packfile not sent", "repo", name, "err", err)
		return
	}
	if err := bw.Flush(); err != nil {
		s.log.Warn("packfile not sent", "repo", name, "err", err)
	}
}

// buildPack has go-git's upload-pack compute the objects reachable from the
// wants but not from the common haves, and encode them.
func (s *Server) buildPack(r *http.Request, name string, req *uploadRequest, common []plumbing.Hash) (io.ReadCloser, error) {
	sess, err := s.git.NewUploadPackSession(&transport.Endpoint{Protocol: "http", Path: name}, nil)
	if err != nil {
		return nil, err
	}
	upr := packp.NewUploadPackRequest()
	upr.Wants = req.wants
	upr.Haves = common
	// go-git rejects capabilities it did not advertise itself; the
	// negotiation ones were consumed above.
	for _, c := range req.caps.All() {
		if c == capability.MultiACKDetailed || c == capability.MultiACK || c == capability.NoDone {
			continue
		}
		if err := upr.Capabilities.Set(c, req.caps.Get(c)...); err != nil {
			return nil, err
		}
	}
	resp, err := sess.UploadPack(r.Context(), upr)
	if err != nil {
		if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
			return nil, fmt.Errorf("client already has every wanted object: %w", err)
		}
		return nil, err
	}
	return resp, nil
}
