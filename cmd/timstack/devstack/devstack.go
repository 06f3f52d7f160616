// Package devstack runs the whole timstack stack in one process for development and demos: the dev IDP
// (gematik test keys), the directory (SQLite), the registration service and one Messenger-Proxy per
// homeserver it is given. `timstack up` and `make demo` use it; so does the end-to-end acceptance test of
// the smartcard chain.
//
// A homeserver needs three things from its proxy before it starts: the application-service registration,
// the proxy CA (federation_custom_ca_list) and the forward proxy (https_proxy). Prepare writes them under
// Dir/<server name>/ and returns them, so the caller (the demo starts Synapse itself) can configure the
// homeserver; Start then brings the services up.
//
// Trust it relaxes, and why (printed by Relaxations): the gematik test cards and IDP keys are TEST-ONLY; the
// dev IDP's signer certificates name gematik's OCSP responders, unreachable here, so the proxies check them
// without OCSP; cards are checked against a local test OCSP responder instead; the directory's list signer
// and the registration service's token signer come from a dev component CA, not from GEM.KOMP-CA.
package devstack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/proxy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/forward"
	"github.com/timstack/timstack/proxy/sso"
)

// Config describes the stack.
type Config struct {
	// Dir keeps state across restarts: PKI, databases, generated configs, logs.
	Dir string
	// Host is the loopback address every service binds to (default 127.0.0.1).
	Host string
	// Ports of the central services; 0 picks a free port.
	IDPPort, DirectoryPort, RegistrationPort int
	// Variant of the registration service: pro (default) or epa.
	Variant string
	// Nodes are the homeservers, each behind its own proxy.
	Nodes []NodeConfig
	// Organizations are seeded into the directory.
	Organizations []Organization
	// Log receives the services' logs (nil: discarded); decision logs go to Dir/<node>/decisions.log.
	Log *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// reservedPorts are ports the caller took already (its homeservers); free ports avoid them.
	reservedPorts map[int]bool
}

// NodeConfig is one homeserver.
type NodeConfig struct {
	// ServerName is the homeserver's Matrix server name.
	ServerName string `yaml:"server_name"`
	// HomeserverURL is where the proxy reaches the homeserver's client and federation resources.
	HomeserverURL string `yaml:"homeserver_url"`
	// Variant is the proxy's rule set (pro, epa).
	Variant string `yaml:"variant"`
	// Ports of the proxy's listeners; 0 picks a free port.
	ClientPort     int `yaml:"client_port"`
	FederationPort int `yaml:"federation_port"`
	ForwardPort    int `yaml:"forward_port"`
	InternalPort   int `yaml:"internal_port"`
	// Users map smartcards to accounts on this homeserver (the proxy's smartcard login).
	Users []sso.MappedUser `yaml:"users"`
	// Configure adjusts the proxy configuration last (tests).
	Configure func(*proxy.Config) `yaml:"-"`
}

// Node is one homeserver's proxy and what the homeserver needs from it.
type Node struct {
	Spec       NodeConfig
	Cfg        *proxy.Config
	Proxy      *proxy.Proxy
	ClientURL  string // the proxy's client listener: what Matrix clients use
	Internal   string
	Dir        string
	Homeserver HomeserverSettings
	cancel     context.CancelFunc
	done       chan error
	mu         sync.Mutex
}

// HomeserverSettings are what the homeserver must be configured with (Synapse keys in comments).
type HomeserverSettings struct {
	AppServiceFile   string // app_service_config_files
	FederationCAFile string // federation_custom_ca_list
	HTTPSProxy       string // https_proxy environment variable of the process
	PublicBaseURL    string // public_baseurl: clients come in through the proxy
}

// Stack is a prepared (and, after Start, running) stack.
type Stack struct {
	cfg   Config
	pki   *devPKI
	log   *slog.Logger
	now   func() time.Time
	Nodes []*Node
	// URLs of the central services.
	IDPURL, DirectoryURL, RegistrationURL string

	central  *central
	servers  []*http.Server
	resolver map[string]string
	ports    map[int]bool
}

