package nodeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"k8s.io/klog/v2"
)

// maxBody bounds a GC request's body: the attachments it lists (at most MaxRegistrations of
// about a hundred bytes each). Other requests are held to maxSmallBody (limits.go).
const maxBody = 1 << 20

// Server serves the node API on a unix socket. Only root callers are answered (checked
// with SO_PEERCRED on every connection), and a registration's IPs must pass Registration's
// own checks and the IPValidator.
type Server struct {
	socketPath string
	store      *Store
	status     func() Status
	validIP    func(netip.Addr) error
	refusedFn  func(reason string)
	yieldFn    func()

	sock *socket
	http *http.Server
}

// NewServer returns a server for socketPath backed by store; status is called for every
// /v1/status request and must be cheap and safe for concurrent use (nil reports not ready).
func NewServer(socketPath string, store *Store, status func() Status) *Server {
	if status == nil {
		status = func() Status { return Status{Message: "no status source"} }
	}
	s := &Server{socketPath: socketPath, store: store, status: status}
	s.http = &http.Server{
		Handler:           rootOnly(s.Handler(), s.refused),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ConnContext:       withPeer,
	}
	return s
}

// SetIPValidator makes every registration's IPs pass fn (typically: inside the node's pod
// CIDRs, when they are known); a registration with an IP fn refuses is answered 400 with
// fn's error. Call it before Serve; fn must be safe for concurrent use.
func (s *Server) SetIPValidator(fn func(netip.Addr) error) { s.validIP = fn }

// validate checks reg with its own rules and the IP validator; on error it also returns the
// refusal's reason.
func (s *Server) validate(reg Registration) (string, error) {
	if err := reg.Validate(); err != nil {
		return RefusedInvalid, err
	}
	if s.validIP == nil {
		return "", nil
	}
	for i, ip := range reg.IPs {
		if err := s.validIP(ip); err != nil {
			return RefusedIPNotAllowed, fmt.Errorf("ips[%d]: %w", i, err)
		}
	}
	return "", nil
}

// Listen creates the socket (see the socket rules in socket.go). After it returns, clients can
// connect; requests are answered once Serve runs.
func (s *Server) Listen() error {
	if s.sock != nil {
		return fmt.Errorf("listen on %s: already listening", s.socketPath)
	}
	sock, err := listenSocket(s.socketPath)
	if err != nil {
		return err
	}
	s.sock = sock
	return nil
}

// Serve answers requests until ctx is done, then shuts down gracefully, removes the socket and
// releases its lock. Listen must have succeeded.
func (s *Server) Serve(ctx context.Context) error {
	if s.sock == nil {
		return fmt.Errorf("serve %s: not listening", s.socketPath)
	}
	logger := klog.FromContext(ctx)
	s.http.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	ln := newCallerLimitListener(s.sock.ln, MaxConns, MaxConnsPerCaller, s.refused)
	go func() { errc <- s.http.Serve(ln) }()
	logger.Info("Node API serving", "socket", s.socketPath)
	var err error
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = s.http.Shutdown(shutdownCtx)
		cancel()
	case err = <-errc:
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.sock.close()
	logger.Info("Node API stopped", "socket", s.socketPath)
	if err != nil {
		return fmt.Errorf("serve node API on %s: %w", s.socketPath, err)
	}
	return nil
}

// Run is Listen followed by Serve.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Handler returns the HTTP handler of the API, for tests and for embedding.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.status())
	})
	mux.HandleFunc("POST /v1/register", func(w http.ResponseWriter, r *http.Request) {
		var reg Registration
		if !s.decode(w, r, &reg, maxSmallBody) {
			return
		}
		if reason, err := s.validate(reg); err != nil {
			s.refused(reason)
			writeError(w, http.StatusBadRequest, fmt.Errorf("registration %s: %w", reg.Key(), err))
			return
		}
		if err := s.store.Register(reg); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrTooManyRegistrations) {
				s.refused(RefusedTooMany)
				code = http.StatusTooManyRequests
			}
			writeError(w, code, err)
			return
		}
		klog.FromContext(r.Context()).V(4).Info("Registered pod", "attachment", reg.Key(), "pod", klog.KRef(reg.PodNamespace, reg.PodName))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/unregister", func(w http.ResponseWriter, r *http.Request) {
		var a Attachment
		if !s.decode(w, r, &a, maxSmallBody) {
			return
		}
		if err := a.Validate(); err != nil {
			s.refused(RefusedInvalid)
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if _, err := s.store.Unregister(a); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		klog.FromContext(r.Context()).V(4).Info("Unregistered pod", "attachment", a)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/gc", func(w http.ResponseWriter, r *http.Request) {
		var req GCRequest
		if !s.decode(w, r, &req, maxBody) {
			return
		}
		removed, err := s.store.GC(req.Valid)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		if removed == nil {
			removed = []Registration{}
		}
		writeJSON(w, http.StatusOK, GCResponse{Removed: removed})
	})
	mux.HandleFunc("POST /v1/yield", s.handleYield)
	mux.HandleFunc("GET /v1/registrations", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.store.List())
	})
	mux.HandleFunc("GET /v1/registration", func(w http.ResponseWriter, r *http.Request) {
		a := Attachment{ContainerID: r.URL.Query().Get("containerID"), IfName: r.URL.Query().Get("ifName")}
		if err := a.Validate(); err != nil {
			s.refused(RefusedInvalid)
			writeError(w, http.StatusBadRequest, err)
			return
		}
		reg, ok := s.store.Get(a)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("registration %s not found", a))
			return
		}
		writeJSON(w, http.StatusOK, reg)
	})
	return mux
}

// decode reads r's body (at most limit bytes) into v, or answers 400 and counts the refusal.
// A body declared larger than limit (Content-Length) is refused before any of it is read.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	if r.ContentLength > limit {
		s.refused(RefusedBodyTooLarge)
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, fmt.Errorf("request body too large: %d bytes declared, the limit is %d", r.ContentLength, limit))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.refused(RefusedBodyTooLarge)
		} else {
			s.refused(RefusedBadRequest)
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode request body: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorBody{Error: err.Error()})
}

// socketMode is the mode of the socket; dirMode of its directory.
const (
	socketMode os.FileMode = 0o600
	dirMode    os.FileMode = 0o700
)
