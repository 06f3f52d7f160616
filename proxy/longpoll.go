package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/timstack/timstack/policy"
)

// Long-polls (/sync, /events) spend nearly all their life waiting for the homeserver. Through
// httputil.ReverseProxy each one holds about 40 KB (the server connection's buffers, a pooled upstream
// connection with its reader and writer goroutines); 10 000 idle clients would need 400 MB. The long-poll
// path below holds one goroutine and two bare connections instead: after all checks, the client connection is
// hijacked, the request is written to a fresh upstream connection with "Connection: close", and the answer is
// copied back byte for byte until the homeserver closes. The client connection is closed afterwards (the
// answer carries the homeserver's "Connection: close"), which costs a client one reconnect per long-poll —
// cheap next to the wait itself.

// hopHeaders are connection-scoped and never forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forwardLongPoll forwards a body-less GET long-poll; handled=false means "use the ordinary path" (nothing
// was written). Errors before the hijack are answered as usual; after it, the connection is just closed.
func (p *Proxy) forwardLongPoll(w http.ResponseWriter, r *http.Request, timeout time.Duration) (handled bool, status int, err error) {
	if r.Method != http.MethodGet || r.ProtoMajor != 1 || r.ContentLength > 0 || len(r.TransferEncoding) > 0 ||
		p.hsURL.Scheme != "http" {
		return false, 0, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	up, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", p.hsURL.Host)
	if err != nil {
		p.metrics.upstreamErrors.WithLabelValues("homeserver", "dial").Inc()
		return true, 0, refuse(policy.ReasonUpstreamUnavailable).Wrap(err)
	}
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false, 0, nil // not hijackable (HTTP/2, tests): the ordinary path serves it
	}
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	// The server's buffers are not needed any more: nothing else is read from this connection.
	if brw.Reader.Buffered() > 0 {
		p.log.Debug("long-poll: pipelined bytes after the request are dropped; the client reconnects")
	}
	if fc, ok := client.(*framingConn); ok {
		fc.releaseBuffers()
	}
	deadline := time.Now().Add(timeout)
	_ = up.SetDeadline(deadline)
	_ = client.SetWriteDeadline(deadline)

	out := r.Clone(context.Background())
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	// As httputil.ProxyRequest.SetXForwarded: client-supplied X-Forwarded-* are replaced, never extended,
	// so a client cannot pose as another address.
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		out.Header.Del(h)
	}
	if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header.Set("X-Forwarded-For", clientIP)
	}
	out.Header.Set("X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	out.Header.Set("X-Forwarded-Proto", proto)
	out.Header.Set("Connection", "close")
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // net/http would add its own
	}
	out.URL.Scheme, out.URL.Host = p.hsURL.Scheme, p.hsURL.Host
	out.Close = true
	if err := out.Write(up); err != nil {
		p.metrics.upstreamErrors.WithLabelValues("homeserver", "write").Inc()
		return true, 0, nil
	}
	out.Header = nil // only the response parser's method check needs out from here on
	// The wait goes to a fresh goroutine and the handler returns: a new goroutine parked in a one-byte read
	// needs a fraction of the stack the handler's deep call chain has grown, and that is what 10 000 idle
	// long-polls multiply. The deadline bounds it; the homeserver's answer (or its failure) ends it.
	go p.pumpLongPoll(client, up, out)
	client, up = nil, nil // owned by the pump now
	return true, 0, nil
}

// pumpLongPoll waits for the homeserver's answer and relays it to the client, then closes both.
func (p *Proxy) pumpLongPoll(client, up net.Conn, out *http.Request) {
	defer client.Close()
	defer up.Close()
	var clientGone atomic.Bool
	go watchLongPollClient(client, up, &clientGone)
	// Wait for the first byte with a one-byte buffer: a bigger one would be held by every idle long-poll.
	var first [1]byte
	if _, err := io.ReadFull(up, first[:]); err != nil {
		if clientGone.Load() {
			p.metrics.longPolls.WithLabelValues("499").Inc()
			return
		}
		p.metrics.upstreamErrors.WithLabelValues("homeserver", "read").Inc()
		p.metrics.longPolls.WithLabelValues("502").Inc()
		const body = `{"errcode":"M_UNKNOWN","error":"Upstream unavailable"}`
		_, _ = io.WriteString(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body)
		return
	}
	rd := bufio.NewReaderSize(io.MultiReader(strings.NewReader(string(first[:])), up), 4096)
	resp, err := http.ReadResponse(rd, out)
	if err != nil {
		p.metrics.upstreamErrors.WithLabelValues("homeserver", "read").Inc()
		return
	}
	p.metrics.longPolls.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	defer resp.Body.Close()
	// The client's connection ends with this answer; say so, whatever the homeserver said, so the client
	// never sends its next request down a connection nobody reads any more.
	for _, h := range hopHeaders {
		if h != "Transfer-Encoding" && h != "Trailer" {
			resp.Header.Del(h)
		}
	}
	resp.Close = true
	_ = resp.Write(client)
}

// maxPipelined bounds what a long-poll client may send after its request. A client that pipelines its next
// request does not get an answer to it (the connection closes after the long-poll's answer) and resends
// it; one that keeps sending is not a Matrix client.
const maxPipelined = 64 << 10

// watchLongPollClient ends the homeserver long-poll when the client goes away. Clients drop connections
// all the time (an app sent to the background, a network switch) and open a new long-poll at once; without
// the watch each dropped one would stay open at the homeserver until its answer or the deadline. The watch
// is a read on the client connection, which ends when the client closes it or when the pump closes it
// after relaying the answer; closing the homeserver connection ends the pump's wait. It reads beneath the
// framing guard: nothing read here is handed to net/http.
func watchLongPollClient(client, up net.Conn, gone *atomic.Bool) {
	raw := client
	if fc, ok := client.(*framingConn); ok {
		raw = fc.Conn
	}
	var buf [1]byte
	for total := 0; total <= maxPipelined; {
		n, err := raw.Read(buf[:])
		total += n
		if err != nil {
			break
		}
	}
	gone.Store(true)
	_ = up.Close()
}
