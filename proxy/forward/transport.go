package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/timstack/timstack/proxy/bufpool"
)

// ErrForbiddenAddress is returned when the egress would dial an address it must not reach: loopback,
// private, link-local, multicast and other special-purpose ranges, unless the test resolver map names it.
var ErrForbiddenAddress = errors.New("egress: destination address not allowed")

// EgressConfig configures the outbound transport. Zero values take the defaults named on each field.
type EgressConfig struct {
	// Resolve is a static resolver for tests and fixed deployments: "host:port" → "ip:port", or "host" →
	// "ip" (the request's port is kept). Addresses reached through it may be private.
	Resolve map[string]string
	// RootCAs verifies remote servers; nil uses the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds the wait for the remote's response headers (default 30s). Bodies stream without a
	// deadline of their own; the inbound side's write timeout bounds them.
	Timeout time.Duration
	// DialTimeout bounds TCP connect plus TLS handshake (default 10s).
	DialTimeout time.Duration
	// MaxIdleConnsPerHost keeps this many idle connections per remote (default 8).
	MaxIdleConnsPerHost int
	// AllowPrivate permits dialing special-purpose addresses found through DNS. Off by default: the
	// homeserver must not reach internal services through its federation egress.
	AllowPrivate bool
}

// Egress is the proxy's outbound http.RoundTripper. It dials the destination named in the request URL,
// verifies the remote certificate for that original host name, speaks HTTP/1.1 and forwards the request as
// it is: the homeserver has signed it.
type Egress struct {
	t            *http.Transport
	resolve      map[string]string
	allowPrivate bool
	dialTimeout  time.Duration
	resolver     *net.Resolver
	blocked      []netip.Prefix
	log          *slog.Logger
	buffers      bufpool.Pool
}

// NewEgress validates cfg and returns a ready transport.
func NewEgress(cfg EgressConfig, log *slog.Logger) (*Egress, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = 8
	}
	e := &Egress{
		resolve:      make(map[string]string, len(cfg.Resolve)),
		allowPrivate: cfg.AllowPrivate,
		dialTimeout:  cfg.DialTimeout,
		resolver:     net.DefaultResolver,
		blocked:      parsePrefixes(specialPurposeRanges),
		log:          log,
	}
	for k, v := range cfg.Resolve {
		key, val, err := resolveEntry(k, v)
		if err != nil {
			return nil, fmt.Errorf("egress: resolve entry %q: %w", k, err)
		}
		e.resolve[key] = val
	}
	e.t = &http.Transport{
		Proxy:       nil, // never chain to an environment proxy: this is the exit
		DialContext: e.dial,
		TLSClientConfig: &tls.Config{
			RootCAs:    cfg.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
		TLSHandshakeTimeout:    cfg.DialTimeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		// No transparent gzip: Accept-Encoding stays what the homeserver sent.
		DisableCompression: true,
		// HTTP/1.1 only; a non-nil empty map disables the bundled HTTP/2.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return e, nil
}

// resolveEntry normalises one Resolve map entry. Keys are "host" or "host:port"; values an IP literal,
// with a port exactly when the key has one.
func resolveEntry(k, v string) (key, val string, err error) {
	kt, err := parseAuthority(k, -1)
	if err != nil {
		return "", "", err
	}
	if kt.Port == -1 {
		a, err := netip.ParseAddr(strings.Trim(v, "[]"))
		if err != nil {
			return "", "", fmt.Errorf("value must be an IP literal: %w", err)
		}
		return kt.Host, a.String(), nil
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		return "", "", fmt.Errorf("value must be ip:port: %w", err)
	}
	return kt.String(), ap.String(), nil
}

// CloseIdleConnections closes idle upstream connections.
func (e *Egress) CloseIdleConnections() { e.t.CloseIdleConnections() }

// RoundTrip sends req to the host in req.URL. It accepts server requests as the forward proxy produced them
// (RequestURI set): the raw request-target bytes are kept, so a signed X-Matrix URI arrives as signed.
func (e *Egress) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || (req.URL.Scheme != "https" && req.URL.Scheme != "http") || req.URL.Host == "" {
		return nil, errors.New("egress: request needs an absolute http(s) URL")
	}
	out := new(http.Request)
	*out = *req
	u := *req.URL
	out.URL = &u
	if strings.HasPrefix(req.RequestURI, "/") {
		rawPath, _, _ := strings.Cut(req.RequestURI, "?")
		// URL.EscapedPath re-encodes some bytes differently from the client; Opaque makes net/http write the
		// path exactly as received. A path starting with "//" would read as an authority, so it keeps the
		// re-encoded form.
		if rawPath != u.EscapedPath() && !strings.HasPrefix(rawPath, "//") {
			u.Opaque = rawPath
			u.RawPath = ""
		}
	}
	out.RequestURI = ""
	if _, ok := req.Header["User-Agent"]; !ok {
		// net/http would add "Go-http-client/1.1"; an empty value suppresses it.
		out.Header = req.Header.Clone()
		if out.Header == nil {
			out.Header = make(http.Header)
		}
		out.Header["User-Agent"] = []string{""}
	}
	resp, err := e.t.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("egress %s: %w", u.Host, err)
	}
	return resp, nil
}

