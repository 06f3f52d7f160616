// Command benchproxy measures the timstack Messenger-Proxy next to a bare httputil.ReverseProxy (make
// bench-proxy runs it through scripts/bench-proxy.sh).
//
//	benchproxy run --timstack bin/timstack [--duration 4s] [--longpolls 10000] [--synapse=true] [--gobench f1,f2]
//	benchproxy upstream --listen 127.0.0.1:0                  (child: the trivial homeserver)
//	benchproxy bare --listen 127.0.0.1:0 --upstream URL       (child: the bare reverse proxy)
//
// Every server runs as its own process — upstream, bare proxy, `timstack proxy`, Synapse — so the CPU time
// and RSS read from /proc are each process's alone; the load generator is this process. All share the
// machine's cores, as in homeservers-and-peers.md §5.1.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/timstack/timstack/proxy/bench"
	"github.com/timstack/timstack/proxy/e2e/synapse"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchproxy run|upstream|bare [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "upstream":
		err = runUpstream(ctx, os.Args[2:])
	case "bare":
		err = runBare(ctx, os.Args[2:])
	case "run":
		err = runAll(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchproxy:", err)
		os.Exit(1)
	}
}

// trivialRounds is how often the closed-loop runs against the trivial upstream alternate over the three
// targets; the throughput comparison uses the means, so one burst of a neighbour's load on a shared
// machine does not decide it.
const trivialRounds = 2

// synapseRounds is how often direct and proxied runs alternate in front of Synapse: its throughput drifts
// (caches, background work, the shared machine), and alternating spreads the drift over both sides.
const synapseRounds = 3

const (
	benchServer = "bench.tim.test"
	benchUser   = "@bench:" + benchServer
	benchToken  = "bench-token-0123456789"
)

// serve listens, prints the bound address on stdout (the parent reads it) and serves until ctx ends.
func serve(ctx context.Context, listen string, h http.Handler) error {
	srv := bench.NewServer(h)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func runUpstream(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(ctx, *listen, &bench.Upstream{Token: benchToken, UserID: benchUser})
}

func runBare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	up := fs.String("upstream", "", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*up)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bare: --upstream must be a URL, got %q", *up)
	}
	return serve(ctx, *listen, bench.NewBareProxy(u))
}

