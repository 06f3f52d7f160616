package proxy

// A byte-level guard in front of net/http on the client and federation listeners.
//
// net/http is lenient where a proxy must not be: it accepts Content-Length together with
// Transfer-Encoding (and silently drops Content-Length, transfer.go), header lines ending in a bare LF,
// and it folds duplicate Content-Length values that agree. The homeserver behind the proxy (Twisted) has
// its own reading of such requests; when the two readings differ, a second request can hide in the
// body of the first (request smuggling). The guard reads every request's header block before net/http
// sees a byte of it and refuses the ambiguous ones outright, so net/http only ever parses requests with
// one reading. It follows message framing (Content-Length and chunked bodies) to find the next request on
// a keep-alive connection.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// maxHeaderBlock bounds a request's header block as net/http does (MaxHeaderBytes of Run plus the 4 KiB
// slack net/http adds).
const maxHeaderBlock = 64<<10 + 4096

// maxChunkLine bounds a chunk-size line as net/http's chunked reader does.
const maxChunkLine = 4096

// ambiguousResponse answers a request whose framing has more than one reading; the connection is closed
// after it, so nothing that follows on the connection is read.
const ambiguousResponse = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n" +
	"Content-Length: 55\r\n\r\n" + `{"errcode":"M_UNRECOGNIZED","error":"Ambiguous request"}`

// tooLargeResponse answers a header block larger than maxHeaderBlock.
const tooLargeResponse = "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Type: application/json\r\n" +
	"Content-Length: 52\r\n\r\n" + `{"errcode":"M_TOO_LARGE","error":"Request too large"}`

// framingError says why the guard refused a request. Why is a fixed string, never input, so it can be
// logged as it is.
type framingError struct{ why string }

func (e *framingError) Error() string { return "ambiguous request framing: " + e.why }

var (
	errBareLF          = &framingError{"line ends in a bare LF"}
	errRequestLine     = &framingError{"malformed request line"}
	errHTTPVersion     = &framingError{"HTTP version other than 1.0 or 1.1"}
	errObsFold         = &framingError{"obsolete line folding"}
	errHeaderName      = &framingError{"header name empty or not a token"}
	errHeaderValue     = &framingError{"control character in header value"}
	errCLAndTE         = &framingError{"both Content-Length and Transfer-Encoding"}
	errDuplicateCL     = &framingError{"more than one Content-Length"}
	errBadCL           = &framingError{"Content-Length is not a decimal number"}
	errBadTE           = &framingError{"Transfer-Encoding other than exactly chunked"}
	errTEOnHTTP10      = &framingError{"Transfer-Encoding on an HTTP/1.0 request"}
	errDuplicateHost   = &framingError{"more than one Host"}
	errHeaderTooLarge  = &framingError{"header block too large"}
	errChunkLine       = &framingError{"malformed chunk-size line"}
	errChunkTerminator = &framingError{"chunk data not followed by CRLF"}
	errTrailer         = &framingError{"trailer fields in a chunked request"}
)

// scanState is where in a message the scanner is.
type scanState uint8

const (
	stHeader    scanState = iota // collecting a header block
	stBody                       // remain bytes of a Content-Length body
	stChunkSize                  // collecting a chunk-size line
	stChunkData                  // remain bytes of chunk data
	stChunkCRLF                  // the CRLF after chunk data; crlf bytes of it seen
	stLastCRLF                   // the CRLF that ends a chunked body (no trailers); crlf bytes seen
)

// framingScanner follows the requests on one connection. It withholds each header block until it is
// complete and checked, and passes bodies through as they come, following their framing. It is not safe
// for concurrent use; net/http never reads one connection concurrently.
type framingScanner struct {
	state  scanState
	remain int64
	crlf   int
	buf    []byte // partial header block or chunk-size line
	rest   []byte // bytes after a header block found in buf, still to scan
	// Where the header search in buf stands: start of the current line, and how far '\n' was searched.
	lineStart, searched int
	// requests counts the header blocks released; a refusal of a later request cannot be answered
	// safely while an earlier response may still be written.
	requests int
}

