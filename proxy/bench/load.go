package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Request is one HTTP/1.1 request the load generator sends again and again. It is encoded once; the
// generator writes the bytes and parses the answer with net/http's response reader, which costs the
// generator far less CPU than an http.Client (the generator shares the cores with what it measures).
type Request struct {
	Method string
	// Target is the request target: path and query, e.g. "/_matrix/client/v3/sync?timeout=0".
	Target string
	Header http.Header
	Body   []byte
}

// encode renders the request for host with keep-alive.
func (r Request) encode(host string) []byte {
	var b bytes.Buffer
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, r.Target, host)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if len(r.Body) > 0 || method == http.MethodPut || method == http.MethodPost {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.Body))
	}
	b.WriteString("\r\n")
	b.Write(r.Body)
	return b.Bytes()
}

// Load describes one measurement.
type Load struct {
	// Addr is the server's host:port.
	Addr    string
	Request Request
	// Conns is the number of keep-alive connections (and workers).
	Conns int
	// Duration is how long requests are sent.
	Duration time.Duration
	// Rate > 0 selects the open loop: that many requests per second in total, spread evenly over the
	// connections. 0 is the closed loop: every connection sends its next request as soon as the last answer
	// arrived.
	Rate float64
	// DialTimeout bounds each connection attempt (default 5 s).
	DialTimeout time.Duration
}

// Result is what a Load measured.
type Result struct {
	// Requests counts answered requests (any status); Errors counts transport errors and answers outside 2xx.
	Requests int
	Errors   int
	// Status counts answers by status code; transport errors are under 0.
	Status  map[int]int
	Elapsed time.Duration
	// Latencies are sorted ascending; for the open loop they run from each request's intended start.
	Latencies []time.Duration
	// Late counts open-loop requests that started behind their schedule (the server or the generator could
	// not keep up); a large share means the rate was above what the setup sustains.
	Late int
}

// RPS is answered requests per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the q-quantile (0 ≤ q ≤ 1) of the latencies by the nearest-rank method, 0 without samples.
func (r *Result) Percentile(q float64) time.Duration {
	return percentile(r.Latencies, q)
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Run executes l and returns what it measured. It fails only on bad parameters or when no connection could
// be made at all; request failures are counted in the result.
func Run(ctx context.Context, l Load) (*Result, error) {
	if l.Conns <= 0 || l.Duration <= 0 || l.Addr == "" || l.Rate < 0 {
		return nil, fmt.Errorf("bench: load needs addr, conns > 0, duration > 0 and rate >= 0, got %+v", l)
	}
	if l.DialTimeout == 0 {
		l.DialTimeout = 5 * time.Second
	}
	raw := l.Request.encode(l.Addr)
	ctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	stopAt, _ := ctx.Deadline()
	start := time.Now()
	end := start.Add(l.Duration)
	type part struct {
		lat     []time.Duration
		status  map[int]int
		errs    int
		late    int
		dialErr error
		dialed  bool
	}
	parts := make([]part, l.Conns)
	var wg sync.WaitGroup
	for k := range l.Conns {
		wg.Go(func() {
			p := &parts[k]
			p.status = map[int]int{}
			c := &conn{addr: l.Addr, dialTimeout: l.DialTimeout}
			defer c.close()
			var interval time.Duration
			var next time.Time
			if l.Rate > 0 {
				interval = time.Duration(float64(l.Conns) / l.Rate * float64(time.Second))
				// Stagger the workers over one interval so the total rate is even, not bursty.
				next = start.Add(time.Duration(float64(k) / l.Rate * float64(time.Second)))
			}
			for {
				var t0 time.Time
				if l.Rate > 0 {
					if !next.Before(end) {
						return
					}
					if d := time.Until(next); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
						// Timer overshoot is the generator's, not the server's: measure from the wake-up.
						t0 = time.Now()
					} else {
						// Behind schedule: the wait for the previous answer counts (no coordinated omission).
						t0 = next
						p.late++
					}
					next = next.Add(interval)
				} else {
					if ctx.Err() != nil {
						return
					}
					t0 = time.Now()
				}
				status, err := c.do(ctx, raw)
				if err != nil && (ctx.Err() != nil || !time.Now().Before(stopAt)) {
					// Cut off by the end of the run (a dial fails at the deadline slightly before the
					// context says so), not a server failure.
					return
				}
				lat := time.Since(t0)
				if c.dialed {
					p.dialed = true
				}
				if err != nil {
					if !p.dialed {
						p.dialErr = err
					}
					p.status[0]++
					p.errs++
					if errors.Is(err, errDial) {
						// Do not spin on a refused port.
						select {
						case <-ctx.Done():
							return
						case <-time.After(10 * time.Millisecond):
						}
					}
					continue
				}
				p.status[status]++
				if status/100 != 2 {
					p.errs++
				}
				p.lat = append(p.lat, lat)
			}
		})
	}
	wg.Wait()
	res := &Result{Status: map[int]int{}, Elapsed: min(time.Since(start), l.Duration)}
	anyDialed := false
	var firstErr error
	for _, p := range parts {
		res.Latencies = append(res.Latencies, p.lat...)
		res.Errors += p.errs
		res.Late += p.late
		for s, n := range p.status {
			res.Status[s] += n
		}
		anyDialed = anyDialed || p.dialed
		if firstErr == nil {
			firstErr = p.dialErr
		}
	}
	res.Requests = len(res.Latencies)
	slices.Sort(res.Latencies)
	if !anyDialed && firstErr != nil {
		return res, fmt.Errorf("bench: no connection to %s: %w", l.Addr, firstErr)
	}
	return res, nil
}

var errDial = errors.New("dial failed")

// conn is one keep-alive HTTP/1.1 client connection that reconnects after an error or Connection: close.
type conn struct {
	addr        string
	dialTimeout time.Duration
	c           net.Conn
	br          *bufio.Reader
	dialed      bool
}

func (c *conn) do(ctx context.Context, raw []byte) (int, error) {
	if c.c == nil {
		d := net.Dialer{Timeout: c.dialTimeout}
		nc, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errDial, err)
		}
		c.c, c.dialed = nc, true
		if c.br == nil {
			c.br = bufio.NewReaderSize(nc, 16<<10)
		} else {
			c.br.Reset(nc)
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		// A hung server must not outlive the run.
		_ = c.c.SetDeadline(dl.Add(2 * time.Second))
	}
	if _, err := c.c.Write(raw); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.close()
		return 0, err
	}
	if resp.Close {
		c.close()
	}
	return resp.StatusCode, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// OpenIdle opens n connections to addr and sends req on each without reading the answer: n clients
// waiting in a long-poll. At most parallel dials are in flight at a time (a burst of thousands of SYNs
// overflows the listen backlog). The caller closes the returned connections; on error the ones already
// open are closed.
func OpenIdle(ctx context.Context, addr string, req Request, n, parallel int) ([]net.Conn, error) {
	raw := req.encode(addr)
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, max(parallel, 1))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			d := net.Dialer{Timeout: 10 * time.Second}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				if _, err = c.Write(raw); err != nil {
					c.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("connection %d: %w", i, err)
				}
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		CloseAll(conns)
		return nil, fmt.Errorf("bench: opening %d idle connections to %s: %w", n, addr, firstErr)
	}
	return conns, nil
}

// CloseAll closes every non-nil connection.
func CloseAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// FormatDuration prints a latency in milliseconds with three decimals, the unit the targets use.
func FormatDuration(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}
