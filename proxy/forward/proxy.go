package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config tunes the forward-proxy listener. Zero values take the defaults named on each field.
type Config struct {
	// AllowedPorts limits CONNECT and absolute-form targets to these ports; empty allows 1-65535. Federation
	// needs 8448 and 443 (well-known, delegated servers); push gateways often 80/443.
	AllowedPorts []int
	// HandshakeTimeout bounds reading the CONNECT request and the TLS handshake in the tunnel (default 10s).
	HandshakeTimeout time.Duration
	// ReadHeaderTimeout bounds reading each request's headers inside a tunnel (default 10s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a tunnel with no request in flight after this long (default 90s).
	IdleTimeout time.Duration
	// ReadTimeout bounds reading one tunnelled request including its body (default 2m), so a client
	// trickling a body cannot hold a tunnel forever.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response back into the tunnel (default 5m: remote media can be large).
	WriteTimeout time.Duration
	// MaxHeaderBytes caps request headers, on the listener and inside tunnels (default 64 KiB).
	MaxHeaderBytes int
	// MaxTunnels caps concurrently open tunnels; further CONNECTs get 503 (default 1024).
	MaxTunnels int
}

func (c Config) withDefaults() Config {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 90 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 2 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Minute
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxTunnels <= 0 {
		c.MaxTunnels = 1024
	}
	return c
}

// Proxy is the homeserver's forward proxy (tim-proxy-spec.md §3.1 "HTTPS-Forwarding"). It accepts
// `CONNECT host:port`, terminates TLS inside the tunnel with a leaf minted by the proxy CA, and hands every
// request from the tunnel to the egress handler as an ordinary server request whose URL is
// https://<CONNECT authority><request URI>. Plain-HTTP absolute-form requests reach the same handler with
// scheme http. The Proxy decides nothing about destinations; the handler does.
type Proxy struct {
	cfg     Config
	ca      *CA
	handler http.Handler
	log     *slog.Logger
	ports   map[int]bool
	slots   chan struct{}

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
	closed  bool
}

// New returns a Proxy that serves tunnels with leaves from ca and passes requests to handler.
func New(cfg Config, ca *CA, handler http.Handler, log *slog.Logger) *Proxy {
	cfg = cfg.withDefaults()
	p := &Proxy{
		cfg:     cfg,
		ca:      ca,
		handler: handler,
		log:     log,
		slots:   make(chan struct{}, cfg.MaxTunnels),
		tunnels: make(map[net.Conn]struct{}),
	}
	if len(cfg.AllowedPorts) > 0 {
		p.ports = make(map[int]bool, len(cfg.AllowedPorts))
		for _, port := range cfg.AllowedPorts {
			p.ports[port] = true
		}
	}
	return p
}

// Server returns an http.Server for the forward listener with the proxy's header limits and timeouts. The
// read and write timeouts cover plain-HTTP requests; hijacked tunnels replace the deadlines with their own.
func (p *Proxy) Server() *http.Server {
	return &http.Server{
		Handler: p,
		// "OPTIONS *" would otherwise be answered 200 by net/http itself.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            p.cfg.HandshakeTimeout,
		ReadTimeout:                  p.cfg.ReadTimeout,
		WriteTimeout:                 p.cfg.WriteTimeout,
		IdleTimeout:                  p.cfg.IdleTimeout,
		MaxHeaderBytes:               p.cfg.MaxHeaderBytes,
		ErrorLog:                     slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// Close ends every open tunnel and refuses new ones. The listener's own http.Server is shut down by its
// owner; hijacked connections are not tracked there, hence this method.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := make([]net.Conn, 0, len(p.tunnels))
	for c := range p.tunnels {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

type targetKey struct{}

// TargetFrom returns the CONNECT (or absolute-form) authority the current request was sent to.
func TargetFrom(ctx context.Context) (Target, bool) {
	t, ok := ctx.Value(targetKey{}).(Target)
	return t, ok
}

// ServeHTTP dispatches the forms a forward proxy receives: CONNECT authority-form opens a tunnel,
// absolute-form http:// goes to the handler, anything else is refused.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r)
	case r.URL.IsAbs():
		p.plain(w, r)
	default:
		// Origin-form or asterisk-form: someone is talking to the proxy as if it were a server.
		http.Error(w, "forward proxy: absolute-form or CONNECT required", http.StatusBadRequest)
	}
}

func (p *Proxy) portAllowed(port int) bool { return p.ports == nil || p.ports[port] }

// plain handles `GET http://host/path HTTP/1.1`. RFC 9112 §3.2.2: the absolute URI's authority wins over
// Host; Go already put it into r.Host. RequestURI is rewritten to origin form with the client's raw bytes so
// the handler sees the same request-target the remote will.
func (p *Proxy) plain(w http.ResponseWriter, r *http.Request) {
	if r.URL.Scheme != "http" {
		http.Error(w, "forward proxy: only http:// in absolute form; use CONNECT for https", http.StatusBadRequest)
		return
	}
	if r.URL.User != nil {
		http.Error(w, "forward proxy: userinfo not allowed", http.StatusBadRequest)
		return
	}
	t, err := parseAuthority(r.URL.Host, 80)
	if err != nil {
		http.Error(w, "forward proxy: invalid authority", http.StatusBadRequest)
		return
	}
	if !p.portAllowed(t.Port) {
		http.Error(w, "forward proxy: port not allowed", http.StatusForbidden)
		return
	}
	r2 := r.WithContext(context.WithValue(r.Context(), targetKey{}, t))
	r2.URL.Host = t.String()
	r2.Host = r2.URL.Host
	r2.RequestURI = originForm(r.RequestURI)
	p.handler.ServeHTTP(w, r2)
}

// originForm strips "scheme://authority" from an absolute request-target, keeping the raw path and query.
func originForm(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	j := strings.IndexAny(rest, "/?")
	if j < 0 {
		return "/"
	}
	if rest[j] == '?' {
		return "/" + rest[j:]
	}
	return rest[j:]
}

// connect opens one tunnel: validate, answer 200, TLS-handshake with a minted leaf, serve HTTP/1.1.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 {
		http.Error(w, "forward proxy: CONNECT only over HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	t, err := parseAuthority(r.RequestURI, 0)
	if err != nil {
		p.log.Info("connect refused", "reason", "invalid authority", "error", err)
		http.Error(w, "forward proxy: invalid CONNECT authority", http.StatusBadRequest)
		return
	}
	if !p.portAllowed(t.Port) {
		p.log.Info("connect refused", "reason", "port not allowed", "target", t.String())
		http.Error(w, "forward proxy: port not allowed", http.StatusForbidden)
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.log.Warn("connect refused", "reason", "tunnel limit reached", "limit", p.cfg.MaxTunnels)
		http.Error(w, "forward proxy: too many tunnels", http.StatusServiceUnavailable)
		return
	}
	defer func() { <-p.slots }()

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "forward proxy: cannot hijack", http.StatusInternalServerError)
		return
	}
	if !p.track(conn) {
		_ = conn.Close()
		return
	}
	defer p.untrack(conn)
	defer conn.Close()

	_ = conn.SetDeadline(time.Now().Add(p.cfg.HandshakeTimeout))
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	// Clients may send the ClientHello right behind the CONNECT; it can sit in the server's read buffer.
	var raw net.Conn = conn
	if brw.Reader.Buffered() > 0 {
		raw = &bufferedConn{Conn: conn, r: brw.Reader}
	}
	tc := tls.Server(raw, p.tlsConfig(t))
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.HandshakeTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		p.log.Info("tunnel handshake failed", "target", t.String(), "error", err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	p.serveTunnel(tc, t)
}

