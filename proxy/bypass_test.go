package proxy

// The bypass corpus: raw HTTP requests that try to reach something the proxy must keep from the homeserver,
// sent byte for byte over TCP to the proxy's client and federation handlers (behind the framing guard, as
// Run serves them) and, for contrast, to a bare httputil.ReverseProxy. The upstream records what arrives;
// "forbidden" is decided on what it saw, independently of the proxy's own code path (see forbiddenArrival).
//
// Corpus format (testdata/bypass/*.txt), one entry per block:
//
//	== <client|federation> <class>: <name>
//	why: <what the trick tries>
//	deny: <substring>          (optional, repeatable; "*" means nothing at all may arrive)
//	arrive: <n>                (control entries: at least n requests must arrive)
//	>>>
//	<raw request lines>
//	<<<
//
// Raw lines are taken literally after decoding the escapes \r \n \t \0 \\ and \xHH; each line ends in CRLF
// unless it ends in \c (no terminator: write bare LF as "\n\c", a body without trailing CRLF as "{}\c").
// Placeholders, replaced after decoding: {{CL}} is the length of the first request's body (everything after
// the first empty line); {{XM k=v …}} is a valid X-Matrix Authorization value for the first request (origin
// hs2.tim.test, destination hs1.tim.test, key ed25519:k1), and {{SIG k=v …}} only its signature; the
// parameters origin, destination, method, uri, key (whose private key signs) and kid change what is signed,
// and nodest=1 leaves destination out of the header (still signed for hs1.tim.test).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/matrix"
	"github.com/timstack/timstack/proxy/proxytest"
	"github.com/timstack/timstack/proxy/route"
)

// bypassClasses are the corpus classes and the least number of entries each must have.
var bypassClasses = map[string]int{"path": 10, "endpoint": 10, "header": 10, "xmatrix": 10, "smuggling": 10, "control": 3}

type bypassEntry struct {
	file    string
	line    int
	surface string // client or federation
	class   string
	name    string
	why     string
	deny    []string
	arrive  int
	raw     string // still with placeholders, escapes decoded
}

func (e *bypassEntry) String() string {
	return fmt.Sprintf("%s:%d %s %s: %s", e.file, e.line, e.surface, e.class, e.name)
}

// loadBypassCorpus reads and checks every corpus file.
func loadBypassCorpus(t testing.TB) []*bypassEntry {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "bypass", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	var all []*bypassEntry
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := parseBypassCorpus(filepath.Base(f), string(b))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, entries...)
	}
	return all
}

// parseBypassCorpus parses one corpus file.
func parseBypassCorpus(file, text string) ([]*bypassEntry, error) {
	var out []*bypassEntry
	var cur *bypassEntry
	inRaw := false
	var raw strings.Builder
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if inRaw {
			if line == "<<<" {
				inRaw = false
				cur.raw = raw.String()
				raw.Reset()
				out = append(out, cur)
				cur = nil
				continue
			}
			term := "\r\n"
			if s, ok := strings.CutSuffix(line, `\c`); ok {
				line, term = s, ""
			}
			dec, err := decodeCorpusEscapes(line)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, n, err)
			}
			raw.WriteString(dec)
			raw.WriteString(term)
			continue
		}
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "== "):
			if cur != nil {
				return nil, fmt.Errorf("%s:%d: entry %q has no raw request", file, n, cur.name)
			}
			head, name, ok := strings.Cut(line[3:], ": ")
			fields := strings.Fields(head)
			if !ok || len(fields) != 2 || (fields[0] != "client" && fields[0] != "federation") {
				return nil, fmt.Errorf("%s:%d: want \"== <client|federation> <class>: <name>\"", file, n)
			}
			if _, ok := bypassClasses[fields[1]]; !ok {
				return nil, fmt.Errorf("%s:%d: unknown class %q", file, n, fields[1])
			}
			if seen[name] {
				return nil, fmt.Errorf("%s:%d: duplicate name %q", file, n, name)
			}
			seen[name] = true
			cur = &bypassEntry{file: file, line: n, surface: fields[0], class: fields[1], name: strings.TrimSpace(name)}
		case cur == nil:
			return nil, fmt.Errorf("%s:%d: text outside an entry", file, n)
		case strings.HasPrefix(line, "why: "):
			cur.why = strings.TrimSpace(line[5:])
		case strings.HasPrefix(line, "deny: "):
			d, err := decodeCorpusEscapes(strings.TrimSpace(line[6:]))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, n, err)
			}
			cur.deny = append(cur.deny, d)
		case strings.HasPrefix(line, "arrive: "):
			a, err := strconv.Atoi(strings.TrimSpace(line[8:]))
			if err != nil || a < 1 {
				return nil, fmt.Errorf("%s:%d: arrive wants a positive number", file, n)
			}
			cur.arrive = a
		case line == ">>>":
			if cur.why == "" {
				return nil, fmt.Errorf("%s:%d: entry %q has no why", file, n, cur.name)
			}
			if (cur.class == "control") != (cur.arrive > 0) {
				return nil, fmt.Errorf("%s:%d: arrive belongs to control entries, and every control entry needs it", file, n)
			}
			inRaw = true
		default:
			return nil, fmt.Errorf("%s:%d: unexpected line %q", file, n, line)
		}
	}
	if inRaw || cur != nil {
		return nil, fmt.Errorf("%s: unterminated entry at the end", file)
	}
	return out, nil
}

