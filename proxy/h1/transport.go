// Package h1 is the proxy's client for its own homeserver: synchronous HTTP/1.1 round trips over a pool of
// keep-alive connections.
//
// net/http's Transport runs two goroutines per connection (one writes requests, one reads responses) and
// hands every request and response between them and the caller through channels. For a proxy whose
// homeserver sits on the same host or LAN, those hand-offs cost about as much CPU as the policy decision:
// every request wakes two goroutines and often a thread. This Transport writes the request and reads the
// response head on the calling goroutine and lets the caller read the body straight from the connection.
// The wire format stays net/http's own: requests are written by http.Request.Write and responses parsed
// by http.ReadResponse, the parser net/http's Transport uses.
//
// It takes only what it can do as well as net/http: plain http:// requests whose body is absent or held in
// memory (GetBody set, so a retry can resend it). Anything else (TLS to the homeserver, a streamed upload
// that the homeserver may answer before it has read it, a protocol upgrade) goes to the Fallback transport.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// Transport is an http.RoundTripper for plain HTTP/1.1. Its zero value is not usable: set Dial and
// Fallback.
type Transport struct {
	// Dial opens a connection to the homeserver.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Fallback serves the requests this transport does not take (see the package comment).
	Fallback http.RoundTripper
	// MaxIdle is how many idle connections are kept per host (default 256).
	MaxIdle int
	// IdleTimeout closes a connection that was idle this long instead of reusing it (default 90 s). It
	// should be shorter than the homeserver's own keep-alive timeout.
	IdleTimeout time.Duration

	mu   sync.Mutex
	idle map[string][]*conn // per host:port, most recently used last
}

// conn is one keep-alive connection.
type conn struct {
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	read      bool // a byte of the current response arrived
	idleSince time.Time
	raw       syscall.RawConn // for open's peek; set on its first use
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.nc.Read(p)
	if n > 0 {
		c.read = true
	}
	return n, err
}

// aLongTimeAgo is a deadline in the past: it makes a blocked read or write on the connection return.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.takes(req) {
		if t.Fallback == nil {
			closeBody(req)
			return nil, errors.New("homeserver round trip: no fallback transport for this request")
		}
		return t.Fallback.RoundTrip(req)
	}
	ctx := req.Context()
	addr := hostPort(req)
	idempotent := isIdempotent(req.Method)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			closeBody(req)
			return nil, fmt.Errorf("homeserver round trip: %w", context.Cause(ctx))
		}
		c, reused, err := t.get(ctx, addr)
		if err != nil {
			closeBody(req)
			return nil, fmt.Errorf("homeserver round trip: dial %s: %w", addr, err)
		}
		resp, err := t.roundTrip(ctx, c, req, addr)
		if err == nil {
			return resp, nil
		}
		// get only hands out idle connections that are still open, but the homeserver may close one just
		// after that check: the request then fails before any byte of an answer. An idempotent request is
		// sent again, once, on a new connection; any other failure is reported, as the homeserver may have
		// acted on the request.
		if reused && idempotent && !c.read && attempt == 0 && ctx.Err() == nil && retryable(err) {
			if req.GetBody != nil {
				body, gerr := req.GetBody()
				if gerr != nil {
					return nil, fmt.Errorf("homeserver round trip: %w", err)
				}
				req = cloneWithBody(req, body)
			}
			continue
		}
		closeBody(req)
		return nil, fmt.Errorf("homeserver round trip: %w", err)
	}
}

// takes reports whether the request is one this transport serves itself.
func (t *Transport) takes(req *http.Request) bool {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // streamed: the homeserver may answer before it read it all
	}
	if req.Header.Get("Upgrade") != "" {
		return false
	}
	return true
}

