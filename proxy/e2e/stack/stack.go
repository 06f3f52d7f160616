// Package stack starts the acceptance layer: real Synapse homeservers (PyPI, pinned), each behind its own
// timstack proxy, federating over TLS through both proxies.
package stack

// Server names such as hs1.tim.test resolve to loopback ports only through the proxies' test resolver map —
// no /etc/hosts edits, no DNS. Synapse reaches other servers exclusively via its https_proxy (our forward
// listener) and trusts only our proxy CA for federation, so a federation request that bypassed the proxies
// could not even complete its TLS handshake.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/proxy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/e2e/mxclient"
	"github.com/timstack/timstack/proxy/e2e/synapse"
	"github.com/timstack/timstack/proxy/forward"
)

// NodeSpec describes one homeserver of the stack.
type NodeSpec struct {
	// Name is the server name (e.g. hs1.tim.test).
	Name string
	// Variant is the proxy's rule set: pro or epa.
	Variant string
	// Insurance marks the domain isInsurance on the federation list (its users are insured, ePA).
	Insurance bool
	// Configure adjusts the proxy's configuration before it is validated (room jobs, limits, …).
	Configure func(*proxy.Config)
}

// Options configure Start.
type Options struct {
	Nodes []NodeSpec
}

// Node is one homeserver with its proxy.
type Node struct {
	Spec      NodeSpec
	Name      string
	HS        *synapse.Server
	Proxy     *proxy.Proxy
	Cfg       *proxy.Config
	ClientURL string // the proxy's client listener
	Internal  string // the proxy's internal listener
	Decisions *DecisionLog
	ListFile  string
	cancel    context.CancelFunc
	done      chan error
	logFile   *os.File
	stackDir  string
	startMu   sync.Mutex
}

// Stack is the set of homeservers plus the PKI and federation list they share.
type Stack struct {
	Dir  string
	Venv string
	// TLSCA issues the proxies' federation TLS certificates (P-256: Go's TLS has no brainpool).
	TLSCA *certs.TestCA
	// KompCA is the list signer's CA (brainpool, as the VZD's).
	KompCA      *certs.TestCA
	signerCert  *certs.Certificate
	signerKey   crypto.Signer
	listVersion int64
	Nodes       map[string]*Node
	order       []string
	domains     []certs.FederationDomain
}

// DecisionLog is an io.Writer safe for the proxy's concurrent decision-log writes.
type DecisionLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *DecisionLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Events returns the decision-log lines as maps.
func (l *DecisionLog) Events() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.b.Bytes(), []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Main is a TestMain body: it installs Synapse (scripts/synapse.sh), starts the stack, hands it to set,
// runs the tests and stops everything. Without Synapse the package skips, unless TIMSTACK_TEST_REQUIRE_HS=1
// (CI), where it fails. TIMSTACK_E2E_KEEP=1 keeps the stack's folder (logs, configs) for inspection.
func Main(m *testing.M, opts Options, set func(*Stack)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	venv, tmpl, err := synapse.InstallOrFind(ctx)
	if err != nil {
		if os.Getenv("TIMSTACK_TEST_REQUIRE_HS") == "1" {
			fmt.Fprintf(os.Stderr, "e2e: Synapse unavailable and TIMSTACK_TEST_REQUIRE_HS=1: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: skipping, Synapse unavailable: %v\n", err)
		return 0
	}
	dir, err := os.MkdirTemp("", "timstack-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv("TIMSTACK_E2E_KEEP") != "1" {
		defer os.RemoveAll(dir)
	}
	begin := time.Now()
	var s *Stack
	for attempt := 1; ; attempt++ {
		// Ports are picked free but bound later by Synapse and the proxies; another test package starting its
		// stack at the same moment can take one in between. That is worth a fresh start, not a failure.
		sub := filepath.Join(dir, "attempt-"+strconv.Itoa(attempt))
		s, err = Start(ctx, sub, venv, tmpl, opts)
		if err == nil {
			break
		}
		if s != nil {
			s.Stop()
		}
		if attempt < 3 && strings.Contains(strings.ToLower(err.Error()), "address already in use") {
			fmt.Fprintf(os.Stderr, "e2e: port taken while starting (%v); starting again\n", err)
			continue
		}
		fmt.Fprintf(os.Stderr, "e2e: stack failed to start: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: %d homeservers + proxies up in %s (dir %s)\n", len(s.Nodes), time.Since(begin).Round(time.Millisecond), dir)
	defer s.Stop()
	set(s)
	code := m.Run()
	if code != 0 {
		// CI keeps nothing but this output: the warnings of every proxy and homeserver are what a failure
		// (a federation refusal, a backoff, a key fetch that failed) is read from.
		s.PrintProblems(os.Stderr, 40)
	}
	return code
}

// PrintProblems writes the last n warning and error lines of every node's proxy and Synapse log.
func (s *Stack) PrintProblems(w io.Writer, n int) {
	names := make([]string, 0, len(s.Nodes))
	for name := range s.Nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, lf := range []struct{ file, warn, err string }{
			{filepath.Join(s.Dir, name, "proxy.log"), `"level":"WARN"`, `"level":"ERROR"`},
			{filepath.Join(s.Dir, name, "synapse", "homeserver.log"), " - WARNING - ", " - ERROR - "},
		} {
			b, err := os.ReadFile(lf.file)
			if err != nil {
				fmt.Fprintf(w, "e2e: %s: %v\n", lf.file, err)
				continue
			}
			var lines []string
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, lf.warn) || strings.Contains(line, lf.err) {
					lines = append(lines, line)
				}
			}
			lines = lines[max(0, len(lines)-n):]
			fmt.Fprintf(w, "e2e: --- %s: last %d warnings and errors ---\n", strings.TrimPrefix(lf.file, s.Dir+"/"), len(lines))
			for _, line := range lines {
				if len(line) > 600 {
					line = line[:600] + "…"
				}
				fmt.Fprintln(w, line)
			}
		}
	}
}