// decodeCorpusEscapes decodes \r \n \t \0 \\ and \xHH.
func decodeCorpusEscapes(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", errors.New("backslash at the end of a line")
		}
		i++
		switch s[i] {
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '0':
			b.WriteByte(0)
		case '\\':
			b.WriteByte('\\')
		case 'x':
			if i+2 >= len(s) {
				return "", errors.New(`short \x escape`)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf(`bad \x escape: %w`, err)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf(`unknown escape \%c`, s[i])
		}
	}
	return b.String(), nil
}

// bypassKeys are the signing keys of the fake remote servers: hs2 and kk are on the federation list,
// evil.test is not.
type bypassKeys map[string]ed25519.PrivateKey

func newBypassKeys() bypassKeys {
	k := bypassKeys{}
	for _, name := range []string{"hs2.tim.test", "kk.tim.test", "evil.test"} {
		seed := sha256.Sum256([]byte("bypass corpus key " + name))
		k[name] = ed25519.NewKeyFromSeed(seed[:])
	}
	return k
}

// fetch serves /_matrix/key/v2/server for the known servers, as the proxy's key ring asks for them.
func (k bypassKeys) fetch(_ context.Context, serverName string) ([]byte, error) {
	key, ok := k[serverName]
	if !ok {
		return nil, fmt.Errorf("no server %s", serverName)
	}
	return matrix.BuildServerKeys(serverName, map[string]ed25519.PrivateKey{"ed25519:k1": key}, time.Now().Add(24*time.Hour))
}

// render replaces the placeholders of an entry's raw request.
func (k bypassKeys) render(raw string) (string, error) {
	_, body, _ := strings.Cut(raw, "\r\n\r\n")
	raw = strings.ReplaceAll(raw, "{{CL}}", strconv.Itoa(len(body)))
	firstLine, _, _ := strings.Cut(raw, "\r\n")
	reqLine := strings.Fields(firstLine)
	for {
		start := strings.Index(raw, "{{")
		if start < 0 {
			return raw, nil
		}
		end := strings.Index(raw[start:], "}}")
		if end < 0 {
			return "", errors.New("unterminated placeholder")
		}
		end += start
		fields := strings.Fields(raw[start+2 : end])
		if len(fields) == 0 || (fields[0] != "XM" && fields[0] != "SIG") {
			return "", fmt.Errorf("unknown placeholder %q", raw[start:end+2])
		}
		p := map[string]string{"origin": "hs2.tim.test", "destination": "hs1.tim.test", "kid": "ed25519:k1"}
		if len(reqLine) >= 2 {
			p["method"], p["uri"] = reqLine[0], reqLine[1]
		}
		for _, f := range fields[1:] {
			name, val, ok := strings.Cut(f, "=")
			if !ok {
				return "", fmt.Errorf("placeholder parameter %q is not name=value", f)
			}
			p[name] = val
		}
		signer := p["origin"]
		if s, ok := p["key"]; ok {
			signer = s
		}
		key, ok := k[signer]
		if !ok {
			key = k["evil.test"]
		}
		var content json.RawMessage
		if json.Valid([]byte(body)) {
			content = json.RawMessage(body)
		}
		msg, err := matrix.SignRequest(p["method"], p["uri"], p["origin"], p["destination"], content, p["kid"], key)
		if err != nil {
			return "", fmt.Errorf("placeholder %q: %w", raw[start:end+2], err)
		}
		var val string
		if fields[0] == "SIG" {
			_, val, _ = strings.Cut(msg, `sig="`)
			val = strings.TrimSuffix(val, `"`)
		} else {
			val = msg
			if p["nodest"] == "1" {
				val = strings.Replace(val, `destination="`+p["destination"]+`",`, "", 1)
			}
		}
		raw = raw[:start] + val + raw[end+2:]
	}
}