// roundTrip writes req on c and reads the answer's head. On error c is closed.
func (t *Transport) roundTrip(ctx context.Context, c *conn, req *http.Request, addr string) (*http.Response, error) {
	deadline, _ := ctx.Deadline()
	_ = c.nc.SetDeadline(deadline) // zero: none
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		return nil, contextError(ctx, err)
	}
	c.read = false
	if err := req.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(err)
	}
	var resp *http.Response
	for {
		var err error
		if resp, err = http.ReadResponse(c.br, req); err != nil {
			return fail(err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			resp.Body.Close()
			return fail(errors.New("homeserver switched protocols on a request that did not ask for it"))
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			break
		}
		// 100 Continue and other interim answers: the final one follows.
		resp.Body.Close()
	}
	resp.Body = &body{rc: resp.Body, c: c, t: t, addr: addr, stop: stop, ctx: ctx,
		keep: !resp.Close && !req.Close}
	return resp, nil
}

// body is a response body read straight from the connection; the connection goes back to the pool when
// the body was read to its end, and is closed otherwise.
type body struct {
	rc   io.ReadCloser
	c    *conn
	t    *Transport
	addr string
	stop func() bool
	ctx  context.Context
	keep bool
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
		return n, io.EOF
	}
	if err != nil {
		b.finish(false)
		err = contextError(b.ctx, err)
	}
	return n, err
}

func (b *body) Close() error {
	b.finish(b.rc == http.NoBody) // an answer without a body is complete unread
	return nil
}

// finish ends the response: complete says the body was read to its end.
func (b *body) finish(complete bool) {
	if b.done {
		return
	}
	b.done = true
	// stop is false when the context's AfterFunc already ran (or is running): the connection's deadline
	// was moved into the past, so it is not reused.
	if complete && b.keep && b.stop() && b.c.br.Buffered() == 0 {
		b.t.put(b.addr, b.c)
		return
	}
	b.stop()
	b.c.nc.Close()
}

// get returns an idle connection to addr, or a new one; reused says which. An idle connection is only
// taken when the homeserver has neither closed it meanwhile nor sent anything on it: net/http's Transport
// watches idle connections with a reader goroutine each; this looks once, when one is taken (a
// non-blocking peek, one system call).
func (t *Transport) get(ctx context.Context, addr string) (*conn, bool, error) {
	timeout := t.IdleTimeout
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	now := time.Now()
	t.mu.Lock()
	for {
		list := t.idle[addr]
		if len(list) == 0 {
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		if now.Sub(c.idleSince) >= timeout {
			c.nc.Close()
			continue
		}
		t.mu.Unlock()
		if open(c) {
			return c, true, nil
		}
		c.nc.Close()
		t.mu.Lock()
	}
	t.mu.Unlock()
	nc, err := t.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	c := &conn{nc: nc}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, false, nil
}

// put returns c to the pool.
func (t *Transport) put(addr string, c *conn) {
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		c.nc.Close()
		return
	}
	max := t.MaxIdle
	if max <= 0 {
		max = 256
	}
	c.idleSince = time.Now()
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(map[string][]*conn)
	}
	if len(t.idle[addr]) < max {
		t.idle[addr] = append(t.idle[addr], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// CloseIdleConnections closes the pooled connections (and those of the fallback transport).
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
	if ci, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// contextError reports a failure the request's context caused as the context's error: the socket deadline
// (set to the context's) can expire a moment before the context itself says so.
func contextError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if deadline, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return err
}

// retryable: the errors of a connection the peer closed, as seen by a write or by the first read.
func retryable(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func hostPort(req *http.Request) string {
	if req.URL.Port() != "" {
		return req.URL.Host
	}
	return net.JoinHostPort(req.URL.Hostname(), "80")
}

// isIdempotent: the methods HTTP (RFC 9110 §9.2.2) lets a client repeat. Matrix's PUT endpoints are
// idempotent by their transaction IDs.
func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func cloneWithBody(req *http.Request, b io.ReadCloser) *http.Request {
	out := new(http.Request)
	*out = *req
	out.Body = b
	return out
}
