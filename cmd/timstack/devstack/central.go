package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/authn/matrixopenid"
	"github.com/timstack/timstack/authn/registration"
	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/cmd/timstack/wiring"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
)

// RegServiceClientID is the registration service's client at the directory's provider API.
const RegServiceClientID = "timstack-regservice"

// central holds the services every node shares.
type central struct {
	IDP       *devidp.IDP
	CardOCSP  *devidp.TestOCSP
	idpTrust  *certs.TrustStore // the dev IDP's signer CAs, for the stack's relying parties
	dirStore  store.Store
	Directory *directory.Server
	regStore  *registration.SQLiteStore
	Registry  *registration.Service
	cancel    context.CancelFunc
}

func (c *central) close() {
	if c.cancel != nil {
		c.cancel()
	}
	if c.regStore != nil {
		_ = c.regStore.Close()
	}
	if c.dirStore != nil {
		_ = c.dirStore.Close()
	}
}

// Start brings up the dev IDP, the directory, the registration service and every proxy. The homeservers
// must run already (or come up soon: the proxies do not need them to start).
func (s *Stack) Start(ctx context.Context) error {
	c := &central{}
	s.central = c
	cctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if err := s.startIDP(c); err != nil {
		return fmt.Errorf("devstack: dev IDP: %w", err)
	}
	if err := s.writeIDPTrust(c); err != nil {
		return fmt.Errorf("devstack: IDP trust: %w", err)
	}
	if err := s.startDirectory(ctx, c); err != nil {
		return fmt.Errorf("devstack: directory: %w", err)
	}
	if err := s.startRegistration(ctx, cctx, c); err != nil {
		return fmt.Errorf("devstack: registration service: %w", err)
	}
	for _, nd := range s.Nodes {
		if err := s.startProxy(ctx, nd); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
	}
	return nil
}

// IDP returns the running dev IDP's test OCSP responder for cards (revoke a card in a test or demo).
func (s *Stack) CardOCSP() *devidp.TestOCSP { return s.central.CardOCSP }

// Directory is the running directory server.
func (s *Stack) Directory() *directory.Server { return s.central.Directory }

// Registration is the running registration service.
func (s *Stack) Registration() *registration.Service { return s.central.Registry }

func (s *Stack) startIDP(c *central) error {
	keys, err := devidp.EmbeddedTestKeys()
	if err != nil {
		return err
	}
	trust, err := devidp.EmbeddedTestTrust()
	if err != nil {
		return err
	}
	if c.CardOCSP, err = devidp.NewTestOCSP(trust, s.now); err != nil {
		return err
	}
	if c.IDP, err = devidp.New(devidp.Config{
		Issuer: s.IDPURL, Keys: keys, CardTrust: trust, Revocation: c.CardOCSP, Now: s.now,
		Logger: s.log.With("service", "dev-idp"),
	}); err != nil {
		return err
	}
	return s.serve(strings.TrimPrefix(s.IDPURL, "http://"), c.IDP.Handler())
}

// idpTrustDir holds the CAs the dev IDP's signer certificates chain to (GEM.KOMP-CA… TEST-ONLY).
func (s *Stack) idpTrustDir() string { return filepath.Join(s.cfg.Dir, "pki", "trust-idp") }

// writeIDPTrust writes the KOMP-CAs among the embedded test CAs to idpTrustDir (for the proxies' and the
// registration service's configuration) and keeps them as the stack's in-process IDP trust.
func (s *Stack) writeIDPTrust(c *central) error {
	cas, err := devidp.EmbeddedTestCAs()
	if err != nil {
		return err
	}
	dir := s.idpTrustDir()
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var komp []*certs.Certificate
	for _, ca := range cas {
		if strings.Contains(ca.Subject.CommonName, "KOMP-CA") {
			komp = append(komp, ca)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("komp-%d.pem", len(komp))), ca.EncodePEM(), 0o644); err != nil {
				return err
			}
		}
	}
	if len(komp) == 0 {
		return errors.New("no GEM.KOMP-CA among the embedded test CAs")
	}
	c.idpTrust = certs.NewTrustStore(komp...)
	return nil
}

// relyingParty is an IDP-Dienst client of the dev IDP for one of the stack's services.
func (s *Stack) relyingParty(c *central, service, clientID, redirectURI string) (*idp.RelyingParty, error) {
	return idp.New(idp.Config{
		Issuer: s.IDPURL, ClientID: clientID, RedirectURI: redirectURI, Trust: c.idpTrust,
		HTTPClient: &http.Client{Timeout: 15 * time.Second}, Now: s.now,
		Logger: s.log.With("service", service, "component", "idp"),
	})
}