// bypassTarget is one front (the proxy or a bare reverse proxy) with its own recording upstream.
type bypassTarget struct {
	up         *proxytest.Upstream
	conns      *connTracker
	client     string // address of the client listener
	federation string // address of the federation listener
}

// bypassUsers are the upstream's users: alice may act, blocker refuses every invite.
func bypassUsers(up *proxytest.Upstream) {
	up.AddUser("tok-alice", "@alice:hs1.tim.test")
	up.AddUser("tok-bob", "@bob:hs1.tim.test")
	up.SetAccountData("@blocker:hs1.tim.test", appservice.TypePermissionConfigPro, map[string]any{"defaultSetting": "block all"})
}

// connTracker counts a server's connections that are not idle, so the harness knows when every handler
// (and so every upstream request it made) has finished.
type connTracker struct {
	mu    sync.Mutex
	state map[net.Conn]http.ConnState
	busy  int
}

func (c *connTracker) hook(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		c.state = map[net.Conn]http.ConnState{}
	}
	prev, known := c.state[conn]
	wasBusy := known && prev != http.StateIdle
	nowBusy := st == http.StateNew || st == http.StateActive
	switch {
	case wasBusy && !nowBusy:
		c.busy--
	case !wasBusy && nowBusy:
		c.busy++
	}
	if st == http.StateClosed || st == http.StateHijacked {
		delete(c.state, conn)
	} else {
		c.state[conn] = st
	}
}

// quiet waits until no connection is busy.
func (c *connTracker) quiet(timeout time.Duration) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		c.mu.Lock()
		b := c.busy
		c.mu.Unlock()
		if b == 0 {
			return true
		}
	}
	return false
}

// serveRaw serves h on a fresh 127.0.0.1 listener with the settings and the framing guard Run uses.
func serveRaw(t testing.TB, h http.Handler, guard bool, tr *connTracker) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if guard {
		l = wrapListener(ln)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug), ConnState: tr.hook}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// newProxyBypassTarget is newTestEnv's proxy on real listeners, with a key ring that knows the corpus keys.
func newProxyBypassTarget(t testing.TB, keys bypassKeys) *bypassTarget {
	t.Helper()
	tt, ok := t.(*testing.T)
	if !ok {
		t.Fatal("newProxyBypassTarget needs a *testing.T")
	}
	env := newTestEnv(tt, "pro")
	env.p.keys = matrix.NewKeyRing(keys.fetch, time.Now, slog.New(slog.DiscardHandler))
	bypassUsers(env.up)
	tr := &connTracker{}
	return &bypassTarget{up: env.up, conns: tr, client: serveRaw(t, env.p.ClientHandler(), true, tr),
		federation: serveRaw(t, env.p.FederationHandler(), true, tr)}
}

// newBareBypassTarget is what the proxy replaces: a plain reverse proxy with no rules.
func newBareBypassTarget(t testing.TB) *bypassTarget {
	t.Helper()
	up := proxytest.NewUpstream(t, "as-token-unused")
	bypassUsers(up)
	u, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)
	tr := &connTracker{}
	return &bypassTarget{up: up, conns: tr, client: serveRaw(t, rp, false, tr), federation: serveRaw(t, rp, false, tr)}
}