// ReverseProxy returns a ReverseProxy over this transport whose Rewrite only routes: the outbound request
// goes to the scheme and authority the inbound request names (set by the forward proxy), Host unchanged.
// errorHandler answers transport failures; nil writes a bare 502.
func (e *Egress) ReverseProxy(errorHandler func(http.ResponseWriter, *http.Request, error)) *httputil.ReverseProxy {
	if errorHandler == nil {
		errorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			e.log.Warn("egress failed", "target", r.URL.Host, "error", err)
			w.WriteHeader(http.StatusBadGateway)
		}
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = pr.In.URL.Scheme
			pr.Out.URL.Host = pr.In.URL.Host
			pr.Out.Host = pr.In.Host
		},
		Transport:    e,
		BufferPool:   &e.buffers,
		ErrorHandler: errorHandler,
		ErrorLog:     slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
}

// dial resolves addr through the static map or DNS and connects to the first permitted address.
func (e *Egress) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	t, err := parseAuthority(addr, 0)
	if err != nil {
		return nil, fmt.Errorf("egress dial %q: %w", addr, err)
	}
	d := &net.Dialer{Timeout: e.dialTimeout}
	if v, ok := e.resolve[t.String()]; ok {
		return d.DialContext(ctx, network, v)
	}
	if v, ok := e.resolve[t.Host]; ok {
		return d.DialContext(ctx, network, net.JoinHostPort(v, strconv.Itoa(t.Port)))
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(t.Host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		rctx, cancel := context.WithTimeout(ctx, e.dialTimeout)
		addrs, err = e.resolver.LookupNetIP(rctx, "ip", t.Host)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("egress resolve %s: %w", t.Host, err)
		}
	}
	var lastErr error
	for _, a := range addrs {
		a = a.Unmap()
		if !e.allowPrivate && e.specialPurpose(a) {
			lastErr = fmt.Errorf("%w: %s resolves to %s", ErrForbiddenAddress, t.Host, a)
			continue
		}
		c, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(t.Port)).String())
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("egress resolve %s: no addresses", t.Host)
	}
	return nil, lastErr
}

// specialPurposeRanges mirrors Synapse's default ip_range_blacklist plus 0.0.0.0/8 and 240.0.0.0/4: ranges
// that never host a federation peer. 64:ff9b::/96 (NAT64) is included because it may embed any of them.
const specialPurposeRanges = "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 " +
	"192.0.0.0/24 192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 " +
	"224.0.0.0/4 240.0.0.0/4 ::/128 ::1/128 64:ff9b::/96 2001:db8::/32 fc00::/7 fe80::/10 fec0::/10 ff00::/8"

func parsePrefixes(list string) []netip.Prefix {
	fields := strings.Fields(list)
	out := make([]netip.Prefix, len(fields))
	for i, f := range fields {
		out[i] = netip.MustParsePrefix(f)
	}
	return out
}

func (e *Egress) specialPurpose(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range e.blocked {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
