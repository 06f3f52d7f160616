package idp

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

// testKompCA is a trusted stand-in for a further GEM.KOMP-CA: gematik's CA keys are not ours, so certificates
// for rotation and role tests come from here.
func testKompCA(t testing.TB, name string) *certs.TestCA {
	t.Helper()
	ca, err := certs.NewTestCA(name, certs.KeyBrainpoolP256r1, time.Now().Add(-time.Hour), time.Now().Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issueSigner(t testing.TB, ca *certs.TestCA, profile certs.IssueProfile, oids ...string) (*certs.Certificate, crypto.Signer) {
	t.Helper()
	cert, key, err := ca.Issue(certs.IssueRequest{Profile: profile, CommonName: "IDP Sig test", ProfessionOIDs: oids})
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestDiscoveryRefusals(t *testing.T) {
	trustedCA := testKompCA(t, "timstack KOMP-CA1") // in the RP's trust store
	foreignCA := testKompCA(t, "timstack KOMP-CA2") // not in it
	idpDienst, idpDienstKey := issueSigner(t, foreignCA, certs.IssueProfileFDSigTIM, certs.RoleIDPDienst)
	timSigner, timKey := issueSigner(t, trustedCA, certs.IssueProfileFDSigTIM) // C.FD.SIG, but role oid_tim
	smcb, smcbKey := loadIdentity(t, gematikPath("pki", "cards", "80276883110000129077-2-C_SMCB_HCI_AUT_E256"))
	otherKey, err := certs.GenerateKey(certs.KeyBrainpoolP256r1)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		knob  func(f *fakeIDP)
		want  error
		words string
	}{
		{"a discovery document signed by a key other than its x5c is refused",
			func(f *fakeIDP) { f.discSigner = otherKey }, certs.ErrBadSignature, ""},
		{"a discovery signer that does not chain to a KOMP-CA in the trust store is refused",
			func(f *fakeIDP) { f.discSigner, f.discX5C = idpDienstKey, []*certs.Certificate{idpDienst} }, certs.ErrUnknownIssuer, ""},
		{"a trusted C.FD.SIG signer without the IDP-Dienst role is refused",
			func(f *fakeIDP) { f.discSigner, f.discX5C = timKey, []*certs.Certificate{timSigner} }, certs.ErrRole, ""},
		{"a trusted SMC-B card certificate cannot sign the discovery document",
			func(f *fakeIDP) { f.discSigner, f.discX5C = smcbKey, []*certs.Certificate{smcb} }, certs.ErrCertificateType, ""},
		{"a discovery x5c with a second certificate is refused",
			func(f *fakeIDP) { f.discX5C = []*certs.Certificate{f.discCert, f.sigCert} }, ErrDiscovery, "exactly"},
		{"a discovery document with another kid is refused",
			func(f *fakeIDP) { f.discHeader = func(h map[string]any) { h["kid"] = "puk_idp_sig" } }, ErrDiscovery, "kid"},
		{"a discovery document for another issuer is refused",
			func(f *fakeIDP) { f.discPayload = func(b map[string]any) { b["issuer"] = "https://idp.evil.example" } }, ErrDiscovery, "issuer"},
		{"an expired discovery document is refused",
			func(f *fakeIDP) {
				f.discPayload = func(b map[string]any) { b["iat"], b["exp"] = b["iat"].(int64)-90000, b["iat"].(int64)-10 }
			}, ErrDiscovery, "expired"},
		{"a discovery document issued in the future is refused",
			func(f *fakeIDP) { f.discPayload = func(b map[string]any) { b["iat"] = b["iat"].(int64) + 3600 } }, ErrDiscovery, "future"},
		{"a discovery document without BP256R1 ID tokens is refused",
			func(f *fakeIDP) {
				f.discPayload = func(b map[string]any) { b["id_token_signing_alg_values_supported"] = []string{"ES256"} }
			}, ErrDiscovery, "BP256R1"},
		{"a discovery document without PKCE S256 is refused",
			func(f *fakeIDP) {
				f.discPayload = func(b map[string]any) { b["code_challenge_methods_supported"] = []string{"plain"} }
			}, ErrDiscovery, "S256"},
		{"a discovery document served as JSON is refused",
			func(f *fakeIDP) { f.discType = "application/json" }, ErrDiscovery, "content type"},
		{"a puk_idp_sig without x5c is refused",
			func(f *fakeIDP) { f.sigNoX5C = true }, ErrDiscovery, "x5c"},
		{"a puk_idp_sig certified for another role is refused",
			func(f *fakeIDP) { f.sigCert, f.sigKey = timSigner, timKey }, certs.ErrRole, ""},
		{"a discovery document without a token endpoint is refused",
			func(f *fakeIDP) { f.discPayload = func(b map[string]any) { delete(b, "token_endpoint") } }, ErrDiscovery, "token_endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIDP(t, newTestClock(time.Now()))
			rp := newTestRP(t, f, func(c *Config) { c.Trust.AddAnchor(&certs.Anchor{Cert: trustedCA.Cert, Source: "test"}) })
			f.set(tc.knob)
			_, _, err := rp.Begin(context.Background(), BeginOptions{})
			if !errors.Is(err, ErrDiscovery) || !errors.Is(err, tc.want) {
				t.Errorf("got %v, want ErrDiscovery and %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.words) {
				t.Errorf("error %q does not say %q", err, tc.words)
			}
		})
	}
}

func TestDiscoveryFromJWKSURI(t *testing.T) {
	t.Run("keys are taken from jwks_uri when the per-key URIs are absent", func(t *testing.T) {
		f := newFakeIDP(t, newTestClock(time.Now()))
		f.set(func(f *fakeIDP) {
			f.discPayload = func(b map[string]any) { delete(b, "uri_puk_idp_sig"); delete(b, "uri_puk_idp_enc") }
		})
		rp := newTestRP(t, f, nil)
		if _, err := login(t, rp, f); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyRotationAndReloadLimits(t *testing.T) {
	ca := testKompCA(t, "timstack KOMP-CA1")
	clock := newTestClock(time.Now())
	f := newFakeIDP(t, clock)
	rp := newTestRP(t, f, func(c *Config) { c.Trust.AddAnchor(&certs.Anchor{Cert: ca.Cert, Source: "test"}) })
	rotate := func() {
		cert, key := issueSigner(t, ca, certs.IssueProfileFDSigTIM, certs.RoleIDPDienst)
		f.set(func(f *fakeIDP) { f.sigCert, f.sigKey = cert, key })
	}
	forged, err := certs.GenerateKey(certs.KeyBrainpoolP256r1)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name     string
		before   func()
		wantErr  bool
		wantHits int32
	}{
		{"the first login loads discovery once", func() {}, false, 1},
		{"after a key rotation one forced reload picks up the new puk_idp_sig", rotate, false, 2},
		{"a second rotation within five minutes is not reloaded and the login fails", rotate, true, 2},
		{"six minutes later the forced reload is allowed again", func() { clock.Advance(6 * time.Minute) }, false, 3},
		{"a forged token six minutes on costs one reload", func() {
			clock.Advance(6 * time.Minute)
			f.set(func(f *fakeIDP) { f.idSigner = forged })
		}, true, 4},
		{"further forged tokens cause no further reload", func() {}, true, 4},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.before()
			_, err := login(t, rp, f)
			if (err != nil) != s.wantErr {
				t.Errorf("login error %v, want error %t", err, s.wantErr)
			}
			if err != nil && !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("got %v, want ErrTokenInvalid", err)
			}
			if got := f.discoveryHits.Load(); got != s.wantHits {
				t.Errorf("discovery fetched %d times, want %d", got, s.wantHits)
			}
		})
	}
}

func TestDiscoveryIsLoadedOnceForConcurrentLogins(t *testing.T) {
	clock := newTestClock(time.Now())
	f := newFakeIDP(t, clock)
	rp := newTestRP(t, f, nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, _, err := rp.Begin(context.Background(), BeginOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.discoveryHits.Load(); n != 1 {
		t.Errorf("16 concurrent first logins fetched discovery %d times, want 1", n)
	}
	t.Run("discovery is fetched again once its exp has passed", func(t *testing.T) {
		clock.Advance(24*time.Hour + time.Second)
		if _, _, err := rp.Begin(context.Background(), BeginOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := f.discoveryHits.Load(); n != 2 {
			t.Errorf("fetched %d times, want 2", n)
		}
	})
}

// revocationFunc adapts a function to certs.RevocationChecker.
type revocationFunc func(cert *certs.Certificate) error

func (f revocationFunc) CheckRevocation(_ context.Context, cert, _ *certs.Certificate, _ time.Time) error {
	return f(cert)
}

func TestIDPSignerRevocation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		revoked string // CN
	}{
		{"a revoked discovery signer is refused", "IDP Sig 5"},
		{"a revoked puk_idp_sig certificate is refused", "IDP Sig 4"},
		{"with nothing revoked discovery loads and both certificates were checked", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIDP(t, newTestClock(time.Now()))
			var mu sync.Mutex
			asked := map[string]bool{}
			rp := newTestRP(t, f, func(c *Config) {
				c.Revocation = revocationFunc(func(cert *certs.Certificate) error {
					mu.Lock()
					defer mu.Unlock()
					asked[cert.Subject.CommonName] = true
					if cert.Subject.CommonName == tc.revoked {
						return &certs.OCSPRevokedError{RevokedAt: time.Now().Add(-time.Hour), Reason: 1}
					}
					return nil
				})
			})
			_, _, err := rp.Begin(context.Background(), BeginOptions{})
			if tc.revoked != "" {
				if !errors.Is(err, ErrDiscovery) || !errors.Is(err, certs.ErrRevoked) {
					t.Errorf("got %v, want ErrDiscovery and ErrRevoked", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !asked["IDP Sig 5"] || !asked["IDP Sig 4"] {
				t.Errorf("revocation asked for %v, want IDP Sig 5 and IDP Sig 4", asked)
			}
		})
	}
}

func TestKeySetLifetime(t *testing.T) {
	t.Run("the key set is kept no longer than the discovery exp and never beyond 24 h", func(t *testing.T) {
		clock := newTestClock(time.Now())
		f := newFakeIDP(t, clock)
		f.set(func(f *fakeIDP) {
			f.discPayload = func(b map[string]any) { b["exp"] = b["iat"].(int64) + 3*86400 }
		})
		rp := newTestRP(t, f, nil)
		k, err := rp.keys.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := k.validUntil.Sub(clock.Now()); got > maxDiscoveryLife {
			t.Errorf("cached for %s", got)
		}
	})
}
