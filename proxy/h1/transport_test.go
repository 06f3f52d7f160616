package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is a homeserver stand-in that speaks HTTP/1.1 by hand, so a test can answer exactly as it
// wants (interim answers, closing idle connections) and count connections.
type rawServer struct {
	ln    net.Listener
	conns atomic.Int64
	// answer writes the answer to one request; false closes the connection afterwards.
	answer func(w *bufio.Writer, r *http.Request, body []byte) bool
}

func newRawServer(t *testing.T, answer func(w *bufio.Writer, r *http.Request, body []byte) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, answer: answer}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *rawServer) serve(c net.Conn) {
	defer c.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		keep := s.answer(bw, r, body)
		if bw.Flush() != nil || !keep {
			return
		}
	}
}

func (s *rawServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

// echo answers 200 with "METHOD PATH BODY".
func echo(w *bufio.Writer, r *http.Request, body []byte) bool {
	msg := fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, body)
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n", len(msg))
	if r.Method != http.MethodHead {
		w.WriteString(msg)
	}
	return true
}

// fallbackRecorder is the Fallback transport; it counts what it was given.
type fallbackRecorder struct{ n atomic.Int64 }

func (f *fallbackRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	f.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func newTransport() (*Transport, *fallbackRecorder) {
	fb := &fallbackRecorder{}
	return &Transport{Dial: (&net.Dialer{}).DialContext, Fallback: fb}, fb
}

// inMemory builds a request whose body is held in memory, as the proxy's withBody does.
func inMemory(ctx context.Context, method, url, body string) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	return r
}

func do(t *testing.T, tr http.RoundTripper, r *http.Request) (int, string) {
	t.Helper()
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return resp.StatusCode, string(b)
}

func TestRoundTrips(t *testing.T) {
	chunked := func(w *bufio.Writer, r *http.Request, body []byte) bool {
		fmt.Fprint(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		return true
	}
	untilClose := func(w *bufio.Writer, r *http.Request, body []byte) bool {
		fmt.Fprint(w, "HTTP/1.1 200 OK\r\n\r\nall of it")
		return false
	}
	interim := func(w *bufio.Writer, r *http.Request, body []byte) bool {
		fmt.Fprint(w, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
		return echo(w, r, body)
	}
	noBody := func(w *bufio.Writer, r *http.Request, body []byte) bool {
		fmt.Fprint(w, "HTTP/1.1 204 No Content\r\n\r\n")
		return true
	}
	for _, tc := range []struct {
		name      string
		answer    func(*bufio.Writer, *http.Request, []byte) bool
		method    string
		body      string
		wantBody  string
		wantConns int64 // after three requests
	}{
		{"three PUTs with bodies share one connection", echo, http.MethodPut, `{"a":1}`, `PUT /x {"a":1}`, 1},
		{"three GETs share one connection", echo, http.MethodGet, "", `GET /x `, 1},
		{"three POSTs share one connection", echo, http.MethodPost, `{}`, `POST /x {}`, 1},
		{"a chunked answer is read whole and the connection kept", chunked, http.MethodGet, "", "hello world", 1},
		{"an answer delimited by close is read whole and the connection not reused", untilClose, http.MethodGet, "", "all of it", 3},
		{"interim 1xx answers are skipped", interim, http.MethodPut, "b", "PUT /x b", 1},
		{"a 204 answer without body keeps the connection", noBody, http.MethodDelete, "", "", 1},
		{"a HEAD answer keeps the connection", echo, http.MethodHead, "", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, tc.answer)
			tr, fb := newTransport()
			for range 3 {
				var r *http.Request
				if tc.body == "" {
					r, _ = http.NewRequest(tc.method, srv.url("/x"), nil)
				} else {
					r = inMemory(context.Background(), tc.method, srv.url("/x"), tc.body)
				}
				_, got := do(t, tr, r)
				if got != tc.wantBody {
					t.Fatalf("body %q, want %q", got, tc.wantBody)
				}
			}
			if n := srv.conns.Load(); n != tc.wantConns {
				t.Fatalf("%d connections, want %d", n, tc.wantConns)
			}
			if fb.n.Load() != 0 {
				t.Fatal("a request went to the fallback")
			}
		})
	}
}

// closesAfterFirst answers every request, then closes the connection without saying so (no
// "Connection: close"), as a homeserver whose keep-alive timer ran out does.
func closesAfterFirst(w *bufio.Writer, r *http.Request, body []byte) bool {
	echo(w, r, body)
	return false
}

func TestConnectionClosedWhileIdle(t *testing.T) {
	for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodPost} {
		t.Run(method+" is sent on a new connection", func(t *testing.T) {
			srv := newRawServer(t, closesAfterFirst)
			tr, _ := newTransport()
			for i := range 3 {
				_, got := do(t, tr, inMemory(context.Background(), method, srv.url("/x"), "b"))
				if want := method + " /x b"; got != want {
					t.Fatalf("request %d: body %q, want %q", i, got, want)
				}
				time.Sleep(20 * time.Millisecond) // the close reaches us while the connection is idle
			}
			if n := srv.conns.Load(); n != 3 {
				t.Fatalf("%d connections, want 3", n)
			}
		})
	}
}

