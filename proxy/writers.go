package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
)

// statusWriter remembers the status written, for metrics and for knowing whether an error can still be
// answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	// hijacked: the long-poll path took the connection; its answer is counted when it arrives.
	hijacked bool
}

// codeLabel is the status label of the request metric.
func (s *statusWriter) codeLabel() string {
	if s.hijacked && !s.wrote {
		return "hijacked"
	}
	return strconv.Itoa(s.code())
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) code() int {
	if !s.wrote {
		return 0
	}
	return s.status
}

// Flush keeps streaming responses (long-polls, media) streaming.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is passed through for the forward proxy's CONNECT.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := s.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// bufferWriter captures an upstream answer the proxy rewrites.
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func newBufferWriter() *bufferWriter {
	return &bufferWriter{header: http.Header{}, status: http.StatusOK}
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(code int)        { b.status = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }

func (b *bufferWriter) copyHeaders(w http.ResponseWriter) {
	for k, v := range b.header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.buf.Len()))
}

// useBufferedBody gives the outgoing request the body the proxy already holds in memory (withBody), in
// place of ReverseProxy's wrapper around the incoming one. net/http sends the headers of a request whose
// body is not a known in-memory reader by themselves, then the body: two writes and two packets to the
// homeserver for every PUT and POST. With the buffered reader it is one write, as for any request the
// proxy builds itself. Only requests made by withBody carry GetBody; an incoming request never does, so a
// streamed body (media) keeps ReverseProxy's wrapper.
func useBufferedBody(pr *httputil.ProxyRequest) {
	if pr.In.GetBody == nil || pr.In.ContentLength <= 0 {
		return
	}
	if body, err := pr.In.GetBody(); err == nil {
		pr.Out.Body = body
	}
}

// withBody returns a shallow copy of r whose body is b. The header map is shared, not cloned: the reverse
// proxy clones it anyway, and outgoing requests take their length from ContentLength, not from the header.
func withBody(r *http.Request, b []byte) *http.Request {
	out := r.WithContext(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.ContentLength = int64(len(b))
	out.TransferEncoding = nil
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return out
}
