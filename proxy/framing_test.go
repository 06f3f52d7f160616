package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// scanAll feeds stream to a fresh scanner in pieces of at most step bytes (0: all at once).
func scanAll(stream []byte, step int) ([]byte, error) {
	var s framingScanner
	var out []byte
	for len(stream) > 0 {
		n := len(stream)
		if step > 0 {
			n = min(n, step)
		}
		var err error
		if out, err = s.scan(stream[:n], out); err != nil {
			return out, err
		}
		stream = stream[n:]
	}
	return out, nil
}

func TestFramingScannerPassesUnambiguousRequests(t *testing.T) {
	cases := []struct{ name, stream string }{
		{"a GET without body", "GET /_matrix/client/versions HTTP/1.1\r\nHost: hs1\r\n\r\n"},
		{"a POST with Content-Length", "POST /x HTTP/1.1\r\nHost: hs1\r\nContent-Length: 2\r\n\r\n{}"},
		{"a chunked PUT with an extension", "PUT /x HTTP/1.1\r\nHost: hs1\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\nA\r\n0123456789\r\n0\r\n\r\n"},
		{"three pipelined requests of every framing", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nGET /" +
			"PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nGET\r\n0\r\n\r\n" +
			"GET /c HTTP/1.0\r\n\r\n"},
		{"a body holding a request line with LF only", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\nGET /admin HTTP/1.1\n"},
		{"obs-text in a value and tabs around it", "GET / HTTP/1.1\r\nHost: h\r\nX-Name:\t\xc3\xa4rztin \r\n\r\n"},
		{"a Content-Length of zero", "POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 7} {
				out, err := scanAll([]byte(tc.stream), step)
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if string(out) != tc.stream {
					t.Fatalf("step %d: passed %q, want the stream unchanged", step, out)
				}
			}
		})
	}
}

