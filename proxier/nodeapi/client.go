package nodeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// DefaultTimeout bounds each client request unless the context is shorter.
const DefaultTimeout = 2 * time.Second

// Sentinel errors of the client; use errors.Is.
var (
	// ErrUnavailable: nothing answers on the socket (absent, refused, or timed out connecting).
	ErrUnavailable = errors.New("node API unavailable")
	// ErrNotFound: the registration asked for does not exist.
	ErrNotFound = errors.New("registration not found")
)

// NotListening reports whether err says that nothing listens on the socket at all (no socket
// file, or connection refused), as opposed to a server that is slow to answer. The plugin
// launches the proxier only then.
func NotListening(err error) bool {
	return errors.Is(err, ErrUnavailable) && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED))
}

// Client talks to a node API server. It is safe for concurrent use.
type Client struct {
	socketPath string
	// Timeout bounds each request (DefaultTimeout when zero).
	Timeout time.Duration
	http    *http.Client
}

// NewClient returns a client for the server on socketPath.
func NewClient(socketPath string) *Client {
	dialer := &net.Dialer{Timeout: DefaultTimeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, "unix", socketPath)
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w: %w", socketPath, ErrUnavailable, err)
			}
			return c, nil
		},
		MaxIdleConns:        2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: time.Second,
	}
	return &Client{socketPath: socketPath, http: &http.Client{Transport: tr}}
}

// SocketPath returns the socket the client talks to.
func (c *Client) SocketPath() string { return c.socketPath }

// Status returns the proxier's readiness and node info.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Register records r with the proxier (idempotent).
func (c *Client) Register(ctx context.Context, r Registration) error {
	return c.do(ctx, http.MethodPost, "/v1/register", r, nil)
}

// Unregister removes the registration a (idempotent: absent is not an error).
func (c *Client) Unregister(ctx context.Context, a Attachment) error {
	return c.do(ctx, http.MethodPost, "/v1/unregister", a, nil)
}

// GC drops every registration not in valid and returns those it removed.
func (c *Client) GC(ctx context.Context, valid []Attachment) ([]Registration, error) {
	if valid == nil {
		valid = []Attachment{}
	}
	var resp GCResponse
	err := c.do(ctx, http.MethodPost, "/v1/gc", GCRequest{Valid: valid}, &resp)
	return resp.Removed, err
}

// Get returns the registration a; ErrNotFound if absent.
func (c *Client) Get(ctx context.Context, a Attachment) (Registration, error) {
	var r Registration
	q := url.Values{"containerID": {a.ContainerID}, "ifName": {a.IfName}}
	err := c.do(ctx, http.MethodGet, "/v1/registration?"+q.Encode(), nil, &r)
	return r, err
}

// List returns every registration.
func (c *Client) List(ctx context.Context) ([]Registration, error) {
	var rs []Registration
	err := c.do(ctx, http.MethodGet, "/v1/registrations", nil, &rs)
	return rs, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://kubevs"+path, body)
	if err != nil {
		return fmt.Errorf("build %s request: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read %s response: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorBody
		msg := string(b)
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%s %s: %w: %s", method, path, ErrNotFound, msg)
		}
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode %s response: %w", path, err)
		}
	}
	return nil
}
