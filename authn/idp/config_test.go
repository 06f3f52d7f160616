package idp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

// productionAnchor is a CA whose name does not say TEST-ONLY, as a PU trust store would hold.
func productionAnchor(t *testing.T) *certs.TrustStore {
	t.Helper()
	key, err := certs.GenerateKey(certs.KeyBrainpoolP256r1)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.CreateCertificate(&certs.CertificateTemplate{
		Subject:   certs.Name{Country: "DE", Organization: "gematik GmbH", CommonName: "GEM.KOMP-CA99"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: certs.KeyUsageCertSign | certs.KeyUsageCRLSign, IsCA: true, MaxPathLen: 0,
	}, key.Public(), nil, key)
	if err != nil {
		t.Fatal(err)
	}
	return certs.NewTrustStore(ca)
}

func TestConfigValidation(t *testing.T) {
	prodTrust := productionAnchor(t)
	if prodTrust.HasTestOnlyAnchor() {
		t.Fatal("production anchor says TEST-ONLY")
	}
	testTrust := gematikTrust(t)
	ocsp := &certs.OCSPChecker{Trust: prodTrust}
	var nilOCSP *certs.OCSPChecker
	prod := func(edit func(*Config)) Config {
		c := Config{Issuer: "https://idp.app.ti-dienste.de", ClientID: "GEMtimstack", RedirectURI: "https://rp.example/cb",
			Trust: prodTrust, Revocation: ocsp, Production: true}
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		words string // "" = accepted
	}{
		{"a production configuration with a PU anchor, https issuer and OCSP is accepted", prod(func(*Config) {}), ""},
		{"a production configuration with TEST-ONLY anchors is refused", prod(func(c *Config) { c.Trust = testTrust }), "TEST-ONLY"},
		{"a production configuration with an http issuer is refused", prod(func(c *Config) { c.Issuer = "http://idp.app.ti-dienste.de" }), "https"},
		{"a production configuration with a loopback issuer is refused", prod(func(c *Config) { c.Issuer = "https://127.0.0.1:8443" }), "loopback"},
		{"a production configuration with a localhost issuer is refused", prod(func(c *Config) { c.Issuer = "https://idp.localhost" }), "loopback"},
		{"a production configuration with an IPv6 loopback issuer is refused", prod(func(c *Config) { c.Issuer = "https://[::1]/" }), "loopback"},
		{"a production configuration without revocation checking is refused", prod(func(c *Config) { c.Revocation = nil }), "revocation"},
		{"a production configuration with a nil OCSP checker is refused", prod(func(c *Config) { c.Revocation = nilOCSP }), "revocation"},
		{"a production configuration with an http redirect_uri is refused", prod(func(c *Config) { c.RedirectURI = "http://rp.example/cb" }), "redirect_uri"},
		{"a production configuration with an http discovery URL is refused", prod(func(c *Config) {
			c.DiscoveryURL = "http://idp.app.ti-dienste.de/.well-known/openid-configuration"
		}), "discovery"},
		{"a configuration without client_id is refused", prod(func(c *Config) { c.ClientID = "" }), "client_id"},
		{"a configuration without trust store is refused", prod(func(c *Config) { c.Trust = nil }), "trust store"},
		{"a scope without openid is refused", prod(func(c *Config) { c.Scope = "ti-messenger" }), "openid"},
		{"an issuer with a query is refused", prod(func(c *Config) { c.Issuer = "https://idp.example/?x=1" }), "query"},
		{"a development configuration with a loopback http issuer, test anchors and no OCSP is accepted", Config{
			Issuer: "http://127.0.0.1:8580", ClientID: "dev", RedirectURI: "http://127.0.0.1:8080/cb", Trust: testTrust,
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp, err := New(tc.cfg)
			if tc.words == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if rp.cfg.Scope != DefaultScope || !strings.HasSuffix(rp.cfg.DiscoveryURL, "/.well-known/openid-configuration") {
					t.Errorf("defaults: scope %q discovery %q", rp.cfg.Scope, rp.cfg.DiscoveryURL)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.words) {
				t.Errorf("got %v, want ErrConfig saying %q", err, tc.words)
			}
		})
	}
	t.Run("every problem of a configuration is named at once", func(t *testing.T) {
		_, err := New(Config{Production: true, Issuer: "http://localhost"})
		for _, w := range []string{"client_id", "redirect_uri", "trust store", "revocation", "https"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v does not name %q", err, w)
			}
		}
	})
}
