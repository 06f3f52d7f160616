package e2e

// The acceptance layer: two real Synapse homeservers (PyPI, pinned), each behind its own timstack proxy,
// federating over TLS through both proxies. Server names hs1.tim.test and hs2.tim.test resolve to loopback
// ports only through the proxies' test resolver map — no /etc/hosts edits, no DNS. Synapse reaches the other
// server exclusively via its https_proxy (our forward listener) and trusts only our proxy CA for federation,
// so a federation request that bypassed the proxies could not even complete its TLS handshake.
//
// The stack starts once per package (TestMain); every test registers fresh users and rooms.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/e2e/mxclient"
	"github.com/timstack/timstack/proxy/e2e/synapse"
	"github.com/timstack/timstack/proxy/forward"
)

// node is one homeserver with its proxy.
type node struct {
	name      string
	hs        *synapse.Server
	proxy     *proxy.Proxy
	cfg       *proxy.Config
	cancel    context.CancelFunc
	done      chan error
	clientURL string // the proxy's client listener
	internal  string // the proxy's internal listener
	decisions *lockedBuffer
	listFile  string
	logFile   *os.File
}

// stack is the pair of homeservers plus the PKI and federation list they share.
type stack struct {
	dir     string
	venv    string
	tmpl    string
	tlsCA   *certs.TestCA
	kompCA  *certs.TestCA
	signerCert  *certs.Certificate
	signerKey   crypto.Signer
	listVersion int64
	nodes       map[string]*node
	federated   []certs.FederationDomain
}

var (
	theStack *stack
	stackErr error
)