// sendRaw writes raw on a fresh connection and reads until the server closes it or falls silent.
func sendRaw(addr, raw string) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		// The server may refuse and close before it read everything; what it answered still counts.
		_ = err
	}
	var got []byte
	buf := make([]byte, 32<<10)
	deadline := time.Now().Add(5 * time.Second)
	for {
		wait := time.Until(deadline)
		if len(got) > 0 {
			wait = min(wait, 250*time.Millisecond)
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, nil
		}
	}
}

// statusLines summarises the answers for failure messages.
func statusLines(resp []byte) string {
	var s []string
	br := bufio.NewReader(bytes.NewReader(resp))
	for {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		s = append(s, r.Status)
	}
	if len(s) == 0 {
		return "no answer"
	}
	return strings.Join(s, ", ")
}

// bypassVerdict is what one entry did at one target.
type bypassVerdict struct {
	arrived   []proxytest.Request
	forbidden []string
	answer    string
}

// runBypass sends every entry to a target of its own (workers in parallel, one entry at a time per
// target) and judges what arrived.
func runBypass(t *testing.T, entries []*bypassEntry, targets []*bypassTarget, keys bypassKeys) []bypassVerdict {
	t.Helper()
	clientTable, fedTable := route.ClientTable(), route.FederationTable()
	verdicts := make([]bypassVerdict, len(entries))
	work := make(chan int)
	var wg sync.WaitGroup
	for _, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				e := entries[i]
				raw, err := keys.render(e.raw)
				if err != nil {
					verdicts[i].forbidden = []string{"corpus entry does not render: " + err.Error()}
					continue
				}
				tg.up.Reset()
				addr := tg.client
				if e.surface == "federation" {
					addr = tg.federation
				}
				resp, err := sendRaw(addr, raw)
				if err != nil {
					verdicts[i].forbidden = []string{"send: " + err.Error()}
					continue
				}
				v := &verdicts[i]
				v.answer = statusLines(resp)
				// Every handler done, then the upstream settled: what arrived belongs to this entry.
				if !tg.conns.quiet(10 * time.Second) {
					v.forbidden = append(v.forbidden, "the front did not finish its handlers within 10 s")
				}
				for n := -1; n != len(tg.up.Requests()); time.Sleep(30 * time.Millisecond) {
					n = len(tg.up.Requests())
				}
				v.arrived = tg.up.Requests()
				for _, r := range v.arrived {
					if why := forbiddenArrival(e, r, clientTable, fedTable, keys); why != "" {
						v.forbidden = append(v.forbidden, fmt.Sprintf("%s %s: %s", r.Method, r.RequestURI, why))
					}
				}
			}
		}()
	}
	for i := range entries {
		work <- i
	}
	close(work)
	wg.Wait()
	return verdicts
}

// forwarded counts the arrivals that are not the proxy's own token lookups (whoami answers are cached,
// so whether one happens depends on earlier entries).
func forwarded(reqs []proxytest.Request) int {
	n := 0
	for _, r := range reqs {
		if !strings.HasSuffix(r.RequestURI, "/account/whoami") {
			n++
		}
	}
	return n
}

