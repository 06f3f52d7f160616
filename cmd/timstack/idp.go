package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/timstack/timstack/authn/devidp"
	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/certs"
)

const idpUsage = `usage:
  timstack idp serve [--listen 127.0.0.1:8580] [--issuer URL] [--keys DIR] [--trust DIR] [--revoke CERT.pem …] [--dev-identities=false]
  timstack idp login --issuer URL --card DIR [--client-id ID] [--redirect URL] [--card-type HBA|SMC-B] [--trust DIR]`

// runIDP implements `timstack idp`: the development IDP-Dienst with gematik's published TEST-ONLY keys,
// and a headless card login against it.
func runIDP(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("%s", idpUsage)
	}
	switch args[0] {
	case "serve":
		return runIDPServe(args[1:], stdout, stderr)
	case "login":
		return runIDPLogin(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, idpUsage)
		return nil
	}
	return usageError("idp: unknown subcommand %q\n%s", args[0], idpUsage)
}

// idpServeOptions are the settings of `idp serve`.
type idpServeOptions struct {
	listen, issuer, keysDir, trustDir string
	revoke                            []string
	// noDevIdentities turns off the convenience login GET /auth?…&dev_identity=NAME.
	noDevIdentities bool
}

// devIDPServer is a dev IDP bound to its listener, ready to serve.
type devIDPServer struct {
	ln     net.Listener
	srv    *http.Server
	issuer string
}

// newDevIDPServer checks the options, binds the loopback listener and builds the IDP with an in-process
// test OCSP responder for the cards (good unless --revoke names the card).
func newDevIDPServer(o idpServeOptions, log *slog.Logger) (*devIDPServer, error) {
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, usageError("idp serve: --listen %q: %v", o.listen, err)
	}
	if !devidp.IsLoopbackHost(host) {
		return nil, usageError("idp serve: --listen %q: the development IDP binds loopback addresses only", o.listen)
	}
	keys, err := devidp.EmbeddedTestKeys()
	if o.keysDir != "" {
		keys, err = devidp.LoadKeys(o.keysDir)
	}
	if err != nil {
		return nil, failure("idp serve: %v", err)
	}
	trust, err := idpTrust(o.trustDir)
	if err != nil {
		return nil, failure("idp serve: %v", err)
	}
	ocsp, err := devidp.NewTestOCSP(trust, nil)
	if err != nil {
		return nil, failure("idp serve: %v", err)
	}
	for _, f := range o.revoke {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, usageError("idp serve: %v", err)
		}
		c, err := certs.ParseCertificatePEMOrDER(data)
		if err != nil {
			return nil, failure("idp serve: %s: %v", f, err)
		}
		ocsp.Revoke(c)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, failure("idp serve: %v", err)
	}
	issuer := o.issuer
	if issuer == "" {
		issuer = "http://" + ln.Addr().String()
	}
	var devCards map[string]*devidp.Card
	if !o.noDevIdentities {
		if devCards, err = devidp.EmbeddedTestCards(); err != nil {
			ln.Close()
			return nil, failure("idp serve: %v", err)
		}
	}
	d, err := devidp.New(devidp.Config{Issuer: issuer, Keys: keys, CardTrust: trust, Revocation: ocsp, Logger: log, DevIdentities: devCards})
	if err != nil {
		ln.Close()
		return nil, failure("idp serve: %v", err)
	}
	return &devIDPServer{ln: ln, issuer: d.Issuer(),
		srv: &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}}, nil
}

// idpTrust is the embedded gematik TEST-ONLY CAs plus the PEM certificates of dir, if given.
func idpTrust(dir string) (*certs.TrustStore, error) {
	trust, err := devidp.EmbeddedTestTrust()
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if err := trust.LoadPEMDir(dir); err != nil {
			return nil, err
		}
	}
	return trust, nil
}

func runIDPServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("idp serve", stderr)
	var o idpServeOptions
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8580", "listen address (loopback only)")
	fs.StringVar(&o.issuer, "issuer", "", "issuer URL (default http://LISTEN; must be loopback)")
	fs.StringVar(&o.keysDir, "keys", "", "directory with disc_sig/, idp_sig/, idp_enc/ (cert.pem, key.pem; TEST-ONLY); default: the embedded gematik test keys")
	fs.StringVar(&o.trustDir, "trust", "", "directory of extra CA certificates cards may chain to (the gematik test CAs are built in)")
	devIdentities := fs.Bool("dev-identities", true, "allow GET /auth?…&dev_identity=hba-arzt|smcb-praxis|smcb-apotheke|smcb-krankenhaus to log in without an Authenticator")
	var revoke stringList
	fs.Var(&revoke, "revoke", "card certificate file the built-in OCSP responder answers revoked for (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 {
		return usageError("%s", idpUsage)
	}
	o.revoke, o.noDevIdentities = revoke, !*devIdentities
	s, err := newDevIDPServer(o, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "development IDP (gematik TEST-ONLY keys) listening on %s, issuer %s\n", s.ln.Addr(), s.issuer)
	return serveUntilSignal(s.srv, s.ln)
}

// idpLoginOutput is what `idp login` prints.
type idpLoginOutput struct {
	IDToken string          `json:"id_token"`
	Claims  json.RawMessage `json:"claims"`
}

func runIDPLogin(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("idp login", stderr)
	issuer := fs.String("issuer", "", "IDP issuer URL (e.g. http://127.0.0.1:8580)")
	cardDir := fs.String("card", "", "card directory with cert.pem and key.pem (testdata/gematik/pki/cards/…)")
	clientID := fs.String("client-id", "timstack-cli", "client_id the ID token is issued to")
	redirect := fs.String("redirect", "http://127.0.0.1/idp-callback", "redirect_uri of the client")
	cardType := fs.String("card-type", "", "cardType sent to the IDP (HBA or SMC-B)")
	trustDir := fs.String("trust", "", "directory of extra CA certificates the IDP signers may chain to (the gematik test CAs are built in)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *issuer == "" || *cardDir == "" {
		return usageError("%s", idpUsage)
	}
	card, err := devidp.LoadCard(*cardDir)
	if err != nil {
		return usageError("idp login: %v", err)
	}
	trust, err := idpTrust(*trustDir)
	if err != nil {
		return failure("idp login: %v", err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	// The RP of package authn/idp verifies what the headless client got: discovery and signer chains,
	// token signature, claims, nonce. It is the check a registration service runs on a presented token.
	rp, err := idp.New(idp.Config{Issuer: *issuer, ClientID: *clientID, RedirectURI: *redirect, Trust: trust, HTTPClient: hc})
	if err != nil {
		return usageError("idp login: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := devidp.Login(ctx, devidp.LoginOptions{Issuer: *issuer, ClientID: *clientID, RedirectURI: *redirect, CardType: *cardType, HTTPClient: hc}, card)
	if err != nil {
		var re *devidp.RefusalError
		if errors.As(err, &re) {
			return failure("idp login: the IDP refused the card: %s (%s)", re.Description, re.Code)
		}
		return failure("idp login: %v", err)
	}
	if _, err := rp.VerifyIDToken(ctx, res.IDToken, res.Nonce); err != nil {
		return failure("idp login: ID token not accepted: %v", err)
	}
	j, err := certs.ParseCompactJWS(res.IDToken)
	if err != nil {
		return failure("idp login: %v", err)
	}
	out, err := json.MarshalIndent(idpLoginOutput{IDToken: string(res.IDToken), Claims: j.Payload}, "", "  ")
	if err != nil {
		return failure("idp login: %v", err)
	}
	fmt.Fprintln(stdout, string(out))
	return nil
}