// Start brings up the stack in dir.
func Start(ctx context.Context, dir, venv, tmpl string, opts Options) (*Stack, error) {
	s := &Stack{Dir: dir, Venv: venv, Nodes: map[string]*Node{}}
	now := time.Now()
	var err error
	if s.TLSCA, err = certs.NewTestCA("e2e TLS CA", certs.KeyP256, now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	if s.KompCA, err = certs.NewTestCA("e2e KOMP-CA", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	if s.signerCert, s.signerKey, err = s.KompCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner,
		CommonName: "VZD-FHIR-FList-Signer", SubjectSerialNumber: "00001-A"}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "trust"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "trust", "komp-ca.pem"), s.KompCA.Cert.EncodePEM(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls-ca.pem"), s.TLSCA.Cert.EncodePEM(), 0o644); err != nil {
		return nil, err
	}
	for i, spec := range opts.Nodes {
		d := certs.FederationDomain{Domain: spec.Name, TelematikID: fmt.Sprintf("1-e2e-%d", i+1)}
		if spec.Insurance {
			d.TelematikID = fmt.Sprintf("8-e2e-%d", i+1)
			d.IsInsurance = true
			d.IK = []string{"10950096" + strconv.Itoa(i%10)}
		}
		s.domains = append(s.domains, d)
	}

	// Ports first: every proxy must know every other proxy's federation address (resolver map).
	type ports struct{ hs, client, fed, fwd, internal int }
	allPorts := map[string]ports{}
	resolve := map[string]string{}
	for _, spec := range opts.Nodes {
		var p ports
		for _, ptr := range []*int{&p.hs, &p.client, &p.fed, &p.fwd, &p.internal} {
			if *ptr, err = freePort(); err != nil {
				return nil, err
			}
		}
		allPorts[spec.Name] = p
		fed := "127.0.0.1:" + strconv.Itoa(p.fed)
		resolve[spec.Name+":443"], resolve[spec.Name+":8448"] = fed, fed
	}

	for _, spec := range opts.Nodes {
		name, p := spec.Name, allPorts[spec.Name]
		nd := &Node{Spec: spec, Name: name, Decisions: &DecisionLog{}, stackDir: dir}
		ndir := filepath.Join(dir, name)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return s, err
		}
		cert, key, err := s.TLSCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileTLSServer, CommonName: name, DNSNames: []string{name}})
		if err != nil {
			return s, err
		}
		if err := certs.WriteCertAndKey(filepath.Join(ndir, "tls"), cert, key); err != nil {
			return s, err
		}
		caPEM, caKey, err := forward.GenerateCA("e2e proxy CA "+name, 24*time.Hour)
		if err != nil {
			return s, err
		}
		if err := os.WriteFile(filepath.Join(ndir, "proxy-ca.pem"), caPEM, 0o644); err != nil {
			return s, err
		}
		if err := os.WriteFile(filepath.Join(ndir, "proxy-ca.key"), caKey, 0o600); err != nil {
			return s, err
		}
		reg, err := appservice.NewRegistration(name, "http://127.0.0.1:"+strconv.Itoa(p.internal))
		if err != nil {
			return s, err
		}
		regYAML, err := reg.YAML()
		if err != nil {
			return s, err
		}
		regFile := filepath.Join(ndir, "appservice.yaml")
		if err := os.WriteFile(regFile, regYAML, 0o600); err != nil {
			return s, err
		}
		nd.ListFile = filepath.Join(ndir, "federation-list.jws")
		variant := spec.Variant
		if variant == "" {
			variant = "pro"
		}
		cfg := &proxy.Config{
			ServerName: name,
			Variant:    variant,
			Listen: proxy.ListenConfig{
				Client:               "127.0.0.1:" + strconv.Itoa(p.client),
				Federation:           "127.0.0.1:" + strconv.Itoa(p.fed),
				FederationTLS:        proxy.TLSConfig{CertFile: filepath.Join(ndir, "tls", "cert.pem"), KeyFile: filepath.Join(ndir, "tls", "key.pem")},
				FederationPublicPort: 8448,
				Forward:              "127.0.0.1:" + strconv.Itoa(p.fwd),
				Internal:             "127.0.0.1:" + strconv.Itoa(p.internal),
			},
			Homeserver: proxy.HomeserverConfig{URL: "http://127.0.0.1:" + strconv.Itoa(p.hs), AppServiceRegistration: regFile},
			Forward: proxy.ForwardConfig{CACertFile: filepath.Join(ndir, "proxy-ca.pem"), CAKeyFile: filepath.Join(ndir, "proxy-ca.key"),
				RootCAFiles: []string{filepath.Join(dir, "tls-ca.pem")}},
			Discovery: proxy.DiscoveryConfig{Resolve: resolve},
			FederationList: proxy.FederationListConfig{Source: "file", File: nd.ListFile, TrustDir: filepath.Join(dir, "trust"),
				OCSP: "off", AllowTestTrust: true},
		}
		cfg.FederationList.Keeper.CacheDir = filepath.Join(ndir, "flist-cache")
		cfg.FederationList.Keeper.RefreshInterval = time.Hour // tests refresh explicitly
		if spec.Configure != nil {
			spec.Configure(cfg)
		}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			return s, fmt.Errorf("%s proxy config: %w", name, err)
		}
		nd.Cfg = cfg
		nd.ClientURL = "http://" + cfg.Listen.Client
		nd.Internal = "http://" + cfg.Listen.Internal
		s.Nodes[name] = nd
		s.order = append(s.order, name)
	}
	if err := s.PublishList(s.domains, s.order...); err != nil {
		return s, err
	}
	// Proxies first (the homeserver's outbound traffic needs them), then the homeservers, concurrently.
	for _, name := range s.order {
		if err := s.Nodes[name].startProxy(); err != nil {
			return s, err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(s.order))
	for _, name := range s.order {
		nd, p := s.Nodes[name], allPorts[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs, err := synapse.Start(ctx, synapse.Config{
				ServerName: nd.Name, Addr: "127.0.0.1:" + strconv.Itoa(p.hs), DataDir: filepath.Join(dir, nd.Name, "synapse"),
				Venv: venv, Template: tmpl, AppServiceFiles: []string{nd.Cfg.Homeserver.AppServiceRegistration},
				HTTPSProxy: "http://" + nd.Cfg.Listen.Forward, FederationCAFile: nd.Cfg.Forward.CACertFile,
				PublicBaseURL: nd.ClientURL + "/",
			})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", nd.Name, err)
				return
			}
			nd.HS = hs
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return s, err
	}
	return s, nil
}

