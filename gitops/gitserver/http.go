package gitserver

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

const (
	serviceUpload  = "git-upload-pack"
	serviceReceive = "git-receive-pack"
)

// Handler returns the smart HTTP front end:
//
//	GET  /<name>[.git]/info/refs?service=git-upload-pack|git-receive-pack
//	POST /<name>[.git]/git-upload-pack
//	POST /<name>[.git]/git-receive-pack
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	var route string
	for _, suffix := range []string{"/info/refs", "/" + serviceUpload, "/" + serviceReceive} {
		if strings.HasSuffix(path, suffix) {
			route = suffix
			path = strings.TrimSuffix(path, suffix)
			break
		}
	}
	if route == "" {
		http.Error(w, "not found: only the smart HTTP protocol is served", http.StatusNotFound)
		return
	}
	name, err := CleanName(path)
	if err != nil {
		// 404 rather than 400: clients print "repository not found", which
		// is what a user who mistyped a URL needs to read.
		s.log.Warn("rejected repository name", "path", r.URL.Path, "remote", r.RemoteAddr)
		http.Error(w, "repository not found", http.StatusNotFound)
		return
	}

	switch route {
	case "/info/refs":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET")
			return
		}
		s.serveInfoRefs(w, r, name)
	case "/" + serviceUpload:
		if !expectPost(w, r, serviceUpload) {
			return
		}
		s.serveUploadPack(w, r, name)
	case "/" + serviceReceive:
		if !expectPost(w, r, serviceReceive) {
			return
		}
		s.serveReceivePack(w, r, name)
	}
}

func (s *Server) serveInfoRefs(w http.ResponseWriter, r *http.Request, name string) {
	service := r.URL.Query().Get("service")
	if service != serviceUpload && service != serviceReceive {
		// Without ?service= a client is speaking the dumb protocol, which
		// would need loose files served from disk; nothing here needs it.
		http.Error(w, "only the smart HTTP protocol is supported (service=git-upload-pack or git-receive-pack)", http.StatusForbidden)
		return
	}
	ep := &transport.Endpoint{Protocol: "http", Path: name}

	var ar *packp.AdvRefs
	var err error
	if service == serviceUpload {
		var sess transport.UploadPackSession
		if sess, err = s.git.NewUploadPackSession(ep, nil); err == nil {
			ar, err = sess.AdvertisedReferencesContext(r.Context())
		}
	} else {
		if s.opts.AutoCreate && !isRepo(s.repoDir(name)) {
			if err := s.CreateRepo(name); err != nil {
				s.log.Error("auto-create failed", "repo", name, "err", err)
				http.Error(w, "cannot create repository", http.StatusInternalServerError)
				return
			}
		}
		var sess transport.ReceivePackSession
		if sess, err = s.git.NewReceivePackSession(ep, nil); err == nil {
			ar, err = sess.AdvertisedReferencesContext(r.Context())
		}
	}
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	if err := advertise(ar.Capabilities, service); err != nil {
		s.fail(w, r, name, err)
		return
	}
	ar.Prefix = [][]byte{[]byte("# service=" + service), pktline.Flush}

	noCache(w)
	w.Header().Set("Content-Type", "application/x-"+service+"-advertisement")
	if r.Method == http.MethodHead {
		return
	}
	if err := ar.Encode(w); err != nil {
		s.log.Warn("advertisement not sent", "repo", name, "service", service, "err", err)
	}
}

// advertise adjusts go-git's capability list to what this package actually
// implements on top of it (see the package documentation).
func advertise(caps *capability.List, service string) error {
	if service == serviceUpload {
		// The negotiation rounds are answered by uploadpack.go.
		return caps.Set(capability.MultiACKDetailed)
	}
	// go-git stores received packs without resolving deltas against
	// objects already on disk, so clients must send self-contained packs.
	return caps.Set(capability.Capability("no-thin"))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, name string, err error) {
	if errors.Is(err, transport.ErrRepositoryNotFound) {
		s.log.Info("repository not found", "repo", name, "path", r.URL.Path)
		http.Error(w, fmt.Sprintf("repository %q not found", name), http.StatusNotFound)
		return
	}
	s.log.Error("git request failed", "repo", name, "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func expectPost(w http.ResponseWriter, r *http.Request, service string) bool {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/x-"+service+"-request" {
		http.Error(w, "unexpected content type "+ct, http.StatusUnsupportedMediaType)
		return false
	}
	return true
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// noCache keeps proxies and clients from replaying stale ref lists or
// results, which would make a fetch miss a push.
func noCache(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
}

// requestBody undoes the gzip the git CLI applies to large upload-pack
// requests (many "have" lines).
func requestBody(r *http.Request) (io.ReadCloser, error) {
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return r.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip request body: %w", err)
		}
		return zr, nil
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
}

func resultHeaders(w http.ResponseWriter, service string) {
	noCache(w)
	w.Header().Set("Content-Type", "application/x-"+service+"-result")
}