// scan consumes in and appends the bytes net/http may read to out. On a refusal it returns the bytes
// released before the refused part, and the error; the scanner must not be used after an error.
func (s *framingScanner) scan(in, out []byte) ([]byte, error) {
	for len(in) > 0 {
		switch s.state {
		case stHeader:
			var block []byte
			if len(s.buf) == 0 {
				// Fast path: the whole header block is in this read.
				end, bad := headerEnd(in, 0, 0)
				if bad != nil {
					return out, bad
				}
				if end > 0 {
					block, in = in[:end], in[end:]
				}
			}
			if block == nil {
				if len(s.buf)+len(in) > maxHeaderBlock {
					return out, errHeaderTooLarge
				}
				s.buf = append(s.buf, in...)
				in = nil
				end, bad := s.searchBuf()
				if bad != nil {
					return out, bad
				}
				if end == 0 {
					return out, nil
				}
				block = s.buf[:end]
				s.rest = append(s.rest[:0], s.buf[end:]...)
				in = s.rest
			}
			if len(block) > maxHeaderBlock {
				return out, errHeaderTooLarge
			}
			f, err := checkHeaderBlock(block)
			if err != nil {
				return out, err
			}
			out = append(out, block...)
			s.buf, s.lineStart, s.searched = s.buf[:0], 0, 0
			s.requests++
			switch {
			case f.chunked:
				s.state = stChunkSize
			case f.length > 0:
				s.state, s.remain = stBody, f.length
			}
		case stBody, stChunkData:
			n := int64(len(in))
			n = min(n, s.remain)
			out = append(out, in[:n]...)
			in = in[n:]
			s.remain -= n
			if s.remain == 0 {
				if s.state == stBody {
					s.state = stHeader
				} else {
					s.state, s.crlf = stChunkCRLF, 0
				}
			}
		case stChunkCRLF, stLastCRLF:
			if in[0] != "\r\n"[s.crlf] {
				if s.state == stLastCRLF {
					return out, errTrailer
				}
				return out, errChunkTerminator
			}
			out = append(out, in[0])
			in = in[1:]
			if s.crlf++; s.crlf == 2 {
				if s.state == stLastCRLF {
					s.state = stHeader
				} else {
					s.state = stChunkSize
				}
			}
		case stChunkSize:
			i := bytes.IndexByte(in, '\n')
			if i < 0 {
				if len(s.buf)+len(in) > maxChunkLine {
					return out, errChunkLine
				}
				s.buf = append(s.buf, in...)
				return out, nil
			}
			line := in[:i+1]
			if len(s.buf) > 0 {
				if len(s.buf)+len(line) > maxChunkLine {
					return out, errChunkLine
				}
				s.buf = append(s.buf, line...)
				line = s.buf
			}
			size, err := parseChunkLine(line)
			if err != nil {
				return out, err
			}
			out = append(out, line...)
			in = in[i+1:]
			s.buf = s.buf[:0]
			if size == 0 {
				s.state, s.crlf = stLastCRLF, 0
			} else {
				s.state, s.remain = stChunkData, size
			}
		}
	}
	return out, nil
}

// searchBuf continues the header-block search in buf; it returns the block's length, or 0 while the
// block is incomplete.
func (s *framingScanner) searchBuf() (int, error) {
	for {
		j := bytes.IndexByte(s.buf[s.searched:], '\n')
		if j < 0 {
			s.searched = len(s.buf)
			return 0, nil
		}
		j += s.searched
		if j == 0 || s.buf[j-1] != '\r' {
			return 0, errBareLF
		}
		if j-s.lineStart == 1 {
			return j + 1, nil
		}
		s.lineStart, s.searched = j+1, j+1
	}
}

// headerEnd finds the end of a header block in b: the length up to and including the first empty line,
// or 0 when b holds no complete block. Every line must end in CRLF.
func headerEnd(b []byte, lineStart, from int) (int, error) {
	for {
		j := bytes.IndexByte(b[from:], '\n')
		if j < 0 {
			return 0, nil
		}
		j += from
		if j == 0 || b[j-1] != '\r' {
			return 0, errBareLF
		}
		if j-lineStart == 1 {
			return j + 1, nil
		}
		lineStart, from = j+1, j+1
	}
}

// framing is what a header block says about its body.
type framing struct {
	chunked bool
	length  int64
}

// checkHeaderBlock checks a complete header block (request line, fields, empty line; every line ending in
// CRLF, as headerEnd guarantees) and returns its body framing.
func checkHeaderBlock(block []byte) (framing, error) {
	var f framing
	lineEnd := bytes.IndexByte(block, '\n')
	http10, err := checkRequestLine(block[:lineEnd-1])
	if err != nil {
		return f, err
	}
	var nCL, nTE, nHost int
	for rest := block[lineEnd+1:]; len(rest) > 2; {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i-1]
		rest = rest[i+1:]
		if line[0] == ' ' || line[0] == '\t' {
			return f, errObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return f, errHeaderName
		}
		name := line[:colon]
		for _, c := range name {
			if !isTokenChar(c) {
				return f, errHeaderName
			}
		}
		value := line[colon+1:]
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return f, errHeaderValue
			}
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "content-length"):
			if nCL++; nCL > 1 {
				return f, errDuplicateCL
			}
			if len(value) == 0 || len(value) > 18 {
				return f, errBadCL
			}
			for _, c := range value {
				if c < '0' || c > '9' {
					return f, errBadCL
				}
			}
			f.length, _ = strconv.ParseInt(string(value), 10, 64)
		case asciiEqualFold(name, "transfer-encoding"):
			if nTE++; nTE > 1 || string(value) != "chunked" {
				return f, errBadTE
			}
			f.chunked = true
		case asciiEqualFold(name, "host"):
			if nHost++; nHost > 1 {
				return f, errDuplicateHost
			}
		}
	}
	switch {
	case nCL > 0 && nTE > 0:
		return f, errCLAndTE
	case nTE > 0 && http10:
		return f, errTEOnHTTP10
	}
	return f, nil
}

