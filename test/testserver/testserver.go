// Package testserver is the workload the test bed runs inside every simulated pod: an HTTP
// server that tells who answered and who asked, and TCP and UDP echo servers. Service scenarios
// use it to see which backend a connection reached and which source address it arrived from
// (so they can check masquerading and client-IP preservation).
//
// Protocol, the same on every transport:
//   - HTTP GET /hostname answers the configured hostname (the pod's name) and a newline.
//   - HTTP GET /clientip answers the client's IP address (no port) as the server saw it.
//   - HTTP GET /healthz answers "ok".
//   - TCP: each line received is answered with one line: "hostname" -> the hostname,
//     "clientip" -> the client's IP, anything else is echoed back.
//   - UDP: each datagram is answered with one datagram, by the same rule as a TCP line.
package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Config says what to serve where. A zero port disables that server.
type Config struct {
	// Hostname is what /hostname and the "hostname" command answer.
	Hostname string
	// HTTPPort, TCPPort and UDPPort are the ports to listen on, on all addresses.
	HTTPPort, TCPPort, UDPPort int
}

// ReadyLine is the line Run's caller prints once every listener is bound; the pod simulator
// waits for it.
const ReadyLine = "testserver ready"

// Server holds the bound listeners. Create it with Listen, then call Serve.
type Server struct {
	cfg  Config
	http net.Listener
	tcp  net.Listener
	udp  net.PacketConn
}

// Listen binds every configured port, so that once it returns clients can connect.
func Listen(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg}
	var err error
	if cfg.HTTPPort != 0 {
		if s.http, err = net.Listen("tcp", hostPort(cfg.HTTPPort)); err != nil {
			return nil, fmt.Errorf("listen http on port %d: %w", cfg.HTTPPort, err)
		}
	}
	if cfg.TCPPort != 0 {
		if s.tcp, err = net.Listen("tcp", hostPort(cfg.TCPPort)); err != nil {
			s.close()
			return nil, fmt.Errorf("listen tcp on port %d: %w", cfg.TCPPort, err)
		}
	}
	if cfg.UDPPort != 0 {
		if s.udp, err = net.ListenPacket("udp", hostPort(cfg.UDPPort)); err != nil {
			s.close()
			return nil, fmt.Errorf("listen udp on port %d: %w", cfg.UDPPort, err)
		}
	}
	return s, nil
}

func hostPort(port int) string { return net.JoinHostPort("", strconv.Itoa(port)) }

func (s *Server) close() {
	if s.http != nil {
		_ = s.http.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
	if s.udp != nil {
		_ = s.udp.Close()
	}
}

// Serve answers on every bound listener until ctx ends, then closes them and returns.
func (s *Server) Serve(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	if s.http != nil {
		srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(s.http); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serve http: %w", err)
			}
		})
		context.AfterFunc(ctx, func() { _ = srv.Close() })
	}
	if s.tcp != nil {
		wg.Go(func() { s.serveTCP(ctx) })
		context.AfterFunc(ctx, func() { _ = s.tcp.Close() })
	}
	if s.udp != nil {
		wg.Go(func() { s.serveUDP(ctx) })
		context.AfterFunc(ctx, func() { _ = s.udp.Close() })
	}
	logger.V(2).Info("Serving", "config", s.cfg)
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hostname", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, s.cfg.Hostname)
	})
	mux.HandleFunc("GET /clientip", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, hostOf(r.RemoteAddr))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// answer is the reply to one TCP line or UDP datagram.
func (s *Server) answer(msg, client string) string {
	switch strings.TrimSpace(msg) {
	case "hostname":
		return s.cfg.Hostname
	case "clientip":
		return hostOf(client)
	}
	return msg
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

func (s *Server) serveTCP(ctx context.Context) {
	for {
		conn, err := s.tcp.Accept()
		if err != nil {
			if ctx.Err() == nil {
				klog.FromContext(ctx).Error(err, "Accept TCP connection")
			}
			return
		}
		go s.echoTCP(conn)
	}
}

func (s *Server) echoTCP(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			reply := s.answer(strings.TrimRight(line, "\r\n"), conn.RemoteAddr().String())
			if _, werr := io.WriteString(conn, reply+"\n"); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *Server) serveUDP(ctx context.Context) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				klog.FromContext(ctx).Error(err, "Read UDP datagram")
			}
			return
		}
		reply := s.answer(string(buf[:n]), from.String())
		if _, err := s.udp.WriteTo([]byte(reply), from); err != nil {
			klog.FromContext(ctx).V(2).Info("Reply to UDP datagram failed", "to", from, "err", err)
		}
	}
}
