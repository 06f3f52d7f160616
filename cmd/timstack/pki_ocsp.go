package main

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/timstack/timstack/certs"
)

// runPKIOCSPResponder implements `timstack pki ocsp-responder`: a test OCSP responder for the dev stack,
// signing with a test-CA OCSP signer. Serials are answered good, revoked or unknown as configured.
func runPKIOCSPResponder(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pki ocsp-responder", stderr)
	listen := fs.String("listen", "127.0.0.1:8889", "listen address (loopback)")
	signerDir := fs.String("signer", "", "directory with the OCSP signer's cert.pem and key.pem (pki issue --profile ocsp-signer)")
	var issuers, good, revoked stringList
	fs.Var(&issuers, "issuer", "certificate file of a CA whose certificates this responder answers for (repeatable)")
	fs.Var(&good, "good", "serial number (decimal or 0x-hex) to answer good (repeatable)")
	fs.Var(&revoked, "revoked", "serial number (decimal or 0x-hex) to answer revoked (repeatable)")
	defaultGood := fs.Bool("default-good", false, "answer good for serials not listed (otherwise unknown)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *signerDir == "" || len(issuers) == 0 {
		return usageError("usage: timstack pki ocsp-responder --signer DIR --issuer CA.pem [--issuer …] [--good SERIAL] [--revoked SERIAL] [--default-good] [--listen ADDR]")
	}
	signer, err := loadKeyPair(*signerDir)
	if err != nil {
		return failure("pki ocsp-responder: %v", err)
	}
	r := &certs.OCSPResponder{Signer: signer.Key, SignerCert: signer.Cert, DefaultGood: *defaultGood}
	for _, f := range issuers {
		data, err := os.ReadFile(f)
		if err != nil {
			return usageError("pki ocsp-responder: %v", err)
		}
		c, err := certs.ParseCertificatePEMOrDER(data)
		if err != nil {
			return failure("pki ocsp-responder: %s: %v", f, err)
		}
		r.Issuers = append(r.Issuers, c)
	}
	for _, set := range []struct {
		serials stringList
		entry   certs.OCSPStatusEntry
	}{
		{good, certs.OCSPStatusEntry{Status: certs.OCSPGood}},
		{revoked, certs.OCSPStatusEntry{Status: certs.OCSPRevoked, RevokedAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}},
	} {
		for _, s := range set.serials {
			n, ok := parseSerial(s)
			if !ok {
				return usageError("pki ocsp-responder: bad serial %q", s)
			}
			r.SetStatus(n, set.entry)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return failure("pki ocsp-responder: %v", err)
	}
	fmt.Fprintf(stdout, "test OCSP responder (TEST-ONLY signer %q) listening on http://%s/\n", signer.Cert.Subject.String(), ln.Addr())
	return serveUntilSignal(&http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}, ln)
}

// loadKeyPair loads cert.pem + key.pem as a key pair; the OCSP signer is not a CA, so LoadTestCA's CA
// checks do not apply.
func loadKeyPair(dir string) (*certs.TestCA, error) {
	certPEM, keyPEM, err := readKeyPair(dir)
	if err != nil {
		return nil, err
	}
	c, err := certs.ParseCertificatePEMOrDER(certPEM)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(c.Subject.String(), "TEST-ONLY") {
		return nil, errors.New("refusing a signer whose name does not say TEST-ONLY")
	}
	k, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := matchKey(c, k); err != nil {
		return nil, err
	}
	return &certs.TestCA{Cert: c, Key: k}, nil
}

func matchKey(c *certs.Certificate, k crypto.Signer) error {
	pub, err := certs.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return err
	}
	if !bytes.Equal(pub, c.RawSubjectPublicKeyInfo) {
		return errors.New("key.pem does not belong to cert.pem")
	}
	return nil
}

func parseSerial(s string) (*big.Int, bool) {
	n := new(big.Int)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return n.SetString(s[2:], 16)
	}
	return n.SetString(s, 10)
}

// serveUntilSignal serves until SIGINT/SIGTERM, then shuts down gracefully.
func serveUntilSignal(srv *http.Server, ln net.Listener) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
