package nodeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
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
	// errConflict: the server answered 409.
	errConflict = errors.New("conflict")
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
}

// NewClient returns a client for the server on socketPath. Each request opens its own
// connection and speaks HTTP/1.1 on it directly, without a pooling Transport: the CNI plugin,
// a process that lives a few milliseconds, makes one request per run.
func NewClient(socketPath string) *Client {
	return &Client{socketPath: socketPath}
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

// roundTrip dials the socket, writes req and reads its response on that connection, within
// ctx's deadline, and returns the status code and the body (at most maxBody bytes).
func (c *Client) roundTrip(ctx context.Context, req *http.Request) (int, []byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socketPath)
	if err != nil {
		return 0, nil, fmt.Errorf("dial %s: %w: %w", c.socketPath, ErrUnavailable, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(conn); err != nil {
		return 0, nil, fmt.Errorf("write request: %w", ctxErr(ctx, err))
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, nil, fmt.Errorf("read response: %w", ctxErr(ctx, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read response: %w", ctxErr(ctx, err))
	}
	return resp.StatusCode, b, nil
}

// ctxErr names the context's error when it ended the exchange, else returns err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
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
	req.Close = true // one request per connection
	status, b, err := c.roundTrip(ctx, req)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status/100 != 2 {
		var e ErrorBody
		msg := string(b)
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if status == http.StatusNotFound {
			return fmt.Errorf("%s %s: %w: %s", method, path, ErrNotFound, msg)
		}
		if status == http.StatusConflict {
			return fmt.Errorf("%s %s: %w: %s", method, path, errConflict, msg)
		}
		return fmt.Errorf("%s %s: status %d: %s", method, path, status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode %s response: %w", path, err)
		}
	}
	return nil
}