// child is a server process the run started.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// startSelf starts this binary with a child subcommand and reads the address it printed.
func startSelf(ctx context.Context, logDir, name string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = logf
	dieWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(c.done) }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok || l == "" {
			c.stop()
			return nil, fmt.Errorf("%s exited before printing its address (log %s)", name, logf.Name())
		}
		c.addr = l
		return c, nil
	case <-time.After(10 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s did not print its address within 10 s", name)
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// startTimstack starts `timstack proxy --config` and waits until /readyz answers 200.
func startTimstack(ctx context.Context, o options, name string, fx *bench.ProxyFixture) (*child, error) {
	bin, logDir := o.timstack, o.workdir
	logf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "proxy", "--config", fx.ConfigFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	if o.tsEnv != "" {
		cmd.Env = append(os.Environ(), strings.Fields(o.tsEnv)...)
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, addr: fx.ClientAddr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(c.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + fx.InternalAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s exited during start-up (log %s)", name, logf.Name())
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s not ready within 30 s (log %s)", name, logf.Name())
		}
	}
}

// target is one server the load generator talks to, and the process whose CPU and RSS count for it.
type target struct {
	name string
	addr string
	pid  int
	// upPID is the homeserver process behind the target (the trivial upstream or Synapse), 0 if unknown.
	upPID int
}

// Measurement is one row of the throughput/latency tables.
type Measurement struct {
	Scenario string  `json:"scenario"`
	Request  string  `json:"request"`
	Target   string  `json:"target"`
	Mode     string  `json:"mode"` // closed (max throughput) or open (fixed rate)
	Conns    int     `json:"conns"`
	Rate     float64 `json:"rate,omitempty"`
	RPS      float64 `json:"rps"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Late     int     `json:"late,omitempty"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	// SystemCPU is the busy share of all cores during the measurement (everything on the machine).
	SystemCPU float64 `json:"system_cpu"`
	// ProcCPU is the target process's CPU time per answered request in µs (direct: the upstream's).
	ProcCPUPerReq float64 `json:"proc_cpu_us_per_req"`
	// ProcCPUShare is the target process's CPU time over wall time (1 = one core).
	ProcCPUShare float64 `json:"proc_cpu_cores"`
	// UpstreamCPUShare is the homeserver's CPU time over wall time: a homeserver near one core is the
	// bottleneck; one well below it through the proxy waits for the proxy.
	UpstreamCPUShare float64 `json:"upstream_cpu_cores"`
	Load             float64 `json:"loadavg1"`
}

// LongPoll is the idle /sync result of one proxy.
type LongPoll struct {
	Target      string  `json:"target"`
	Conns       int     `json:"conns"`
	RSSBefore   int64   `json:"rss_before"`
	RSSHeld     int64   `json:"rss_held"`
	HWM         int64   `json:"hwm"`
	PerConnKB   float64 `json:"per_conn_kb"`
	RSSAt10k    int64   `json:"rss_at_10k_extrapolated"`
	HoldSeconds float64 `json:"seconds_to_hold_all"`
	Load        float64 `json:"loadavg1"`
}

// Report is everything a run measured (written as JSON with --json).
type Report struct {
	Started     time.Time       `json:"started"`
	GoVersion   string          `json:"go_version"`
	CPUs        int             `json:"cpus"`
	FDLimit     uint64          `json:"fd_limit"`
	LoadStart   float64         `json:"loadavg1_start"`
	LoadEnd     float64         `json:"loadavg1_end"`
	Trivial     []Measurement   `json:"trivial"`
	Synapse     []Measurement   `json:"synapse"`
	SynapseNote string          `json:"synapse_note,omitempty"`
	SynapsePin  string          `json:"synapse_pin,omitempty"`
	LongPolls   []LongPoll      `json:"long_polls"`
	LongNote    string          `json:"long_poll_note,omitempty"`
	GoBench     []bench.GoBench `json:"go_bench"`
	TimstackEnv string          `json:"timstack_env,omitempty"`
}

type options struct {
	timstack  string
	duration  time.Duration
	warmup    time.Duration
	conns     int
	openConns int
	longPolls int
	synapse   bool
	only      string
	pinHS     bool
	gobench   string
	jsonOut   string
	workdir   string
	// tsEnv is extra environment for the timstack processes only (e.g. GOMEMLIMIT), so a tuning experiment
	// does not also change the load generator and the baseline.
	tsEnv string
}

func runAll(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.timstack, "timstack", "bin/timstack", "the timstack binary (go build ./cmd/timstack)")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "length of each measured load")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each measurement")
	fs.IntVar(&o.conns, "conns", 16, "keep-alive connections of the closed loop (max throughput)")
	fs.IntVar(&o.openConns, "open-conns", 32, "connections of the open loop (fixed rate)")
	fs.IntVar(&o.longPolls, "longpolls", 10000, "idle /sync long-polls to hold (capped by the descriptor limit)")
	fs.BoolVar(&o.synapse, "synapse", true, "also measure in front of real Synapse (scripts/synapse.sh)")
	fs.BoolVar(&o.pinHS, "pin-homeserver", false, "in front of Synapse: Synapse on the last CPU, load generator and proxy on the others (taskset)")
	fs.StringVar(&o.only, "only", "", "comma-separated scenarios to run: trivial, longpolls, synapse (default: all)")
	fs.StringVar(&o.gobench, "gobench", "", "comma-separated files of `go test -bench` output to include")
	fs.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.workdir, "workdir", "", "folder for configs and logs (default: a new temporary folder)")
	fs.StringVar(&o.tsEnv, "timstack-env", "", "space-separated KEY=VALUE pairs for the timstack proxy processes only (e.g. GOMEMLIMIT=200MiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.workdir == "" {
		d, err := os.MkdirTemp("", "timstack-bench-proxy-")
		if err != nil {
			return err
		}
		o.workdir = d
	}
	if err := os.MkdirAll(o.workdir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(o.workdir)
	if err != nil {
		return err
	}
	o.workdir = abs
	rep := &Report{Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), TimstackEnv: o.tsEnv}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		rep.FDLimit = rl.Max
	}
	rep.LoadStart, _ = bench.LoadAvg()
	logf("work folder %s, load average %.2f, %d CPUs, descriptor limit %d", o.workdir, rep.LoadStart, rep.CPUs, rep.FDLimit)

	if o.gobench != "" {
		for _, f := range strings.Split(o.gobench, ",") {
			b, err := os.Open(f)
			if err != nil {
				return err
			}
			res, err := bench.ParseGoBench(b)
			b.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			rep.GoBench = append(rep.GoBench, res...)
		}
	}

	runs := func(scenario string) bool {
		return o.only == "" || slices.Contains(strings.Split(o.only, ","), scenario)
	}
	if runs("trivial") || runs("longpolls") {
		if err := trivialAndLongPolls(ctx, o, rep, runs); err != nil {
			return err
		}
	}
	if o.synapse && runs("synapse") {
		if err := synapseScenario(ctx, o, rep); err != nil {
			rep.SynapseNote = err.Error()
			logf("synapse: %v", err)
		}
	} else {
		rep.SynapseNote = "skipped"
	}
	rep.LoadEnd, _ = bench.LoadAvg()
	printReport(os.Stdout, rep)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// trivialAndLongPolls measures against the trivial upstream: direct, bare ReverseProxy and timstack.