// forbiddenArrival says why a request that reached the upstream must not have, or "" when it may.
func forbiddenArrival(e *bypassEntry, r proxytest.Request, clientTable, fedTable *route.Table, keys bypassKeys) string {
	for _, d := range e.deny {
		if d == "*" {
			return "the entry says nothing may arrive"
		}
		if strings.Contains(r.Method+" "+r.RequestURI, d) || bytes.Contains(r.Body, []byte(d)) {
			return fmt.Sprintf("carries %q, which the entry says must not arrive", d)
		}
	}
	// The homeserver takes the client address from X-Forwarded-For (leftmost entry): it must be ours.
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 && (len(xff) != 1 || xff[0] != "127.0.0.1") {
		return fmt.Sprintf("X-Forwarded-For %q is not the client's address", xff)
	}
	if xfp := r.Header.Values("X-Forwarded-Proto"); len(xfp) > 0 && (len(xfp) != 1 || xfp[0] != "http") {
		return fmt.Sprintf("X-Forwarded-Proto %q is not the connection's scheme", xfp)
	}
	tgt, err := route.CheckTarget(r.Method, r.RequestURI)
	if err != nil {
		return "ambiguous target at the upstream: " + err.Error()
	}
	table := clientTable
	if e.surface == "federation" {
		table = fedTable
	}
	m, err := table.Lookup(r.Method, tgt)
	if err != nil {
		return "not on the " + e.surface + " allow-list: " + err.Error()
	}
	switch {
	case m.Route.Flags.Has(route.Blocked):
		return "blocked route " + m.Route.ID
	case strings.HasPrefix(tgt.Path, "/_synapse/admin") && m.Route.ID != "synapse.admin.server_version":
		return "admin API"
	case e.surface == "federation" && m.Route.Flags.Has(route.NeedsAuth):
		if err := verifyArrivedXMatrix(r, keys); err != nil {
			return "federation request without valid X-Matrix: " + err.Error()
		}
	}
	return ""
}

// verifyArrivedXMatrix checks a federation request the way the homeserver reads it, stricter where
// readings could differ: every Authorization value that starts with X-Matrix (any case) must parse, all
// must name the same origin and destination exactly, the destination must be us and the origin another
// server on the federation list, and the first signature must verify.
func verifyArrivedXMatrix(r proxytest.Request, keys bypassKeys) error {
	var xs []matrix.XMatrix
	for _, v := range r.Header.Values("Authorization") {
		if len(v) < 8 || !strings.EqualFold(v[:8], "X-Matrix") {
			continue
		}
		x, err := matrix.ParseXMatrix(v)
		if err != nil {
			return fmt.Errorf("an X-Matrix value does not parse: %w", err)
		}
		if len(xs) > 0 && (x.Origin != xs[0].Origin || x.Destination != xs[0].Destination) {
			return errors.New("X-Matrix values disagree")
		}
		xs = append(xs, x)
	}
	if len(xs) == 0 {
		return errors.New("none")
	}
	x, err := xs[0].WithDestination("hs1.tim.test")
	if err != nil {
		return err
	}
	listed := slices.ContainsFunc(testDomains, func(d certs.FederationDomain) bool { return d.Domain == x.Origin })
	if !listed || x.Origin == "hs1.tim.test" {
		return fmt.Errorf("origin %s is not another server on the federation list", x.Origin)
	}
	key, ok := keys[x.Origin]
	if !ok || x.KeyID != "ed25519:k1" {
		return fmt.Errorf("no key %s of %s", x.KeyID, x.Origin)
	}
	return matrix.VerifyRequest(x, r.Method, r.RequestURI, r.Body, key.Public().(ed25519.PublicKey))
}

// TestBypassCorpusParses pins the corpus's size and shape, so that it cannot shrink unnoticed.
func TestBypassCorpusParses(t *testing.T) {
	entries := loadBypassCorpus(t)
	count := map[string]int{}
	for _, e := range entries {
		count[e.class]++
		if _, err := newBypassKeys().render(e.raw); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
	attacks := len(entries) - count["control"]
	if attacks < 150 {
		t.Errorf("%d attack entries, want at least 150", attacks)
	}
	for class, least := range bypassClasses {
		if count[class] < least {
			t.Errorf("class %s has %d entries, want at least %d", class, count[class], least)
		}
	}
	t.Logf("corpus: %d entries %v", len(entries), count)
}

func TestParseBypassCorpusRefusesMalformedEntries(t *testing.T) {
	cases := []struct{ name, text string }{
		{"an unknown class", "== client nope: x\nwhy: y\n>>>\nGET / HTTP/1.1\n<<<\n"},
		{"a missing why", "== client path: x\n>>>\nGET / HTTP/1.1\n<<<\n"},
		{"an unterminated raw block", "== client path: x\nwhy: y\n>>>\nGET / HTTP/1.1\n"},
		{"a bad escape", "== client path: x\nwhy: y\n>>>\nGET /\\q HTTP/1.1\n<<<\n"},
		{"a control entry without arrive", "== client control: x\nwhy: y\n>>>\nGET / HTTP/1.1\n<<<\n"},
		{"a duplicate name", "== client path: x\nwhy: y\n>>>\nA\n<<<\n== client path: x\nwhy: y\n>>>\nA\n<<<\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseBypassCorpus("t.txt", tc.text); err == nil {
				t.Fatal("parsed")
			}
		})
	}
	got, err := parseBypassCorpus("t.txt", "== client path: x\nwhy: y\ndeny: a\\x41\n>>>\nGET / HTTP/1.1\nX: a\\tb\n\n{}\\c\n<<<\n")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].raw != "GET / HTTP/1.1\r\nX: a\tb\r\n\r\n{}" || got[0].deny[0] != "aA" {
		t.Fatalf("parsed %q deny %q", got[0].raw, got[0].deny)
	}
}