func TestFramingScannerRefusesAmbiguousRequests(t *testing.T) {
	cases := []struct {
		name, stream string
		want         error
	}{
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", errCLAndTE},
		{"Transfer-Encoding before Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", errCLAndTE},
		{"two agreeing Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", errDuplicateCL},
		{"a Content-Length list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\n\r\n{}", errBadCL},
		{"a signed Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +2\r\n\r\n{}", errBadCL},
		{"chunked with a trailing space inside the token", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", errBadTE},
		{"xchunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", errBadTE},
		{"Chunked in another case", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", errBadTE},
		{"two Transfer-Encoding fields", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", errBadTE},
		{"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", errTEOnHTTP10},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", errObsFold},
		{"a space before the colon", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n", errHeaderName},
		{"a space inside a name", "GET / HTTP/1.1\r\nHost: h\r\nTransfer Encoding: chunked\r\n\r\n", errHeaderName},
		{"a line without a colon", "GET / HTTP/1.1\r\nHost: h\r\nnonsense\r\n\r\n", errHeaderName},
		{"a NUL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", errHeaderValue},
		{"a CR inside a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", errHeaderValue},
		{"bare LF line endings", "GET / HTTP/1.1\nHost: h\n\n", errBareLF},
		{"a bare LF in the middle", "GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", errBareLF},
		{"HTTP/0.9", "GET /\r\n\r\n", errRequestLine},
		{"HTTP/2.0 in the request line", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", errHTTPVersion},
		{"two spaces after the method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", errRequestLine},
		{"a space in the target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", errHTTPVersion},
		{"an empty line before the request", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", errRequestLine},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", errDuplicateHost},
		{"a chunk size with a sign", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", errChunkLine},
		{"a chunk size with space before the extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2 ;x\r\n{}\r\n0\r\n\r\n", errChunkLine},
		{"a chunk size of 16 hex digits", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", errChunkLine},
		{"a chunk-size line with a bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n", errChunkLine},
		{"chunk data longer than announced", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n", errChunkTerminator},
		{"a trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: b\r\n\r\n", errTrailer},
		{"an ambiguous second request after a clean first", "GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", errDuplicateCL},
		{"a header block larger than the limit", "GET / HTTP/1.1\r\nHost: h\r\nX-A: " + strings.Repeat("a", maxHeaderBlock) + "\r\n\r\n", errHeaderTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 5} {
				out, err := scanAll([]byte(tc.stream), step)
				if !errors.Is(err, tc.want) {
					t.Fatalf("step %d: err %v, want %v", step, err, tc.want)
				}
				if !bytes.HasPrefix([]byte(tc.stream), out) {
					t.Fatalf("step %d: released %q, not a prefix of the stream", step, out)
				}
			}
		})
	}
}

// The guard on a real net/http server: a clean keep-alive connection works, an ambiguous request gets the
// 400 and the handler never runs.
func TestFramingListenerInFrontOfNetHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits = make(chan string, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hits <- r.Method + " " + r.RequestURI + " " + string(b)
		_, _ = w.Write([]byte("ok"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(wrapListener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })

	t.Run("two requests on one keep-alive connection both arrive", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for i, req := range []string{
			"PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		} {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: status %d", i, resp.StatusCode)
			}
		}
		for _, want := range []string{"PUT /a {}", "POST /b abc"} {
			if got := <-hits; got != want {
				t.Fatalf("handler saw %q, want %q", got, want)
			}
		}
	})
	t.Run("CL with TE is answered 400 by the guard and never reaches the handler", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		got, _ := io.ReadAll(c)
		if string(got) != ambiguousResponse {
			t.Fatalf("answer %q, want the guard's 400", got)
		}
		select {
		case h := <-hits:
			t.Fatalf("the handler ran: %q", h)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// The canned answers announce their exact body length.
func TestFramingResponsesAreWellFormed(t *testing.T) {
	for _, raw := range []string{ambiguousResponse, tooLargeResponse} {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || int64(len(b)) != resp.ContentLength || !resp.Close {
			t.Fatalf("%q: body %q (%v), Content-Length %d, close %v", raw, b, err, resp.ContentLength, resp.Close)
		}
	}
}

// validStream builds a sequence of unambiguous requests from fuzz input: each byte picks a framing and a
// body length.
func validStream(data []byte) []byte {
	var b bytes.Buffer
	for i, c := range data {
		if i == 6 {
			break
		}
		body := bytes.Repeat([]byte{'a' + c%26}, int(c>>2))
		switch c % 3 {
		case 0:
			fmt.Fprintf(&b, "GET /r%d HTTP/1.1\r\nHost: h\r\nX-I: %d\r\n\r\n", i, c)
		case 1:
			fmt.Fprintf(&b, "POST /r%d HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
		default:
			fmt.Fprintf(&b, "PUT /r%d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", i)
			for len(body) > 0 {
				n := min(len(body), int(c%7)+1)
				fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
				body = body[n:]
			}
			b.WriteString("0\r\n\r\n")
		}
	}
	return b.Bytes()
}

// FuzzFramingScanner: arbitrary bytes never panic and only ever release a prefix of the input; a valid
// sequence of requests passes unchanged however it is split.
func FuzzFramingScanner(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), uint16(3))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), uint16(20))
	f.Add([]byte("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\nGET / HTTP/1.0\r\n\r\n"), uint16(50))
	f.Add([]byte("GET / HTTP/1.1\nHost: h\n\n"), uint16(1))
	f.Add([]byte{0, 1, 2, 200, 255, 77}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		step := int(cut%64) + 1
		out, _ := scanAll(data, step)
		if !bytes.HasPrefix(data, out) {
			t.Fatalf("released %q, not a prefix of %q", out, data)
		}
		valid := validStream(data)
		for _, st := range []int{0, step} {
			got, err := scanAll(valid, st)
			if err != nil || !bytes.Equal(got, valid) {
				t.Fatalf("valid stream %q (step %d): %v, released %q", valid, st, err, got)
			}
		}
	})
}

// BenchmarkFramingScanner measures the guard's cost per request for typical Matrix requests.
func BenchmarkFramingScanner(b *testing.B) {
	headers := "Host: hs1.tim.test\r\nUser-Agent: Element/1.11 (Linux)\r\nAuthorization: Bearer syt_YWxpY2U_abcdefghijklmnopqrst_0123ab\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip\r\nContent-Type: application/json\r\n"
	body := `{"msgtype":"m.text","body":"` + strings.Repeat("x", 200) + `"}`
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	for _, bc := range []struct{ name, req string }{
		{"get", "GET /_matrix/client/v3/sync?since=s72594_4483_1934&timeout=30000 HTTP/1.1\r\n" + headers + "\r\n"},
		{"content-length", "PUT /_matrix/client/v3/rooms/!r:hs1.tim.test/send/m.room.message/t1 HTTP/1.1\r\n" + headers +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)},
		{"chunked", "PUT /_matrix/client/v3/rooms/!r:hs1.tim.test/send/m.room.message/t1 HTTP/1.1\r\n" + headers +
			"Transfer-Encoding: chunked\r\n\r\n" + chunked},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := []byte(bc.req)
			var s framingScanner
			out := make([]byte, 0, 4096)
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = s.scan(req, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Behind a TLS listener the guard hides the *tls.Conn from net/http; restoreTLS gives handlers
// Request.TLS back, so the reverse proxy still says X-Forwarded-Proto https.
func TestFramingKeepsRequestTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan bool, 1)
	srv := &http.Server{
		Handler:     restoreTLS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.TLS != nil })),
		ConnContext: framingConnContext,
	}
	go func() { _ = srv.Serve(wrapListener(tls.NewListener(ln, ts.TLS.Clone()))) }()
	defer srv.Close()
	resp, err := ts.Client().Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !<-seen {
		t.Fatal("the handler saw no TLS state")
	}
}