// Prepare creates (or reloads) the PKI, picks ports and writes every node's proxy configuration and the
// homeserver artifacts.
func Prepare(cfg Config) (*Stack, error) {
	if cfg.Dir == "" {
		return nil, errors.New("devstack: Dir is required")
	}
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("devstack: at least one node is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Variant == "" {
		cfg.Variant = "pro"
	}
	s := &Stack{cfg: cfg, log: cfg.Log, now: cfg.Now, resolver: map[string]string{}, ports: map[int]bool{}}
	for p := range cfg.reservedPorts {
		s.ports[p] = true
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.pki, err = loadOrCreatePKI(filepath.Join(cfg.Dir, "pki"), s.now()); err != nil {
		return nil, fmt.Errorf("devstack: pki: %w", err)
	}
	host := cfg.Host
	for _, p := range []*int{&s.cfg.IDPPort, &s.cfg.DirectoryPort, &s.cfg.RegistrationPort} {
		if *p == 0 {
			if *p, err = freePort(host, s.ports); err != nil {
				return nil, err
			}
		}
	}
	s.IDPURL = "http://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.IDPPort))
	s.DirectoryURL = "http://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.DirectoryPort))
	s.RegistrationURL = "http://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.RegistrationPort))

	// Ports first: every proxy must know every other proxy's federation address (resolver map).
	for i := range s.cfg.Nodes {
		n := &s.cfg.Nodes[i]
		for _, p := range []*int{&n.ClientPort, &n.FederationPort, &n.ForwardPort, &n.InternalPort} {
			if *p == 0 {
				if *p, err = freePort(host, s.ports); err != nil {
					return nil, err
				}
			}
		}
		fed := net.JoinHostPort(host, strconv.Itoa(n.FederationPort))
		s.resolver[n.ServerName+":443"], s.resolver[n.ServerName+":8448"] = fed, fed
	}
	for _, spec := range s.cfg.Nodes {
		nd, err := s.prepareNode(spec)
		if err != nil {
			return nil, fmt.Errorf("devstack: %s: %w", spec.ServerName, err)
		}
		s.Nodes = append(s.Nodes, nd)
	}
	return s, nil
}

func (s *Stack) prepareNode(spec NodeConfig) (*Node, error) {
	host := s.cfg.Host
	dir := filepath.Join(s.cfg.Dir, spec.ServerName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	nd := &Node{Spec: spec, Dir: dir}
	addr := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	nd.ClientURL = "http://" + addr(spec.ClientPort)
	nd.Internal = "http://" + addr(spec.InternalPort)

	// Federation TLS certificate from the dev TLS CA (reissued each start: cheap, and names may change).
	cert, key, err := s.pki.tls.Issue(certs.IssueRequest{Profile: certs.IssueProfileTLSServer, CommonName: spec.ServerName, DNSNames: []string{spec.ServerName}})
	if err != nil {
		return nil, err
	}
	if err := certs.WriteCertAndKey(filepath.Join(dir, "tls"), cert, key); err != nil {
		return nil, err
	}
	// Proxy CA and appservice registration persist: the homeserver was configured with them.
	caFile, caKey := filepath.Join(dir, "proxy-ca.pem"), filepath.Join(dir, "proxy-ca.key")
	if _, err := os.Stat(caFile); err != nil {
		caPEM, keyPEM, err := forward.GenerateCA("timstack dev proxy CA "+spec.ServerName, 365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(caKey, keyPEM, 0o600); err != nil {
			return nil, err
		}
	}
	regFile := filepath.Join(dir, "appservice.yaml")
	if reg, err := appservice.LoadRegistration(regFile); err != nil || reg.URL != nd.Internal {
		reg, err := appservice.NewRegistration(spec.ServerName, nd.Internal)
		if err != nil {
			return nil, err
		}
		y, err := reg.YAML()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(regFile, y, 0o600); err != nil {
			return nil, err
		}
	}
	variant := spec.Variant
	if variant == "" {
		variant = "pro"
	}
	cfg := &proxy.Config{
		ServerName: spec.ServerName,
		Variant:    variant,
		Listen: proxy.ListenConfig{
			Client:               addr(spec.ClientPort),
			Federation:           addr(spec.FederationPort),
			FederationTLS:        proxy.TLSConfig{CertFile: filepath.Join(dir, "tls", "cert.pem"), KeyFile: filepath.Join(dir, "tls", "key.pem")},
			FederationPublicPort: 8448,
			Forward:              addr(spec.ForwardPort),
			Internal:             addr(spec.InternalPort),
		},
		Homeserver: proxy.HomeserverConfig{URL: spec.HomeserverURL, AppServiceRegistration: regFile},
		Forward:    proxy.ForwardConfig{CACertFile: caFile, CAKeyFile: caKey, RootCAFiles: []string{s.pki.tlsCAFile}},
		Discovery:  proxy.DiscoveryConfig{Resolve: s.resolver},
		FederationList: proxy.FederationListConfig{
			Source: "regservice", URL: s.RegistrationURL + "/backend/federation",
			TrustDir: s.pki.kompTrustDir, OCSP: "off", AllowTestTrust: true,
		},
		// The walkthrough reads the log right after a refusal (LastDenial), so lines go out at once.
		Log: proxy.LogConfig{DecisionLog: filepath.Join(dir, "decisions.log"), DecisionLogSync: true},
	}
	cfg.FederationList.Keeper.CacheDir = filepath.Join(dir, "flist-cache")
	cfg.FederationList.Keeper.RefreshInterval = 30 * time.Second
	if len(spec.Users) > 0 {
		cfg.SSO = sso.Config{
			Enabled: true, PublicURL: nd.ClientURL, AllowedRedirects: []string{"http://" + host + "/", "http://localhost/"},
			DirectLogin: true, PasswordLogin: true,
			Mapping: sso.MappingConfig{Mode: sso.MappingTable, Users: spec.Users},
			IDP:     sso.IDPConfig{Issuer: s.IDPURL, ClientID: "timstack-" + spec.ServerName, TrustDir: s.idpTrustDir(), OCSP: "off"},
		}
	}
	if spec.Configure != nil {
		spec.Configure(cfg)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	nd.Cfg = cfg
	nd.Homeserver = HomeserverSettings{
		AppServiceFile: regFile, FederationCAFile: caFile, HTTPSProxy: "http://" + cfg.Listen.Forward,
		PublicBaseURL: nd.ClientURL + "/",
	}
	return nd, nil
}

// Node returns the node of a server name, or nil.
func (s *Stack) Node(serverName string) *Node {
	for _, n := range s.Nodes {
		if n.Spec.ServerName == serverName {
			return n
		}
	}
	return nil
}

// startProxy starts (or restarts) a node's proxy and waits for /healthz.
func (s *Stack) startProxy(ctx context.Context, nd *Node) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	// The proxy lives until Stop, not as long as the caller's (start-up) context.
	pctx, cancel := context.WithCancel(context.Background())
	p, err := proxy.New(pctx, nd.Cfg, proxy.Deps{Log: s.log.With("node", nd.Spec.ServerName)})
	if err != nil {
		cancel()
		return fmt.Errorf("%s proxy: %w", nd.Spec.ServerName, err)
	}
	nd.Proxy, nd.cancel, nd.done = p, cancel, make(chan error, 1)
	go func() { nd.done <- p.Run(pctx) }()
	return waitHTTP(ctx, nd.Internal+"/healthz", nd.done)
}

// RestartProxy stops a node's proxy and starts a new one from the same configuration.
func (s *Stack) RestartProxy(ctx context.Context, nd *Node) error {
	s.stopProxy(nd)
	return s.startProxy(ctx, nd)
}

func (s *Stack) stopProxy(nd *Node) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cancel == nil {
		return
	}
	nd.cancel()
	select {
	case <-nd.done:
	case <-time.After(30 * time.Second):
		s.log.Warn("proxy did not stop within 30s", "node", nd.Spec.ServerName)
	}
	nd.cancel = nil
}

// waitHTTP polls url until it answers 200, the context ends, or exited reports the server's end.
func waitHTTP(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not come up: %v", url, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%s: server exited: %v", url, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serve runs an http.Server on addr until Stop.
func (s *Stack) serve(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// Stop ends every proxy and service.
func (s *Stack) Stop() {
	for _, nd := range s.Nodes {
		s.stopProxy(nd)
	}
	for _, srv := range s.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
	}
	if s.central != nil {
		s.central.close()
	}
}

// freePort picks a free port below Linux's ephemeral range, so no outgoing connection takes it before the
// service binds it, and never one in used (which it adds the pick to).
func freePort(host string, used map[int]bool) (int, error) {
	var b [2]byte
	for range 500 {
		_, _ = rand.Read(b[:])
		port := 20000 + (int(b[0])<<8|int(b[1]))%12000
		if used[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		used[port] = true
		return port, nil
	}
	return 0, errors.New("devstack: no free port in 20000-32767")
}