func (p *Proxy) tlsConfig(t Target) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			// Without SNI (IP literal targets, RFC 6066 §3) the CONNECT host names the certificate. With SNI it
			// must agree: a tunnel opened for one host must not carry a session for another.
			if hello.ServerName != "" {
				sni, err := normaliseHost(hello.ServerName)
				if err != nil || sni != t.Host {
					return nil, fmt.Errorf("forward proxy: SNI %q does not match CONNECT host %q", hello.ServerName, t.Host)
				}
			}
			return p.ca.CertificateFor(t.Host)
		},
	}
}

// serveTunnel runs an http.Server over exactly one TLS connection until the client closes it or it idles out.
func (p *Proxy) serveTunnel(tc *tls.Conn, t Target) {
	done := make(chan struct{})
	var once sync.Once
	srv := &http.Server{
		Handler:                      p.tunnelHandler(t),
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            p.cfg.ReadHeaderTimeout,
		ReadTimeout:                  p.cfg.ReadTimeout,
		WriteTimeout:                 p.cfg.WriteTimeout,
		IdleTimeout:                  p.cfg.IdleTimeout,
		MaxHeaderBytes:               p.cfg.MaxHeaderBytes,
		ErrorLog:                     slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, targetKey{}, t)
		},
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				once.Do(func() { close(done) })
			}
		},
	}
	// HTTP/2 inside the tunnel is not offered (ALPN http/1.1 only); an empty map keeps it that way.
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	_ = srv.Serve(&oneConnListener{conn: tc, done: done})
	<-done
}

// tunnelHandler rewrites each tunnelled request into proxy form for the egress handler.
func (p *Proxy) tunnelHandler(t Target) http.Handler {
	authority := t.String()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			http.Error(w, "forward proxy: CONNECT inside a tunnel", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.IsAbs() || !strings.HasPrefix(r.RequestURI, "/") {
			http.Error(w, "forward proxy: origin-form request-target required in a tunnel", http.StatusBadRequest)
			return
		}
		if r.Header.Get("Upgrade") != "" {
			// A protocol switch would hijack the tunnel's connection away from serveTunnel's lifecycle, and
			// federation never upgrades.
			http.Error(w, "forward proxy: protocol upgrades are not tunnelled", http.StatusNotImplemented)
			return
		}
		hostT, err := parseAuthority(r.Host, t.Port)
		if err != nil || hostT.Host != t.Host || hostT.Port != t.Port {
			// The Host header may omit the port; when it carries one it must be the tunnel's.
			p.log.Info("tunnel request refused", "reason", "host mismatch", "target", authority)
			http.Error(w, "forward proxy: Host does not match CONNECT target", http.StatusBadRequest)
			return
		}
		r.URL.Scheme = "https"
		r.URL.Host = authority
		p.handler.ServeHTTP(w, r)
	})
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.tunnels[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.tunnels, c)
	p.mu.Unlock()
}

// bufferedConn reads first what the HTTP server had already buffered from the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// oneConnListener hands out a single connection, then blocks Accept until that connection is closed so that
// http.Server.Serve neither spins nor returns early.
type oneConnListener struct {
	mu   sync.Mutex
	conn net.Conn
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr { return tunnelAddr{} }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "tunnel" }
func (tunnelAddr) String() string  { return "tunnel" }