func (s *Stack) startDirectory(ctx context.Context, c *central) error {
	var err error
	if c.dirStore, err = store.Open(ctx, "sqlite:"+filepath.Join(s.cfg.Dir, "directory.db")); err != nil {
		return err
	}
	// The validator's federation gate asks the directory's own list (set once the server exists; requests
	// arrive only after serve below).
	var fed *directory.Federation
	openid, err := matrixopenid.NewValidator(matrixopenid.Config{
		Federated: func(server string) bool { return fed != nil && fed.Federated(server) },
		Resolve:   s.resolveFederation, HTTPClient: s.federationClient(), Now: s.now,
	})
	if err != nil {
		return err
	}
	rp, err := s.relyingParty(c, "directory", "timstack-directory", s.DirectoryURL+"/signin-gematik-idp-dienst")
	if err != nil {
		return err
	}
	if c.Directory, err = directory.New(ctx, directory.Config{BaseURL: s.DirectoryURL}, directory.Deps{
		Store: c.dirStore, NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		ListSigners: []directory.ListSigner{{Alg: certs.AlgBP256R1, Signer: s.pki.listKey, Chain: []*certs.Certificate{s.pki.listSigner}}},
		OpenID:      wiring.DirectoryOpenID(openid),
		// RegService-OpenID-Tokens are signed under the dev component CA (C.FD.SIG, role oid_tim).
		RegServiceTrust: certs.NewTrustStore(s.pki.komp.Cert),
		OwnerLogin:      wiring.DirectoryOwnerLogin(rp),
		Log:             s.log.With("service", "directory"), Now: s.now, Version: "devstack",
	}); err != nil {
		return err
	}
	fed = c.Directory.Federation()
	secret, err := directory.KVClients{KV: c.dirStore}.Register(ctx, RegServiceClientID)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.cfg.Dir, "regservice-client-secret"), []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	if err := s.seedDirectory(ctx, c); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return s.serve(strings.TrimPrefix(s.DirectoryURL, "http://"), c.Directory.Handler())
}

func (s *Stack) startRegistration(ctx, runCtx context.Context, c *central) error {
	cfg := registration.Config{
		Listen: strings.TrimPrefix(s.RegistrationURL, "http://"), PublicURL: s.RegistrationURL, Variant: s.cfg.Variant,
		Database: filepath.Join(s.cfg.Dir, "registration.db"),
		Directory: registration.DirectoryConfig{URL: s.DirectoryURL, ClientID: RegServiceClientID,
			ClientSecretFile: filepath.Join(s.cfg.Dir, "regservice-client-secret")},
		FederationList: registration.FederationListConfig{TrustDir: s.pki.kompTrustDir, Interval: 30 * time.Second, RetryInterval: 5 * time.Second},
		Signer: registration.SignerConfig{CertFile: filepath.Join(s.cfg.Dir, "pki", "regservice-signer", "cert.pem"),
			KeyFile: filepath.Join(s.cfg.Dir, "pki", "regservice-signer", "key.pem")},
		IDP: registration.IDPConfig{Issuer: s.IDPURL, ClientID: "timstack-regservice",
			RedirectURI: s.RegistrationURL + "/registration/v1/callback", TrustDir: s.idpTrustDir()},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	var err error
	if c.regStore, err = registration.OpenSQLite(ctx, cfg.Database); err != nil {
		return err
	}
	rp, err := s.relyingParty(c, "registration", cfg.IDP.ClientID, cfg.IDP.RedirectURI)
	if err != nil {
		return err
	}
	secret, err := os.ReadFile(cfg.Directory.ClientSecretFile)
	if err != nil {
		return err
	}
	dirClient := &registration.DirectoryClient{BaseURL: s.DirectoryURL, ClientID: RegServiceClientID,
		ClientSecret: strings.TrimSpace(string(secret)), Now: s.now}
	listTrust := certs.NewTrustStore(s.pki.komp.Cert)
	// The validator's federation gate is the registration service's own verified list.
	var svc *registration.Service
	openid, err := matrixopenid.NewValidator(matrixopenid.Config{
		Federated: func(server string) bool { return svc != nil && svc.Federated(server) },
		Resolve:   s.resolveFederation, HTTPClient: s.federationClient(), Now: s.now,
	})
	if err != nil {
		return err
	}
	svc, err = registration.New(cfg, registration.Deps{
		Store: c.regStore, IDP: rp, Directory: dirClient, Lists: dirClient, OpenID: openid,
		ListTrust: listTrust, Signer: s.pki.regKey, SignerChain: []*certs.Certificate{s.pki.regSigner, s.pki.komp.Cert},
		Log: s.log.With("service", "registration"), Now: s.now,
	})
	if err != nil {
		return err
	}
	c.Registry = svc
	go svc.Run(runCtx)
	return s.serve(cfg.Listen, svc.Handler())
}

// resolveFederation maps a server name of the stack to its proxy's federation listener; the TLS name stays
// the server name (federationClient dials the mapped address).
func (s *Stack) resolveFederation(_ context.Context, server string) (string, error) {
	if _, ok := s.resolver[server+":8448"]; !ok {
		return "", fmt.Errorf("%s is not a server of this stack", server)
	}
	return "https://" + server + ":8448", nil
}

// federationClient reaches the proxies' federation listeners: server names resolve through the stack's
// map, certificates verify against the dev TLS CA.
func (s *Stack) federationClient() *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(mustX509(s.pki.tls.Cert.Raw))
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if mapped, ok := s.resolver[addr]; ok {
				addr = mapped
			}
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func mustX509(der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("dev TLS CA is not a P-256 certificate: %v", err))
	}
	return c
}