// A POST whose connection breaks after it was sent is not sent again: the homeserver may have acted on it.
func TestPostIsNotRepeatedAfterItWasSent(t *testing.T) {
	var posts atomic.Int64
	srv := newRawServer(t, func(w *bufio.Writer, r *http.Request, body []byte) bool {
		if r.Method == http.MethodPost {
			posts.Add(1)
			return false // received, then the connection dies without an answer
		}
		return echo(w, r, body)
	})
	tr, _ := newTransport()
	do(t, tr, inMemory(context.Background(), http.MethodGet, srv.url("/warm"), ""))
	_, err := tr.RoundTrip(inMemory(context.Background(), http.MethodPost, srv.url("/createRoom"), "{}"))
	if err == nil {
		t.Fatal("POST without an answer succeeded")
	}
	time.Sleep(50 * time.Millisecond)
	if n := posts.Load(); n != 1 {
		t.Fatalf("the homeserver received the POST %d times, want 1", n)
	}
}

func TestStreamedBodiesGoToTheFallback(t *testing.T) {
	srv := newRawServer(t, echo)
	tr, fb := newTransport()
	// No GetBody: a body read from the client as it arrives (media upload).
	r, _ := http.NewRequest(http.MethodPost, srv.url("/upload"), io.NopCloser(strings.NewReader("stream")))
	r.GetBody = nil
	if _, got := do(t, tr, r); got != "POST /upload stream" {
		t.Fatalf("body %q", got)
	}
	if fb.n.Load() != 1 {
		t.Fatalf("fallback used %d times, want 1", fb.n.Load())
	}
}

func TestCancelAndDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := newRawServer(t, func(w *bufio.Writer, r *http.Request, body []byte) bool {
		<-release
		return echo(w, r, body)
	})
	defer close(release)
	tr, _ := newTransport()

	t.Run("a cancelled request returns at once with context.Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := tr.RoundTrip(inMemory(ctx, http.MethodGet, srv.url("/slow"), ""))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("returned after %v", d)
		}
	})
	t.Run("a request past its deadline returns with context.DeadlineExceeded", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := tr.RoundTrip(inMemory(ctx, http.MethodGet, srv.url("/slow"), ""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want context.DeadlineExceeded", err)
		}
	})
}

// A body the caller stops reading ends its connection; the next request gets a new one and a clean answer.
func TestAbandonedBodyIsNotReused(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	srv := newRawServer(t, func(w *bufio.Writer, r *http.Request, body []byte) bool {
		if r.URL.Path == "/big" {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big)
			return true
		}
		return echo(w, r, body)
	})
	tr, _ := newTransport()
	resp, err := tr.RoundTrip(inMemory(context.Background(), http.MethodGet, srv.url("/big"), ""))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, got := do(t, tr, inMemory(context.Background(), http.MethodGet, srv.url("/small"), "")); got != "GET /small " {
		t.Fatalf("next answer %q", got)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv := newRawServer(t, echo)
	tr, _ := newTransport()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				body := fmt.Sprintf("%d-%d", g, i)
				resp, err := tr.RoundTrip(inMemory(context.Background(), http.MethodPut, srv.url("/c"), body))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !bytes.Equal(b, []byte("PUT /c "+body)) {
					errs <- fmt.Errorf("answer %q to %q", b, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := srv.conns.Load(); n > 16 {
		t.Fatalf("%d connections for 16 concurrent callers", n)
	}
	tr.CloseIdleConnections()
}

// Without a homeserver the request fails with the dial error, not a hang.
func TestDialFailure(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	tr, _ := newTransport()
	_, err := tr.RoundTrip(inMemory(context.Background(), http.MethodGet, "http://"+addr+"/x", ""))
	if err == nil || !strings.Contains(err.Error(), "dial") {
		t.Fatalf("err %v, want a dial error", err)
	}
}

// An idle connection on which the homeserver said something nobody asked for (here a 408 after an idle
// timeout) is not used: that answer must not be taken for the next request's.
func TestUnsolicitedAnswerOnIdleConnection(t *testing.T) {
	srv := newRawServer(t, func(w *bufio.Writer, r *http.Request, body []byte) bool {
		echo(w, r, body)
		w.Flush()
		time.Sleep(5 * time.Millisecond) // the client has read the answer and pooled the connection
		w.WriteString("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
		return true
	})
	tr, _ := newTransport()
	for i := range 3 {
		_, got := do(t, tr, inMemory(context.Background(), http.MethodGet, srv.url("/x"), ""))
		if got != "GET /x " {
			t.Fatalf("request %d: answer %q", i, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := srv.conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}