// The acceptance test of issue 4: nothing forbidden reaches the homeserver through the proxy, every
// control arrives, and the same corpus through a bare reverse proxy lets at least 30 entries through.
func TestBypassCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("sends the corpus over TCP")
	}
	entries := loadBypassCorpus(t)
	keys := newBypassKeys()
	const workers = 3
	var proxies, bares []*bypassTarget
	for range workers {
		proxies = append(proxies, newProxyBypassTarget(t, keys))
		bares = append(bares, newBareBypassTarget(t))
	}

	verdicts := runBypass(t, entries, proxies, keys)
	for i, e := range entries {
		v := verdicts[i]
		for _, f := range v.forbidden {
			t.Errorf("proxy let through %s (%s)\n  answer: %s\n  arrival: %s", e, e.why, v.answer, f)
		}
		if n := forwarded(v.arrived); e.class == "control" && n < e.arrive {
			t.Errorf("control %s: %d requests arrived, want %d (answer: %s)", e, n, e.arrive, v.answer)
		}
	}

	bare := runBypass(t, entries, bares, keys)
	through := 0
	perClass := map[string]int{}
	for i, e := range entries {
		if len(bare[i].forbidden) > 0 {
			through++
			perClass[e.class]++
		}
		if e.class == "control" && forwarded(bare[i].arrived) < e.arrive {
			t.Errorf("control %s does not arrive through the bare reverse proxy either: %s", e, bare[i].answer)
		}
	}
	t.Logf("bare httputil.ReverseProxy let %d of %d entries through to something forbidden %v", through, len(entries), perClass)
	if through < 30 {
		t.Errorf("the bare reverse proxy let only %d entries through, want at least 30: the corpus or the judge is too weak", through)
	}
}

// Run puts the framing guard on the client and the federation listener (after TLS): a request with
// Content-Length and Transfer-Encoding gets the guard's answer on both and reaches nothing.
func TestRunGuardsClientAndFederationListeners(t *testing.T) {
	env := newTestEnv(t, "pro")
	logs := &syncBuffer{}
	env.p.log = slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	addrs := map[string]string{}
	for end := time.Now().Add(10 * time.Second); len(addrs) < 4 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var l struct{ Msg, Surface, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" {
				addrs[l.Surface] = l.Addr
			}
		}
	}
	const smuggle = "POST /_matrix/client/v3/logout HTTP/1.1\r\nHost: hs1.tim.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	for _, surface := range []string{"client", "federation"} {
		t.Run(surface, func(t *testing.T) {
			if addrs[surface] == "" {
				t.Fatalf("no %s listener in the log", surface)
			}
			var c net.Conn
			var err error
			if surface == "federation" {
				c, err = tls.Dial("tcp", addrs[surface], &tls.Config{InsecureSkipVerify: true}) // the test CA is not needed to see the answer
			} else {
				c, err = net.Dial("tcp", addrs[surface])
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, smuggle)
			got, _ := io.ReadAll(c)
			if string(got) != ambiguousResponse {
				t.Fatalf("answer %q, want the guard's 400", got)
			}
		})
	}
	if reqs := env.up.Requests(); len(reqs) != 0 {
		t.Fatalf("%d requests reached the upstream", len(reqs))
	}
}
