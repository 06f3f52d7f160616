package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/authn/matrixopenid"
	"github.com/timstack/timstack/authn/registration"
	"github.com/timstack/timstack/authn/registration/pgstore"
	"github.com/timstack/timstack/certs"
)

const registrationUsage = `usage:
  timstack registration --config FILE [--check-config]
  timstack registration dev-signer --out DIR    (TEST-ONLY RegService signer under a fresh test CA)`

// runRegistration implements `timstack registration`: the TI-M registration service.
func runRegistration(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "dev-signer":
			return runRegistrationDevSigner(args[1:], stdout, stderr)
		case "-h", "--help", "help":
			fmt.Fprintln(stdout, registrationUsage)
			return nil
		}
	}
	fs := newFlagSet("registration", stderr)
	configFile := fs.String("config", os.Getenv("TIMSTACK_CONFIG"), "configuration file (YAML); env TIMSTACK_CONFIG")
	check := fs.Bool("check-config", false, "validate the configuration and the files it names, then exit")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *configFile == "" {
		return usageError("registration: --config FILE is required\n%s", registrationUsage)
	}
	cfg, err := registration.LoadConfig(*configFile)
	if err != nil {
		return failure("%v", err)
	}
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rs, err := buildRegistration(ctx, cfg, log)
	if err != nil {
		return failure("registration: %v", err)
	}
	defer rs.store.Close()
	if *check {
		fmt.Fprintln(stdout, "configuration valid")
		return nil
	}
	srv := &http.Server{Addr: cfg.Listen, Handler: rs.svc.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	jobs := make(chan struct{})
	go func() { rs.svc.Run(ctx); close(jobs) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("registration service listening", "addr", cfg.Listen, "variant", cfg.Variant)
	select {
	case err := <-errc:
		stop()
		<-jobs
		return failure("registration: %v", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	<-jobs
	return nil
}

type registrationRuntime struct {
	svc   *registration.Service
	store registration.Store
}

// buildRegistration reads every file the configuration names and wires the service.
func buildRegistration(ctx context.Context, cfg *registration.Config, log *slog.Logger) (*registrationRuntime, error) {
	secret, err := os.ReadFile(cfg.Directory.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("directory.client_secret_file: %w", err)
	}
	listTrust, err := certs.LoadTrustStoreDir(cfg.FederationList.TrustDir)
	if err != nil {
		return nil, fmt.Errorf("federation_list.trust_dir: %w", err)
	}
	idpTrust, err := certs.LoadTrustStoreDir(cfg.IDP.TrustDir)
	if err != nil {
		return nil, fmt.Errorf("idp.trust_dir: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.Signer.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("signer.key_file: %w", err)
	}
	key, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("signer.key_file: %w", err)
	}
	chainPEM, err := os.ReadFile(cfg.Signer.CertFile)
	if err != nil {
		return nil, fmt.Errorf("signer.cert_file: %w", err)
	}
	chain, err := certs.ParseCertificatesPEM(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("signer.cert_file: %w", err)
	}
	var proxyTokens []string
	if cfg.FederationList.ProxyTokensFile != "" {
		data, err := os.ReadFile(cfg.FederationList.ProxyTokensFile)
		if err != nil {
			return nil, fmt.Errorf("federation_list.proxy_tokens_file: %w", err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				proxyTokens = append(proxyTokens, l)
			}
		}
		if len(proxyTokens) == 0 {
			return nil, errors.New("federation_list.proxy_tokens_file: no token in the file")
		}
	}
	var listRevocation, idpRevocation certs.RevocationChecker
	if cfg.IDP.Production {
		listRevocation = &certs.OCSPChecker{Trust: listTrust, Policy: certs.OCSPRequire, Timeout: certs.OCSPDefaultTimeout}
		idpRevocation = &certs.OCSPChecker{Trust: idpTrust, Policy: certs.OCSPRequire, Timeout: certs.OCSPDefaultTimeout, MaxCacheTTL: time.Hour}
	} else {
		log.Warn("not production: federation list and IDP signers are not checked for revocation (OCSP)")
	}
	rp, err := idp.New(idp.Config{Issuer: cfg.IDP.Issuer, DiscoveryURL: cfg.IDP.DiscoveryURL, ClientID: cfg.IDP.ClientID,
		RedirectURI: cfg.IDP.RedirectURI, Trust: idpTrust, Revocation: idpRevocation, Production: cfg.IDP.Production, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	var st registration.Store
	if strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://") {
		st, err = pgstore.Open(ctx, cfg.Database)
	} else {
		st, err = registration.OpenSQLite(ctx, cfg.Database)
	}
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	dir := &registration.DirectoryClient{BaseURL: cfg.Directory.URL, TokenURL: cfg.Directory.TokenURL, ClientID: cfg.Directory.ClientID,
		ClientSecret: strings.TrimSpace(string(secret)), HTTP: &http.Client{Timeout: cfg.Directory.Timeout}}
	// The validator's federation gate is the service's verified list, which exists only once the service
	// does: the closure reads svc when called, never before New returns.
	var svc *registration.Service
	openid, err := matrixopenid.NewValidator(matrixopenid.Config{
		Federated: func(serverName string) bool { return svc != nil && svc.Federated(serverName) },
		Logger:    log,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("matrix openid: %w", err)
	}
	svc, err = registration.New(*cfg, registration.Deps{
		Store: st, IDP: rp, Directory: dir, Lists: dir, OpenID: openid,
		ListTrust: listTrust, ListRevocation: listRevocation, Signer: key, SignerChain: chain,
		ProxyTokens: proxyTokens, Log: log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &registrationRuntime{svc: svc, store: st}, nil
}

// runRegistrationDevSigner writes a TEST-ONLY RegService signer: ca/cert.pem (a fresh test CA, to put into
// the directory's RegService trust) and signer/cert.pem (C.FD.SIG with role oid_tim, then the CA) with
// signer/key.pem. Never for production: the CA's key is thrown away and every name says TEST-ONLY.
func runRegistrationDevSigner(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("registration dev-signer", stderr)
	out := fs.String("out", "", "output directory")
	days := fs.Int("days", 365, "validity in days")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *out == "" || *days <= 0 {
		return usageError("registration dev-signer: --out DIR is required\n%s", registrationUsage)
	}
	now := time.Now()
	ca, err := certs.NewTestCA("timstack RegService signer CA", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(time.Duration(*days)*24*time.Hour))
	if err != nil {
		return failure("registration dev-signer: %v", err)
	}
	cert, key, err := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFDSigTIM, CommonName: "timstack RegService"})
	if err != nil {
		return failure("registration dev-signer: %v", err)
	}
	if err := certs.WriteCertAndKey(filepath.Join(*out, "ca"), ca.Cert, nil); err != nil {
		return failure("registration dev-signer: %v", err)
	}
	if err := certs.WriteCertAndKey(filepath.Join(*out, "signer"), cert, key); err != nil {
		return failure("registration dev-signer: %v", err)
	}
	// x5c carries the CA too, as the reference registration service does.
	chain := append(cert.EncodePEM(), ca.Cert.EncodePEM()...)
	if err := os.WriteFile(filepath.Join(*out, "signer", "cert.pem"), chain, 0o644); err != nil {
		return failure("registration dev-signer: %v", err)
	}
	fmt.Fprintf(stdout, "TEST-ONLY RegService signer written to %s (signer/cert.pem, signer/key.pem; trust ca/cert.pem at the directory)\n", *out)
	return nil
}