// lockedBuffer is an io.Writer safe for the proxy's concurrent decision-log writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns decision-log events as maps.
func (l *lockedBuffer) events() []map[string]any {
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

func TestMain(m *testing.M) {
	code := func() int {
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
		keep := os.Getenv("TIMSTACK_E2E_KEEP") == "1"
		if !keep {
			defer os.RemoveAll(dir)
		}
		start := time.Now()
		theStack, stackErr = startStack(ctx, dir, venv, tmpl, []string{"hs1.tim.test", "hs2.tim.test"})
		if stackErr != nil {
			fmt.Fprintf(os.Stderr, "e2e: stack failed to start: %v\n", stackErr)
			if theStack != nil {
				theStack.stop()
			}
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: stack of %d homeservers + proxies up in %s (dir %s)\n", len(theStack.nodes), time.Since(start).Round(time.Millisecond), dir)
		defer theStack.stop()
		return m.Run()
	}()
	os.Exit(code)
}

func startStack(ctx context.Context, dir, venv, tmpl string, names []string) (*stack, error) {
	s := &stack{dir: dir, venv: venv, tmpl: tmpl, nodes: map[string]*node{}}
	now := time.Now()
	var err error
	// TLS between proxies: P-256 (Go's TLS has no brainpool). The list signer: brainpool, as the VZD's.
	if s.tlsCA, err = certs.NewTestCA("e2e TLS CA", certs.KeyP256, now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	if s.kompCA, err = certs.NewTestCA("e2e KOMP-CA", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return nil, err
	}
	signer, signKey, err := s.kompCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, CommonName: "VZD-FHIR-FList-Signer", SubjectSerialNumber: "00001-A"})
	if err != nil {
		return nil, err
	}
	s.signerCert, s.signerKey = signer, signKey
	if err := os.MkdirAll(filepath.Join(dir, "trust"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "trust", "komp-ca.pem"), s.kompCA.Cert.EncodePEM(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls-ca.pem"), s.tlsCA.Cert.EncodePEM(), 0o644); err != nil {
		return nil, err
	}
	for i, name := range names {
		s.federated = append(s.federated, certs.FederationDomain{Domain: name, TelematikID: fmt.Sprintf("1-e2e-%d", i+1)})
	}

	// Ports first: every proxy must know every other proxy's federation address (resolver map).
	type ports struct{ hs, client, fed, fwd, internal int }
	allPorts := map[string]ports{}
	resolve := map[string]string{}
	for _, name := range names {
		var p ports
		for _, ptr := range []*int{&p.hs, &p.client, &p.fed, &p.fwd, &p.internal} {
			if *ptr, err = freePort(); err != nil {
				return nil, err
			}
		}
		allPorts[name] = p
		fed := "127.0.0.1:" + strconv.Itoa(p.fed)
		resolve[name+":443"], resolve[name+":8448"] = fed, fed
	}

	for _, name := range names {
		p := allPorts[name]
		nd := &node{name: name, decisions: &lockedBuffer{}}
		ndir := filepath.Join(dir, name)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return s, err
		}
		// Federation TLS certificate for the proxy's inbound listener.
		cert, key, err := s.tlsCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileTLSServer, CommonName: name, DNSNames: []string{name}})
		if err != nil {
			return s, err
		}
		if err := certs.WriteCertAndKey(filepath.Join(ndir, "tls"), cert, key); err != nil {
			return s, err
		}
		// The proxy CA the homeserver trusts for its intercepted outbound TLS.
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
		nd.listFile = filepath.Join(ndir, "federation-list.jws")
		cfg := &proxy.Config{
			ServerName: name,
			Variant:    "pro",
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
			FederationList: proxy.FederationListConfig{Source: "file", File: nd.listFile, TrustDir: filepath.Join(dir, "trust"),
				OCSP: "off", AllowTestTrust: true},
		}
		cfg.FederationList.Keeper.CacheDir = filepath.Join(ndir, "flist-cache")
		cfg.FederationList.Keeper.RefreshInterval = time.Hour // tests refresh explicitly
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			return s, fmt.Errorf("%s proxy config: %w", name, err)
		}
		nd.cfg = cfg
		nd.clientURL = "http://" + cfg.Listen.Client
		nd.internal = "http://" + cfg.Listen.Internal
		s.nodes[name] = nd
	}
	s.listVersion = 1
	if err := s.publishList(s.federated, names...); err != nil {
		return s, err
	}

	// Proxies first (the homeserver's outbound traffic needs them), then the homeservers, concurrently.
	for _, name := range names {
		if err := s.startProxy(ctx, s.nodes[name]); err != nil {
			return s, err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, name := range names {
		nd, p := s.nodes[name], allPorts[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs, err := synapse.Start(ctx, synapse.Config{
				ServerName: nd.name, Addr: "127.0.0.1:" + strconv.Itoa(p.hs), DataDir: filepath.Join(dir, nd.name, "synapse"),
				Venv: venv, Template: tmpl, AppServiceFiles: []string{nd.cfg.Homeserver.AppServiceRegistration},
				HTTPSProxy: "http://" + nd.cfg.Listen.Forward, FederationCAFile: nd.cfg.Forward.CACertFile,
				PublicBaseURL: nd.clientURL + "/",
			})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", nd.name, err)
				return
			}
			nd.hs = hs
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return s, err
	}
	return s, nil
}

// publishList signs a list of domains and writes it for the named nodes' proxies (file source).
func (s *stack) publishList(domains []certs.FederationDomain, forNodes ...string) error {
	jws, err := certs.SignFederationList(s.signerKey, certs.AlgBP256R1, []*certs.Certificate{s.signerCert}, s.listVersion, domains)
	if err != nil {
		return err
	}
	for _, n := range forNodes {
		if err := os.WriteFile(s.nodes[n].listFile, jws, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (s *stack) startProxy(ctx context.Context, nd *node) error {
	logFile, err := os.OpenFile(filepath.Join(s.dir, nd.name, "proxy.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	nd.logFile = logFile
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pctx, cancel := context.WithCancel(context.Background())
	p, err := proxy.New(pctx, nd.cfg, proxy.Deps{Log: log, DecisionLog: nd.decisions})
	if err != nil {
		cancel()
		return fmt.Errorf("%s proxy: %w", nd.name, err)
	}
	nd.proxy, nd.cancel, nd.done = p, cancel, make(chan error, 1)
	go func() { nd.done <- p.Run(pctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(nd.internal + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s proxy did not come up: %v", nd.name, err)
		}
		select {
		case err := <-nd.done:
			return fmt.Errorf("%s proxy exited: %v", nd.name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *stack) stop() {
	for _, nd := range s.nodes {
		if nd.hs != nil {
			_ = nd.hs.Stop()
		}
		if nd.cancel != nil {
			nd.cancel()
			<-nd.done
		}
		if nd.logFile != nil {
			nd.logFile.Close()
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// user is a freshly registered user, talking to its homeserver through the proxy's client listener.
type user struct {
	*mxclient.Client
	id   string
	node *node
}

// newUser registers a fresh user on the node (directly at the homeserver's admin API: registration is not
// what these tests are about) and returns a client that goes through the proxy.
func newUser(t *testing.T, nd *node, prefix string) *user {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	localpart := strings.ToLower(prefix) + "-" + hex.EncodeToString(rnd[:])
	id, token, err := nd.hs.RegisterUser(ctx, localpart, "pw-"+localpart, false)
	if err != nil {
		t.Fatalf("register %s on %s: %v", localpart, nd.name, err)
	}
	return &user{Client: &mxclient.Client{BaseURL: nd.clientURL, UserID: id, AccessToken: token}, id: id, node: nd}
}

func node1(t *testing.T) *node { t.Helper(); return mustNode(t, "hs1.tim.test") }
func node2(t *testing.T) *node { t.Helper(); return mustNode(t, "hs2.tim.test") }

func mustNode(t *testing.T, name string) *node {
	t.Helper()
	if theStack == nil {
		t.Skip("e2e stack not running")
	}
	return theStack.nodes[name]
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var _ = policy.ReasonInviteNotPermitted