// checkRequestLine accepts method SP request-target SP HTTP-version with a token method, a target of
// visible ASCII and version HTTP/1.0 or HTTP/1.1. It reports whether the version is 1.0.
func checkRequestLine(line []byte) (http10 bool, err error) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return false, errRequestLine
	}
	for _, c := range line[:sp1] {
		if !isTokenChar(c) {
			return false, errRequestLine
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return false, errRequestLine
	}
	for _, c := range rest[:sp2] {
		if c <= ' ' || c >= 0x7f {
			return false, errRequestLine
		}
	}
	switch string(rest[sp2+1:]) {
	case "HTTP/1.1":
		return false, nil
	case "HTTP/1.0":
		return true, nil
	}
	return false, errHTTPVersion
}

// parseChunkLine reads a chunk-size line ending in CRLF: 1*HEXDIG, optionally followed by ";" and a chunk
// extension of visible characters, spaces and tabs. Whitespace before the extension is refused.
func parseChunkLine(line []byte) (int64, error) {
	line, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return 0, errChunkLine
	}
	hex, ext, hasExt := bytes.Cut(line, []byte(";"))
	if len(hex) == 0 || len(hex) > 15 {
		return 0, errChunkLine
	}
	var size int64
	for _, c := range hex {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, errChunkLine
		}
		size = size<<4 | int64(d)
	}
	if hasExt {
		for _, c := range ext {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return 0, errChunkLine
			}
		}
	}
	return size, nil
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// asciiEqualFold compares b with a lower-case ASCII name, ignoring ASCII case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// framingListener wraps accepted connections in framingConn.
type framingListener struct{ net.Listener }

// wrapListener puts the framing guard in front of every connection ln accepts. It must see plaintext:
// wrap a TLS listener, not the TCP listener under it. The guard speaks HTTP/1 only: a TLS configuration
// under it must not offer h2 by ALPN. Serve with ConnContext framingConnContext and a handler wrapped in
// restoreTLS to keep Request.TLS.
func wrapListener(ln net.Listener) net.Listener { return framingListener{ln} }

// Accept implements net.Listener.
func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

// framingConn hands net/http only what the scanner released.
type framingConn struct {
	net.Conn
	sc     framingScanner
	in     []byte // read buffer
	outBuf []byte // backing array of out, reused
	out    []byte // released bytes not yet read
	done   bool   // refused: every further Read is io.EOF
}

// Read implements net.Conn. A refused first request is answered with 400 and the connection closed; a
// refused later request ends the connection without an answer, as an earlier response may still be on
// its way. Either way net/http reads io.EOF, which it treats as a client gone away.
func (c *framingConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.done {
			return 0, io.EOF
		}
		if c.in == nil {
			// 4 KiB is what net/http's bufio.Reader asks for; a bigger buffer would only cost memory on every
			// idle keep-alive and long-poll connection (the scanner copes with any split of the stream).
			c.in = make([]byte, 4<<10)
		}
		n, err := c.Conn.Read(c.in)
		if n > 0 {
			out, serr := c.sc.scan(c.in[:n], c.outBuf[:0])
			c.outBuf, c.out = out, out
			if serr != nil {
				c.refuse(serr, c.sc.requests == 0)
			}
		}
		if err != nil && len(c.out) == 0 {
			return 0, err
		}
		if err != nil {
			// Deliver what was released; the error repeats on the next read of the connection.
			break
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// releaseBuffers drops the read buffers of a connection net/http no longer reads (hijacked long-polls).
func (c *framingConn) releaseBuffers() {
	if len(c.out) == 0 {
		c.in, c.outBuf, c.out = nil, nil, nil
	}
}

// refuse stops the connection. Only when no request was handed to net/http is it safe to write an answer.
func (c *framingConn) refuse(err error, answer bool) {
	c.done = true
	if !answer {
		return
	}
	resp := ambiguousResponse
	if errors.Is(err, errHeaderTooLarge) {
		resp = tooLargeResponse
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c.Conn, resp)
	_ = c.Conn.Close()
}

// tlsConnKey carries the *tls.Conn under a framingConn in the connection's context.
type tlsConnKey struct{}

// framingConnContext is http.Server.ConnContext for guarded listeners: net/http only fills Request.TLS
// for a *tls.Conn it sees itself, which the guard now hides, so the TLS connection is kept for
// restoreTLS.
func framingConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		if tc, ok := fc.Conn.(*tls.Conn); ok {
			return context.WithValue(ctx, tlsConnKey{}, tc)
		}
	}
	return ctx
}

// restoreTLS fills Request.TLS for requests that came through a guarded TLS listener, so that code
// reading it (X-Forwarded-Proto of the reverse proxy) sees the connection as it is.
func restoreTLS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tc, ok := r.Context().Value(tlsConnKey{}).(*tls.Conn); ok && r.TLS == nil {
			cs := tc.ConnectionState()
			r = r.WithContext(r.Context())
			r.TLS = &cs
		}
		h.ServeHTTP(w, r)
	})
}