func trivialAndLongPolls(ctx context.Context, o options, rep *Report, runs func(string) bool) error {
	up, err := startSelf(ctx, o.workdir, "upstream", "upstream", "--listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer up.stop()
	bare, err := startSelf(ctx, o.workdir, "bare", "bare", "--listen", "127.0.0.1:0", "--upstream", "http://"+up.addr)
	if err != nil {
		return err
	}
	defer bare.stop()
	fx, err := bench.WriteProxyFixture(filepath.Join(o.workdir, "timstack-trivial"), benchServer, "http://"+up.addr)
	if err != nil {
		return err
	}
	ts, err := startTimstack(ctx, o, "timstack-trivial", fx)
	if err != nil {
		return err
	}
	defer ts.stop()

	targets := []target{{"direct", up.addr, up.pid(), up.pid()}, {"bare", bare.addr, bare.pid(), up.pid()}, {"timstack", ts.addr, ts.pid(), up.pid()}}
	if runs("trivial") {
		if err := trivialScenario(ctx, o, rep, targets); err != nil {
			return err
		}
	}
	if runs("longpolls") {
		if err := longPollScenario(ctx, o, rep, up.addr, targets[1:]); err != nil {
			rep.LongNote = err.Error()
			logf("long-polls: %v", err)
		}
	}
	return ctx.Err()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench-proxy %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// measure runs one load against t after a warm-up and reads CPU around the measured part.
func measure(ctx context.Context, o options, scenario, reqName string, t target, req bench.Request, conns int, rate float64) (Measurement, error) {
	if o.warmup > 0 {
		if _, err := bench.Run(ctx, bench.Load{Addr: t.addr, Request: req, Conns: conns, Duration: o.warmup, Rate: rate}); err != nil {
			return Measurement{}, fmt.Errorf("%s %s warm-up: %w", t.name, reqName, err)
		}
	}
	m := Measurement{Scenario: scenario, Request: reqName, Target: t.name, Mode: "closed", Conns: conns, Rate: rate}
	if rate > 0 {
		m.Mode = "open"
	}
	m.Load, _ = bench.LoadAvg()
	sys0, _ := bench.ReadSystemCPU()
	p0, perr0 := bench.ReadProc(t.pid)
	u0, uerr0 := bench.ReadProc(t.upPID)
	res, err := bench.Run(ctx, bench.Load{Addr: t.addr, Request: req, Conns: conns, Duration: o.duration, Rate: rate})
	if err != nil {
		return m, fmt.Errorf("%s %s: %w", t.name, reqName, err)
	}
	sys1, _ := bench.ReadSystemCPU()
	p1, perr1 := bench.ReadProc(t.pid)
	u1, uerr1 := bench.ReadProc(t.upPID)
	if t.upPID != 0 && uerr0 == nil && uerr1 == nil {
		m.UpstreamCPUShare = (u1.CPU - u0.CPU).Seconds() / res.Elapsed.Seconds()
	}
	m.RPS, m.Requests, m.Errors, m.Late = res.RPS(), res.Requests, res.Errors, res.Late
	m.P50 = ms(res.Percentile(0.50))
	m.P90 = ms(res.Percentile(0.90))
	m.P99 = ms(res.Percentile(0.99))
	m.SystemCPU = bench.Utilisation(sys0, sys1)
	if perr0 == nil && perr1 == nil && res.Requests > 0 {
		cpu := p1.CPU - p0.CPU
		m.ProcCPUPerReq = float64(cpu.Microseconds()) / float64(res.Requests)
		m.ProcCPUShare = cpu.Seconds() / res.Elapsed.Seconds()
	}
	logf("%-9s %-28s %-6s %-8s rps %8.0f  p50 %s  p99 %s ms  errors %d  sys cpu %3.0f%%  proc %.2f cores, %.1f µs/req  HS %.2f cores  load %.2f",
		scenario, reqName, m.Mode, t.name, m.RPS, fmtMS(m.P50), fmtMS(m.P99), m.Errors, 100*m.SystemCPU, m.ProcCPUShare, m.ProcCPUPerReq, m.UpstreamCPUShare, m.Load)
	return m, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func fmtMS(v float64) string     { return fmt.Sprintf("%.3f", v) }

func authHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// trivialScenario: max throughput (closed loop) for every target, then latency at a fixed rate (open loop)
// for every target — half the timstack proxy's maximum, lowered until the machine is at most 50 % busy —
// for a request the proxy decides on and one it only forwards.
func trivialScenario(ctx context.Context, o options, rep *Report, targets []target) error {
	kinds := []struct {
		name string
		req  bench.Request
	}{
		{"decided PUT presence/status", bench.Request{Method: http.MethodPut,
			Target: "/_matrix/client/v3/presence/" + benchUser + "/status", Header: authHeader(benchToken),
			Body: []byte(`{"presence":"online","status_msg":"in the practice until 18:00"}`)}},
		{"forwarded GET sync?timeout=0", bench.Request{Method: http.MethodGet,
			Target: "/_matrix/client/v3/sync?timeout=0", Header: authHeader(benchToken)}},
	}
	for _, k := range kinds {
		var tsMax float64
		for range trivialRounds {
			for _, t := range targets {
				m, err := measure(ctx, o, "trivial", k.name, t, k.req, o.conns, 0)
				if err != nil {
					return err
				}
				if m.Errors > 0 {
					return fmt.Errorf("%s %s: %d errors (statuses in the log): the setup is broken", t.name, k.name, m.Errors)
				}
				if t.name == "timstack" {
					tsMax += m.RPS / trivialRounds
				}
				rep.Trivial = append(rep.Trivial, m)
			}
		}
		rate, err := calibrateRate(ctx, o, targets[len(targets)-1], k.req, tsMax/2)
		if err != nil {
			return err
		}
		for _, t := range targets {
			m, err := measure(ctx, o, "trivial", k.name, t, k.req, o.openConns, rate)
			if err != nil {
				return err
			}
			rep.Trivial = append(rep.Trivial, m)
		}
	}
	return nil
}

// calibrateRate finds the open-loop rate for the latency runs: "latency at ≤ 50 % CPU" means the whole
// machine at most half busy. It starts at start (half the timstack maximum) and, while the machine is
// busier than 50 % at that rate, scales the rate down in proportion (per-request CPU rises at lower rates,
// so one step is rarely enough). Rates are rounded down to 100/s.
func calibrateRate(ctx context.Context, o options, ts target, req bench.Request, start float64) (float64, error) {
	rate := max(float64(int(start/100)*100), 100)
	// Below a fifth of the maximum the busy share is someone else's work, not this rate's.
	floor := max(float64(int(start*0.4/100)*100), 100)
	for range 3 {
		sys0, err := bench.ReadSystemCPU()
		if err != nil {
			return rate, nil // no /proc/stat: keep half the maximum
		}
		res, err := bench.Run(ctx, bench.Load{Addr: ts.addr, Request: req, Conns: o.openConns, Duration: 1500 * time.Millisecond, Rate: rate})
		if err != nil {
			return 0, fmt.Errorf("calibrating the rate: %w", err)
		}
		sys1, _ := bench.ReadSystemCPU()
		util := bench.Utilisation(sys0, sys1)
		logf("calibration: %.0f/s → machine %.0f %% busy, %d late", rate, 100*util, res.Late)
		if util <= 0.5 || rate <= floor {
			break
		}
		rate = max(float64(int(rate*0.45/util/100)*100), floor)
	}
	return rate, nil
}

// held asks the upstream how many long-polls it holds.
func held(upAddr string) (int64, error) {
	resp, err := http.Get("http://" + upAddr + bench.HeldPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		Held int64 `json:"held"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, err
	}
	return v.Held, nil
}

func waitHeld(ctx context.Context, upAddr string, ok func(int64) bool, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := held(upAddr)
		if err == nil && ok(n) {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("upstream holds %d long-polls after %s (last error %v)", n, timeout, err)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// longPollScenario holds N idle /sync requests through each proxy and reads the proxy's RSS. Each
// long-poll costs the proxy two descriptors (client side and upstream side), so N is capped below half the
// descriptor limit; the RSS at 10 k is then extrapolated from the per-connection cost.
func longPollScenario(ctx context.Context, o options, rep *Report, upAddr string, proxies []target) error {
	n := o.longPolls
	if limit := int(rep.FDLimit); limit > 0 && n > (limit-200)/2 {
		n = (limit - 200) / 2
		rep.LongNote = fmt.Sprintf("%d long-polls instead of %d: the descriptor hard limit is %d and a proxied long-poll holds two descriptors in the proxy; RSS at 10 k extrapolated per connection",
			n, o.longPolls, limit)
	}
	req := bench.Request{Method: http.MethodGet, Target: "/_matrix/client/v3/sync?timeout=60000&since=s0", Header: authHeader(benchToken)}
	for _, t := range proxies {
		lp := LongPoll{Target: t.name, Conns: n}
		lp.Load, _ = bench.LoadAvg()
		runtime.GC()
		before, err := bench.ReadProc(t.pid)
		if err != nil {
			return err
		}
		lp.RSSBefore = before.RSS
		start := time.Now()
		conns, err := bench.OpenIdle(ctx, t.addr, req, n, 128)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		_, err = waitHeld(ctx, upAddr, func(h int64) bool { return h >= int64(n) }, 90*time.Second)
		if err != nil {
			bench.CloseAll(conns)
			return fmt.Errorf("%s: %w", t.name, err)
		}
		lp.HoldSeconds = time.Since(start).Seconds()
		time.Sleep(2 * time.Second) // let the runtime settle (stack growth, GC) before reading
		s, err := bench.ReadProc(t.pid)
		bench.CloseAll(conns)
		if err != nil {
			return err
		}
		lp.RSSHeld, lp.HWM = s.RSS, s.HWM
		lp.PerConnKB = float64(s.RSS-before.RSS) / 1024 / float64(n)
		lp.RSSAt10k = before.RSS + int64(float64(s.RSS-before.RSS)*10000/float64(n))
		logf("long-polls %-8s %d held in %.1f s: RSS %d MB → %d MB (%.1f KB/conn, 10 k ≈ %d MB), load %.2f",
			t.name, n, lp.HoldSeconds, before.RSS>>20, s.RSS>>20, lp.PerConnKB, lp.RSSAt10k>>20, lp.Load)
		rep.LongPolls = append(rep.LongPolls, lp)
		if _, err := waitHeld(ctx, upAddr, func(h int64) bool { return h == 0 }, 60*time.Second); err != nil {
			return fmt.Errorf("%s: releasing: %w", t.name, err)
		}
	}
	return nil
}

// synapseScenario: throughput and latency of a forwarded and a decided request, direct to Synapse and
// through the proxy, alternating twice so a drift of the shared machine hits both sides.
func synapseScenario(ctx context.Context, o options, rep *Report) error {
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	venv, tmpl, err := synapse.InstallOrFind(ictx)
	if err != nil {
		return fmt.Errorf("installing Synapse: %w", err)
	}
	var pinRest, pinLast string
	if o.pinHS {
		// Children inherit the affinity: the proxy stays with the load generator, Synapse moves once started.
		var err error
		if pinRest, pinLast, err = splitCPUs(); err != nil {
			return err
		}
		if err := pinAllThreads(os.Getpid(), pinRest); err != nil {
			return err
		}
	}
	port, err := bench.FreePort()
	if err != nil {
		return err
	}
	hsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	fx, err := bench.WriteProxyFixture(filepath.Join(o.workdir, "timstack-synapse"), benchServer, "http://"+hsAddr)
	if err != nil {
		return err
	}
	hs, err := synapse.Start(ictx, synapse.Config{ServerName: benchServer, Addr: hsAddr, DataDir: filepath.Join(o.workdir, "synapse"),
		Venv: venv, Template: tmpl, AppServiceFiles: []string{fx.Registration}, PublicBaseURL: "http://" + fx.ClientAddr + "/"})
	if err != nil {
		return fmt.Errorf("starting Synapse: %w", err)
	}
	defer func() { _ = hs.Stop() }()
	ts, err := startTimstack(ctx, o, "timstack-synapse", fx)
	if err != nil {
		return err
	}
	defer ts.stop()
	// A bare ReverseProxy in front of the same Synapse: on shared cores any proxy takes CPU from the
	// homeserver, and its loss is the part of timstack's that is not timstack's own doing.
	bare, err := startSelf(ctx, o.workdir, "bare-synapse", "bare", "--listen", "127.0.0.1:0", "--upstream", "http://"+hsAddr)
	if err != nil {
		return err
	}
	defer bare.stop()
	userID, token, err := hs.RegisterUser(ictx, "bench", "bench-password-1", false)
	if err != nil {
		return fmt.Errorf("registering the bench user: %w", err)
	}
	hsPID, err := synapsePID(filepath.Join(o.workdir, "synapse"))
	if err != nil {
		logf("synapse: %v (CPU per request not reported)", err)
	}
	if o.pinHS {
		if hsPID == 0 {
			return errors.New("--pin-homeserver: Synapse's process not found")
		}
		if err := pinAllThreads(hsPID, pinLast); err != nil {
			return err
		}
		rep.SynapsePin = fmt.Sprintf("Synapse pinned to CPU %s; load generator and proxy to CPU %s", pinLast, pinRest)
	}
	direct := target{"synapse", hsAddr, hsPID, hsPID}
	viaBare := target{"bare→synapse", bare.addr, bare.pid(), hsPID}
	proxied := target{"timstack→synapse", ts.addr, ts.pid(), hsPID}
	kinds := []struct {
		name string
		req  bench.Request
	}{
		{"forwarded GET account/whoami", bench.Request{Method: http.MethodGet, Target: "/_matrix/client/v3/account/whoami", Header: authHeader(token)}},
		{"decided GET profile/{self}", bench.Request{Method: http.MethodGet, Target: "/_matrix/client/v3/profile/" + userID, Header: authHeader(token)}},
	}
	for _, k := range kinds {
		for range synapseRounds {
			for _, t := range []target{direct, viaBare, proxied} {
				if t.pid == 0 {
					t.pid = os.Getpid() // unknown Synapse pid: the CPU columns are meaningless, the rest is not
				}
				m, err := measure(ctx, o, "synapse", k.name, t, k.req, o.conns, 0)
				if err != nil {
					return err
				}
				if m.Errors > 0 {
					return fmt.Errorf("%s %s: %d errors", t.name, k.name, m.Errors)
				}
				rep.Synapse = append(rep.Synapse, m)
			}
		}
	}
	return nil
}

// synapsePID finds the Synapse process serving dataDir: the one whose command line names the
// homeserver.yaml in it (Synapse writes its pid_file only when it daemonises).
func synapsePID(dataDir string) (int, error) {
	cfg := filepath.Join(dataDir, "homeserver.yaml")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, cfg) && slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "synapse.app.homeserver") }) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no Synapse process with %s on its command line", cfg)
}

// printReport writes the tables quoted in issue notes.
func printReport(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "\n## make bench-proxy — %s, %s, %d CPUs, load average %.2f at start, %.2f at end\n\n",
		rep.Started.Format(time.RFC3339), rep.GoVersion, rep.CPUs, rep.LoadStart, rep.LoadEnd)
	fmt.Fprintln(w, "Processes: load generator (this one), trivial upstream, bare httputil.ReverseProxy and `timstack proxy`")
	fmt.Fprintln(w, "each separate, all on the same cores. closed = max throughput with N keep-alive connections; open = fixed")
	fmt.Fprintln(w, "rate (half the timstack maximum, lowered until the machine is ≤ 50 % busy), latency from each request's")
	fmt.Fprintln(w, "intended start. proc = the target process (direct: the upstream itself); HS = the homeserver behind it. The load column is the 1-minute load average when the row started; it")
	fmt.Fprintln(w, "includes this run's own processes (a closed loop alone keeps about three runnable), so values near 3 on")
	fmt.Fprintln(w, "2 CPUs are self-inflicted; sys CPU above what the target processes use is someone else's.")
	if rep.TimstackEnv != "" {
		fmt.Fprintf(w, "The timstack proxy processes ran with %s.\n", rep.TimstackEnv)
	}
	fmt.Fprintln(w)
	table(w, rep.Trivial)
	fmt.Fprintln(w)
	added(w, rep.Trivial)
	if len(rep.Synapse) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### In front of Synapse (closed loop, alternating rounds; loss and added latency are means over the rounds)")
		fmt.Fprintln(w)
		if rep.SynapsePin != "" {
			fmt.Fprintf(w, "CPU affinity: %s.\n\n", rep.SynapsePin)
		}
		table(w, rep.Synapse)
		fmt.Fprintln(w)
		synapseLoss(w, rep.Synapse)
	}
	if rep.SynapseNote != "" {
		fmt.Fprintf(w, "\nSynapse: %s\n", rep.SynapseNote)
	}
	if len(rep.LongPolls) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Idle /sync long-polls (GET /sync?timeout=60000 held by the upstream; proxy VmRSS from /proc)")
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
		fmt.Fprintln(tw, "proxy\theld\tRSS before MB\tRSS held MB\tpeak MB\tKB/conn\tRSS at 10k MB\ttarget ≤ 256 MB\tload")
		for _, l := range rep.LongPolls {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%.2f\n", l.Target, l.Conns, mb(l.RSSBefore), mb(l.RSSHeld), mb(l.HWM),
				l.PerConnKB, mb(l.RSSAt10k), verdict(l.Target == "timstack", mb(max(l.RSSAt10k, l.RSSHeld)) <= 256), l.Load)
		}
		tw.Flush()
	}
	if rep.LongNote != "" {
		fmt.Fprintf(w, "\nLong-polls: %s\n", rep.LongNote)
	}
	if len(rep.GoBench) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Go benchmarks (policy decisions and the proxy's hot paths; cpu-ns/op excludes waiting for a core)")
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
		fmt.Fprintln(tw, "benchmark\tns/op\tcpu-ns/op\tB/op\tallocs/op")
		for _, b := range rep.GoBench {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Name, metric(b, "ns/op"), metric(b, "cpu-ns/op"), metric(b, "B/op"), metric(b, "allocs/op"))
		}
		tw.Flush()
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func metric(b bench.GoBench, unit string) string {
	v, ok := b.Metrics[unit]
	if !ok {
		return "-"
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func verdict(applies, ok bool) string {
	switch {
	case !applies:
		return ""
	case ok:
		return "met"
	default:
		return "MISSED"
	}
}

func table(w io.Writer, ms []Measurement) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "request\ttarget\tmode\tconns\trate\trps\tp50 ms\tp90 ms\tp99 ms\terrors\tlate\tsys CPU\tproc cores\tproc µs/req\tHS cores\tload")
	for _, m := range ms {
		rate := "max"
		if m.Rate > 0 {
			rate = fmt.Sprintf("%.0f", m.Rate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.0f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%.0f%%\t%.2f\t%.1f\t%.2f\t%.2f\n",
			m.Request, m.Target, m.Mode, m.Conns, rate, m.RPS, m.P50, m.P90, m.P99, m.Errors, m.Late, 100*m.SystemCPU,
			m.ProcCPUShare, m.ProcCPUPerReq, m.UpstreamCPUShare, m.Load)
	}
	tw.Flush()
}

// find returns the mean of the matching measurements (rounds), false without any.
func find(ms []Measurement, req, target, mode string) (Measurement, bool) {
	var sum Measurement
	n := 0
	for _, m := range ms {
		if m.Request == req && m.Target == target && m.Mode == mode {
			sum.RPS += m.RPS
			sum.P50 += m.P50
			sum.P99 += m.P99
			sum.SystemCPU += m.SystemCPU
			sum.ProcCPUPerReq += m.ProcCPUPerReq
			n++
		}
	}
	if n == 0 {
		return Measurement{}, false
	}
	f := float64(n)
	sum.RPS, sum.P50, sum.P99, sum.SystemCPU, sum.ProcCPUPerReq = sum.RPS/f, sum.P50/f, sum.P99/f, sum.SystemCPU/f, sum.ProcCPUPerReq/f
	return sum, true
}

// added prints the comparison the targets are stated in.
func added(w io.Writer, ms []Measurement) {
	var reqs []string
	for _, m := range ms {
		if len(reqs) == 0 || reqs[len(reqs)-1] != m.Request {
			reqs = append(reqs, m.Request)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintf(w, "Closed-loop throughput and CPU are means over %d alternating rounds.\n\n", trivialRounds)
	fmt.Fprintln(tw, "request\tadded p50 vs direct (≤ +0.3 ms)\tadded p99 vs direct (≤ +2 ms)\tadded p50/p99 vs bare\tsys CPU at that rate (≤ 50 %)\tthroughput vs bare (≥ 80 %)\tproxy CPU µs/req timstack − bare (≤ 50)")
	for _, r := range reqs {
		do, ok1 := find(ms, r, "direct", "open")
		bo, ok2 := find(ms, r, "bare", "open")
		to, ok3 := find(ms, r, "timstack", "open")
		bc, ok4 := find(ms, r, "bare", "closed")
		tc, ok5 := find(ms, r, "timstack", "closed")
		if !(ok1 && ok2 && ok3 && ok4 && ok5) {
			continue
		}
		d50, d99 := to.P50-do.P50, to.P99-do.P99
		ratio := tc.RPS / bc.RPS
		cpu := tc.ProcCPUPerReq - bc.ProcCPUPerReq
		fmt.Fprintf(tw, "%s\t%+.3f ms %s\t%+.3f ms %s\t%+.3f / %+.3f ms\t%.0f%% %s\t%.0f%% %s\t%+.1f %s\n", r,
			d50, verdict(true, d50 <= 0.3), d99, verdict(true, d99 <= 2), to.P50-bo.P50, to.P99-bo.P99,
			100*to.SystemCPU, verdict(true, to.SystemCPU <= 0.5), 100*ratio, verdict(true, ratio >= 0.8), cpu, verdict(true, cpu <= 50))
	}
	tw.Flush()
}

func synapseLoss(w io.Writer, ms []Measurement) {
	type agg struct{ rps, p50, p99 float64 }
	sums := map[string]map[string]*agg{}
	var reqs []string
	for _, m := range ms {
		if sums[m.Request] == nil {
			sums[m.Request] = map[string]*agg{}
			reqs = append(reqs, m.Request)
		}
		a := sums[m.Request][m.Target]
		if a == nil {
			a = &agg{}
			sums[m.Request][m.Target] = a
		}
		a.rps += m.RPS
		a.p50 += m.P50
		a.p99 += m.P99
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "request\tdirect rps\tvia timstack rps\tthroughput loss (< 5 %)\tadded p50 / p99 ms\tvia bare proxy rps\tbare proxy's loss\ttimstack vs bare")
	for _, r := range reqs {
		d, p, b := sums[r]["synapse"], sums[r]["timstack→synapse"], sums[r]["bare→synapse"]
		if d == nil || p == nil || d.rps == 0 {
			continue
		}
		loss := 1 - p.rps/d.rps
		bareRPS, bareLoss, vsBare := "-", "-", "-"
		if b != nil && b.rps > 0 {
			bareRPS = fmt.Sprintf("%.0f", b.rps/synapseRounds)
			bareLoss = fmt.Sprintf("%.1f%%", 100*(1-b.rps/d.rps))
			vsBare = fmt.Sprintf("%.1f%%", 100*(p.rps/b.rps-1))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.1f%% %s\t%+.3f / %+.3f\t%s\t%s\t%s\n", r, d.rps/synapseRounds, p.rps/synapseRounds, 100*loss,
			verdict(true, loss < 0.05), (p.p50-d.p50)/synapseRounds, (p.p99-d.p99)/synapseRounds, bareRPS, bareLoss, vsBare)
	}
	tw.Flush()
}

// splitCPUs returns the CPUs this process may use without the last one, and the last one.
func splitCPUs() (rest, last string, err error) {
	n := runtime.NumCPU()
	if n < 2 {
		return "", "", errors.New("--pin-homeserver needs at least 2 CPUs")
	}
	if n == 2 {
		return "0", "1", nil
	}
	return fmt.Sprintf("0-%d", n-2), strconv.Itoa(n - 1), nil
}

// pinAllThreads sets the CPU affinity of every thread of pid (taskset -a); threads started later inherit it.
func pinAllThreads(pid int, cpus string) error {
	out, err := exec.Command("taskset", "-a", "-cp", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -cp %s %d: %v: %s", cpus, pid, err, out)
	}
	return nil
}