// Domains returns the federation list entries of the stack's own servers.
func (s *Stack) Domains() []certs.FederationDomain {
	return append([]certs.FederationDomain(nil), s.domains...)
}

// PublishList signs a new version of the list with domains and writes it for the named nodes' proxies
// (file source); callers refresh the proxies they want to see it.
func (s *Stack) PublishList(domains []certs.FederationDomain, forNodes ...string) error {
	s.listVersion++
	jws, err := certs.SignFederationList(s.signerKey, certs.AlgBP256R1, []*certs.Certificate{s.signerCert}, s.listVersion, domains)
	if err != nil {
		return err
	}
	for _, n := range forNodes {
		if err := os.WriteFile(s.Nodes[n].ListFile, jws, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (nd *Node) startProxy() error {
	nd.startMu.Lock()
	defer nd.startMu.Unlock()
	if nd.logFile == nil {
		f, err := os.OpenFile(filepath.Join(nd.stackDir, nd.Name, "proxy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		nd.logFile = f
	}
	log := slog.New(slog.NewJSONHandler(nd.logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pctx, cancel := context.WithCancel(context.Background())
	p, err := proxy.New(pctx, nd.Cfg, proxy.Deps{Log: log, DecisionLog: nd.Decisions})
	if err != nil {
		cancel()
		return fmt.Errorf("%s proxy: %w", nd.Name, err)
	}
	nd.Proxy, nd.cancel, nd.done = p, cancel, make(chan error, 1)
	go func() { nd.done <- p.Run(pctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(nd.Internal + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s proxy did not come up: %v", nd.Name, err)
		}
		select {
		case err := <-nd.done:
			nd.cancel()
			nd.cancel = nil // Run has returned; nothing left for stopProxy to wait for
			return fmt.Errorf("%s proxy exited: %v", nd.Name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopProxy ends the proxy and waits for it.
func (nd *Node) stopProxy() {
	if nd.cancel != nil {
		nd.cancel()
		select {
		case <-nd.done:
		case <-time.After(30 * time.Second):
			fmt.Fprintf(os.Stderr, "e2e: %s proxy did not stop within 30s\n", nd.Name)
		}
		nd.cancel = nil
	}
}

// RestartProxy stops the node's proxy and starts a new one from the same configuration (the federation
// list comes back from its disk cache, permission configs from the homeserver).
func (nd *Node) RestartProxy() error {
	nd.stopProxy()
	return nd.startProxy()
}

// Stop ends every homeserver and proxy.
func (s *Stack) Stop() {
	for _, name := range s.order {
		nd := s.Nodes[name]
		if nd.HS != nil {
			_ = nd.HS.Stop()
		}
		nd.stopProxy()
		if nd.logFile != nil {
			nd.logFile.Close()
		}
	}
}

// freePort picks a free port below Linux's ephemeral range (32768–60999). A port from the ephemeral range
// could be taken by any outgoing connection between this check and the homeserver binding it; below the
// range only another listener can take it.
func freePort() (int, error) {
	for range 200 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		port := 20000 + (int(b[0])<<8|int(b[1]))%12000
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, errors.New("stack: no free port in 20000-32767")
}

// User is a freshly registered user, talking to its homeserver through the proxy's client listener.
type User struct {
	*mxclient.Client
	ID   string
	Node *Node
}

// NewUser registers a fresh user on the node (directly at the homeserver's admin API: registration is not
// what these tests are about) and returns a client that goes through the proxy.
func (nd *Node) NewUser(t testing.TB, prefix string) *User {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	localpart := strings.ToLower(prefix) + "-" + hex.EncodeToString(rnd[:])
	id, token, err := nd.HS.RegisterUser(ctx, localpart, "pw-"+localpart, false)
	if err != nil {
		t.Fatalf("register %s on %s: %v", localpart, nd.Name, err)
	}
	return &User{Client: &mxclient.Client{BaseURL: nd.ClientURL, UserID: id, AccessToken: token}, ID: id, Node: nd}
}

// HasDecision looks for a decision-log line of the node's proxy.
func (nd *Node) HasDecision(surface, action, peer string, allow bool) bool {
	for _, ev := range nd.Decisions.Events() {
		if ev["surface"] != surface || ev["action"] != action || ev["allow"] != allow {
			continue
		}
		if ev["destination"] == peer || ev["origin"] == peer {
			return true
		}
	}
	return false
}
