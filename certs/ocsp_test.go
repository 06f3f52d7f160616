package certs

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ocspFixture is an issuing CA with a delegated OCSP signer and one end-entity certificate.
type ocspFixture struct {
	pki        caTestPKI
	leaf       *Certificate
	signer     crypto.Signer
	signerCert *Certificate
	store      *TrustStore
}

func newOCSPFixture(t testing.TB, alg KeyAlgorithm) *ocspFixture {
	t.Helper()
	f := &ocspFixture{pki: newCATestPKI(t, alg)}
	f.leaf, _ = mustIssue(t, f.pki.inter, IssueRequest{Profile: IssueProfileSMCB, CommonName: "OCSP-Praxis", KeyAlgorithm: alg,
		ProfessionOIDs: []string{"1.2.276.0.76.4.50"}, TelematikID: "1-SMC-B-OCSP", OCSPURL: "http://ocsp.invalid/ocsp"})
	f.signerCert, f.signer = mustIssue(t, f.pki.inter, IssueRequest{Profile: IssueProfileOCSPSigner, KeyAlgorithm: alg})
	f.store = NewTrustStore(f.pki.inter.Cert)
	return f
}

// responder returns a responder for the fixture's CA on the fixed test clock.
func (f *ocspFixture) responder() *OCSPResponder {
	return &OCSPResponder{
		Signer: f.signer, SignerCert: f.signerCert, Issuers: []*Certificate{f.pki.inter.Cert},
		Now: func() time.Time { return caTestClock }, Validity: time.Hour,
	}
}

func (f *ocspFixture) checker(url string, trust *TrustStore) *OCSPChecker {
	return &OCSPChecker{Trust: trust, URLOverride: func(*Certificate, *Certificate) string { return url }}
}

func TestOCSPCheckerThroughTestResponder(t *testing.T) {
	t.Parallel()
	f := newOCSPFixture(t, KeyBrainpoolP256r1)
	other := newOCSPFixture(t, KeyBrainpoolP256r1)
	revokedAt := caTestClock.Add(-48 * time.Hour)

	withStatus := func(st OCSPStatusEntry) func() http.Handler {
		return func() http.Handler {
			r := f.responder()
			r.SetStatus(f.leaf.SerialNumber, st)
			return r
		}
	}
	good := OCSPStatusEntry{Status: OCSPGood}
	tests := []struct {
		name    string
		handler func() http.Handler
		trust   func() *TrustStore
		policy  OCSPPolicy
		down    bool
		wantErr []error // every one must match with errors.Is; nil = passes
	}{
		{name: "a good certificate passes", handler: withStatus(good)},
		{name: "a revoked certificate is refused with ErrRevoked", handler: withStatus(OCSPStatusEntry{Status: OCSPRevoked, RevokedAt: revokedAt, Reason: 1}), wantErr: []error{ErrRevoked}},
		{name: "a serial the responder does not know is refused with ErrRevocationUnknown", handler: func() http.Handler { return f.responder() }, wantErr: []error{ErrRevocationUnknown}},
		{name: "a responder that is down fails closed under require", handler: withStatus(good), down: true, wantErr: []error{ErrRevocationUnknown}},
		{name: "a responder that is down is not asked under off", handler: withStatus(good), down: true, policy: OCSPOff},
		{name: "a revoked certificate passes under off, which is for the offline dev stack only", handler: withStatus(OCSPStatusEntry{Status: OCSPRevoked, RevokedAt: revokedAt}), policy: OCSPOff},
		{
			name: "a response signed by another CA's OCSP signer is refused",
			handler: func() http.Handler {
				r := f.responder()
				r.Signer, r.SignerCert = other.signer, other.signerCert
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
			wantErr: []error{ErrOCSPInvalid},
		},
		{
			name: "a response signed by another CA's OCSP signer passes when the trust store lists it (TSL Certstatus/OCSP)",
			handler: func() http.Handler {
				r := f.responder()
				r.Signer, r.SignerCert = other.signer, other.signerCert
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
			trust: func() *TrustStore {
				s := NewTrustStore(f.pki.inter.Cert)
				s.AddOCSPResponder(other.signerCert)
				return s
			},
		},
		{
			name: "a response signed by the issuing CA itself passes",
			handler: func() http.Handler {
				r := f.responder()
				r.Signer, r.SignerCert = f.pki.inter.Key, f.pki.inter.Cert
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
		},
		{
			name: "a response signed by a sibling certificate without OCSPSigning is refused",
			handler: func() http.Handler {
				c, k, err := f.pki.inter.Issue(IssueRequest{Profile: IssueProfileFDSigTIM})
				if err != nil {
					t.Fatal(err)
				}
				r := f.responder()
				r.Signer, r.SignerCert = k, c
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
			wantErr: []error{ErrOCSPInvalid},
		},
		{
			name: "a responder named by key hash passes",
			handler: func() http.Handler {
				r := f.responder()
				r.ResponderByKey = true
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
		},
		{
			name: "a stale response (nextUpdate long past) is refused",
			handler: func() http.Handler {
				r := f.responder()
				r.Now = func() time.Time { return caTestClock.Add(-2 * time.Hour) }
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
			wantErr: []error{ErrOCSPInvalid},
		},
		{
			name: "a response from the future beyond 37.5 s is refused",
			handler: func() http.Handler {
				r := f.responder()
				r.Now = func() time.Time { return caTestClock.Add(time.Minute) }
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
			wantErr: []error{ErrOCSPInvalid},
		},
		{
			name: "a responder clock 30 s ahead is within the TUC_PKI_006 tolerance",
			handler: func() http.Handler {
				r := f.responder()
				r.Now = func() time.Time { return caTestClock.Add(30 * time.Second) }
				r.SetStatus(f.leaf.SerialNumber, good)
				return r
			},
		},
		{
			name: "a response for another serial (wrong CertID) is refused",
			handler: func() http.Handler {
				r := f.responder()
				r.DefaultGood = true
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					body, _ := io.ReadAll(req.Body)
					parsed, err := ParseOCSPRequest(body)
					if err != nil {
						t.Error(err)
						return
					}
					id := parsed.CertIDs[0]
					id.SerialNumber = new(big.Int).Add(id.SerialNumber, big.NewInt(1))
					der, err := ocspMarshalRequest([]OCSPCertID{id}, nil)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = w.Write(r.Respond(der))
				})
			},
			wantErr: []error{ErrOCSPInvalid},
		},
		{
			name: "a response whose signature was tampered with is refused",
			handler: func() http.Handler {
				r := f.responder()
				r.SetStatus(f.leaf.SerialNumber, good)
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					body, _ := io.ReadAll(req.Body)
					der := r.Respond(body)
					resp, err := ParseOCSPResponse(der)
					if err != nil {
						t.Error(err)
						return
					}
					// Flip a bit inside the signed producedAt.
					i := bytes.Index(der, resp.RawResponseData) + len(resp.RawResponseData) - 40
					der[i] ^= 1
					_, _ = w.Write(der)
				})
			},
			wantErr: []error{ErrOCSPInvalid},
		},
		{
			name: "a responder answering tryLater fails closed",
			handler: func() http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					der, _ := CreateOCSPErrorResponse(OCSPTryLater)
					_, _ = w.Write(der)
				})
			},
			wantErr: []error{ErrOCSPInvalid},
		},
		{
			name: "a responder answering HTTP 500 fails closed",
			handler: func() http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) })
			},
			wantErr: []error{ErrRevocationUnknown},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			h := tc.handler()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				h.ServeHTTP(w, r)
			}))
			if tc.down {
				srv.Close()
			} else {
				defer srv.Close()
			}
			trust := f.store
			if tc.trust != nil {
				trust = tc.trust()
			}
			c := f.checker(srv.URL, trust)
			c.Policy = tc.policy
			err := c.CheckRevocation(context.Background(), f.leaf, f.pki.inter.Cert, caTestClock)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("CheckRevocation: %v", err)
			}
			if tc.wantErr != nil && err == nil {
				t.Fatal("CheckRevocation passed")
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not wrap %v", err, want)
				}
			}
			if tc.policy == OCSPOff && hits.Load() != 0 {
				t.Errorf("policy off sent %d requests", hits.Load())
			}
		})
	}
}

func TestOCSPRevokedErrorCarriesTimeAndReasonThroughVerify(t *testing.T) {
	t.Parallel()
	f := newOCSPFixture(t, KeyP256)
	r := f.responder()
	revokedAt := time.Date(2025, 10, 1, 8, 0, 0, 0, time.UTC)
	r.SetStatus(f.leaf.SerialNumber, OCSPStatusEntry{Status: OCSPRevoked, RevokedAt: revokedAt, Reason: 1})
	srv := httptest.NewServer(r)
	defer srv.Close()

	_, err := f.store.Verify(context.Background(), f.leaf, VerifyOptions{At: caTestClock, Revocation: f.checker(srv.URL, f.store)})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Check != "ocsp" {
		t.Fatalf("error %v is not a ChainError with Check ocsp", err)
	}
	var re *OCSPRevokedError
	if !errors.As(err, &re) || !errors.Is(err, ErrRevoked) {
		t.Fatalf("error %v is not an OCSPRevokedError", err)
	}
	if diff := cmp.Diff(OCSPRevokedError{RevokedAt: revokedAt, Reason: 1}, *re); diff != "" {
		t.Errorf("revocation (-want +got):\n%s", diff)
	}
}

func TestOCSPCheckerCachesUntilNextUpdate(t *testing.T) {
	t.Parallel()
	f := newOCSPFixture(t, KeyP256)
	r := f.responder()
	r.DefaultGood = true
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits.Add(1)
		r.ServeHTTP(w, req)
	}))
	defer srv.Close()
	c := f.checker(srv.URL, f.store)
	for _, step := range []struct {
		at       time.Time
		wantHits int32
	}{
		{caTestClock, 1},
		{caTestClock.Add(10 * time.Minute), 1},   // cached
		{caTestClock.Add(2 * time.Hour), 2},      // past nextUpdate: asked again (and refused as stale)
		{caTestClock.Add(20 * time.Minute), 2},   // first answer still cached for this time
		{caTestClock.Add(-time.Hour), 3},         // before thisUpdate: the cached answer does not apply
		{caTestClock.Add(59 * time.Minute), 3},   // cached
		{caTestClock.Add(61 * time.Minute), 4},   // past nextUpdate
		{caTestClock.Add(30 * time.Second), 4},   // cached
		{caTestClock.Add(-10 * time.Second), 4},  // within tolerance before thisUpdate
		{caTestClock.Add(-100 * time.Second), 5}, // beyond tolerance
	} {
		_ = c.CheckRevocation(context.Background(), f.leaf, f.pki.inter.Cert, step.at)
		if got := hits.Load(); got != step.wantHits {
			t.Errorf("at %s: %d requests, want %d", step.at.Format(time.RFC3339), got, step.wantHits)
		}
	}
}

func TestOCSPResponderAnswersGETAndMalformedRequests(t *testing.T) {
	t.Parallel()
	f := newOCSPFixture(t, KeyP256)
	r := f.responder()
	r.DefaultGood = true
	srv := httptest.NewServer(http.StripPrefix("/ocsp", r))
	defer srv.Close()
	req, err := CreateOCSPRequestWithHash(f.leaf, f.pki.inter.Cert, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *OCSPResponse {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "application/ocsp-response" {
			t.Errorf("content type %q", ct)
		}
		body, _ := io.ReadAll(res.Body)
		resp, err := ParseOCSPResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	b64 := base64.StdEncoding.EncodeToString(req)
	resp := get("/ocsp/" + strings.ReplaceAll(strings.ReplaceAll(b64, "/", "%2F"), "+", "%2B"))
	if err := resp.Verify(f.leaf, f.pki.inter.Cert, f.store, caTestClock); err != nil {
		t.Errorf("GET with a SHA-256 CertID: %v", err)
	}
	if resp.Responses[0].CertID.HashAlgorithm != crypto.SHA256 {
		t.Errorf("CertID hash %v, want the request's SHA-256", resp.Responses[0].CertID.HashAlgorithm)
	}
	if got := get("/ocsp/bm90IGFuIE9DU1AgcmVxdWVzdA==").Status; got != OCSPMalformedRequest {
		t.Errorf("garbage GET: status %v, want malformedRequest", got)
	}
	otherReq, _ := CreateOCSPRequest(f.leaf, f.pki.root.Cert) // issuer this responder does not serve
	if got := get("/ocsp/" + base64.StdEncoding.EncodeToString(otherReq)).Status; got != OCSPUnauthorized {
		t.Errorf("foreign issuer: status %v, want unauthorized", got)
	}
}

func TestOCSPRequestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newOCSPFixture(t, KeyBrainpoolP256r1)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		der, err := CreateOCSPRequestWithHash(f.leaf, f.pki.inter.Cert, h)
		if err != nil {
			t.Fatal(err)
		}
		req, err := ParseOCSPRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := NewOCSPCertID(f.leaf, f.pki.inter.Cert, h)
		if diff := cmp.Diff([]OCSPCertID{want}, req.CertIDs, cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })); diff != "" {
			t.Errorf("%v CertID (-want +got):\n%s", h, diff)
		}
		if !req.CertIDs[0].Matches(f.leaf, f.pki.inter.Cert) || req.CertIDs[0].Matches(f.leaf, f.pki.root.Cert) {
			t.Errorf("%v: Matches does not tell the issuer apart", h)
		}
	}
}

// TestOCSPInteropWithOpenSSL runs OpenSSL's OCSP client against the responder and reads its requests. It
// uses real time, because openssl ocsp checks thisUpdate/nextUpdate against its own clock.
func TestOCSPInteropWithOpenSSL(t *testing.T) {
	requireOpenSSL(t)
	now := time.Now()
	for _, alg := range []KeyAlgorithm{KeyBrainpoolP256r1, KeyP256, KeyRSA2048} {
		t.Run("openssl accepts responses of a "+string(alg)+" responder", func(t *testing.T) {
			root, err := NewTestCA("OCSP Interop Root "+string(alg), alg, now.Add(-time.Hour), now.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			inter, err := root.IssueSubCA(IssueRequest{CommonName: "OCSP Interop CA", KeyAlgorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			good, _ := mustIssue(t, inter, IssueRequest{Profile: IssueProfileFListSigner, KeyAlgorithm: alg})
			revoked, _ := mustIssue(t, inter, IssueRequest{Profile: IssueProfileFDSigTIM, KeyAlgorithm: alg})
			signerCert, signer := mustIssue(t, inter, IssueRequest{Profile: IssueProfileOCSPSigner, KeyAlgorithm: alg})
			r := &OCSPResponder{Signer: signer, SignerCert: signerCert, Issuers: []*Certificate{inter.Cert}}
			r.SetStatus(good.SerialNumber, OCSPStatusEntry{Status: OCSPGood})
			r.SetStatus(revoked.SerialNumber, OCSPStatusEntry{Status: OCSPRevoked, RevokedAt: now.Add(-time.Minute), Reason: 1})
			srv := httptest.NewServer(r)
			defer srv.Close()

			dir := t.TempDir()
			rootPEM := writePEM(t, dir, "root.pem", root.Cert)
			interPEM := writePEM(t, dir, "inter.pem", inter.Cert)
			goodPEM := writePEM(t, dir, "good.pem", good)
			revokedPEM := writePEM(t, dir, "revoked.pem", revoked)
			signerPEM := writePEM(t, dir, "signer.pem", signerCert)

			// OpenSSL as the client: it builds the request (SHA-1 CertID and a nonce), POSTs it and verifies
			// the signer chain up to root.pem.
			out := runOpenSSL(t, "ocsp", "-issuer", interPEM, "-cert", goodPEM, "-cert", revokedPEM, "-url", srv.URL,
				"-CAfile", rootPEM, "-verify_other", interPEM)
			for _, want := range []string{"Response verify OK", goodPEM + ": good", revokedPEM + ": revoked", "Reason: keyCompromise"} {
				if !strings.Contains(out, want) {
					t.Errorf("openssl ocsp output lacks %q:\n%s", want, out)
				}
			}

			// OpenSSL's request bytes, answered by Respond, read back by OpenSSL and by us.
			reqPath := filepath.Join(dir, "req.der")
			runOpenSSL(t, "ocsp", "-issuer", interPEM, "-cert", goodPEM, "-reqout", reqPath)
			parsed, err := ParseOCSPRequest(mustReadFile(t, reqPath))
			if err != nil {
				t.Fatalf("ParseOCSPRequest(openssl request): %v", err)
			}
			if len(parsed.Nonce) == 0 || !parsed.CertIDs[0].Matches(good, inter.Cert) {
				t.Errorf("openssl request: nonce %x, CertID matches %v", parsed.Nonce, parsed.CertIDs[0].Matches(good, inter.Cert))
			}
			respDER := r.Respond(mustReadFile(t, reqPath))
			respPath := filepath.Join(dir, "resp.der")
			if err := os.WriteFile(respPath, respDER, 0o644); err != nil {
				t.Fatal(err)
			}
			text := runOpenSSL(t, "ocsp", "-respin", respPath, "-resp_text", "-noverify")
			for _, want := range []string{"OCSP Response Status: successful (0x0)", "Cert Status: good", "OCSP Nonce", "Responder Id: C = DE, O = timstack NOT-VALID, CN = OCSP-Signer TEST-ONLY"} {
				if !strings.Contains(text, want) {
					t.Errorf("openssl -resp_text lacks %q:\n%s", want, text)
				}
			}
			out = runOpenSSL(t, "ocsp", "-no_nonce", "-respin", respPath, "-VAfile", signerPEM, "-issuer", interPEM, "-cert", goodPEM)
			if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, goodPEM+": good") {
				t.Errorf("openssl -VAfile verification:\n%s", out)
			}
			resp, err := ParseOCSPResponse(respDER)
			if err != nil {
				t.Fatal(err)
			}
			if err := resp.Verify(good, inter.Cert, NewTrustStore(inter.Cert), now); err != nil {
				t.Errorf("Verify of the response to openssl's request: %v", err)
			}
		})
	}
}

// TestRevokedCardViaTestOCSPResponder validates gematik's revoked SMC-B test card against the gematik test
// CAs, with revocation answered by a local responder standing in for gematik's (unreachable) one. The
// responder's signer is trusted like a TSL Certstatus/OCSP service.
func TestRevokedCardViaTestOCSPResponder(t *testing.T) {
	t.Parallel()
	// Both cards and GEM.SMCB-CA51 are valid on this date (openssl x509 -dates: revoked card 2023-10-09 –
	// 2028-10-09, valid card 2025-04-29 – 2030-04-29, CA 2021-11-08 – 2029-11-06).
	at := caTestClock
	smcbCA := mustCert(t, gematikPath("pki", "ca", "GEM.SMCB-CA51-TEST-ONLY.pem"))
	revoked := mustCert(t, gematikPath("pki", "cards-invalid", "smcb-idp-revoked-2-ecc", "cert.pem"))
	valid := mustCert(t, gematikPath("pki", "cards", "80276883110000129068-2-C_SMCB_HCI_AUT_E256", "cert.pem"))

	ocspCA, err := NewTestCA("timstack OCSP-CA", KeyBrainpoolP256r1, caTestNotBefore, caTestNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	signerCert, signer, err := ocspCA.Issue(IssueRequest{Profile: IssueProfileOCSPSigner, CommonName: "timstack OCSP-Signer SMCB-CA51"})
	if err != nil {
		t.Fatal(err)
	}
	responder := &OCSPResponder{
		Signer: signer, SignerCert: signerCert, Issuers: []*Certificate{smcbCA},
		Now: func() time.Time { return at }, Validity: time.Hour,
	}
	responder.SetStatus(revoked.SerialNumber, OCSPStatusEntry{Status: OCSPRevoked, RevokedAt: time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC), Reason: 1})
	responder.SetStatus(valid.SerialNumber, OCSPStatusEntry{Status: OCSPGood})
	srv := httptest.NewServer(responder)
	defer srv.Close()

	store := gematikCAStore(t)
	store.AddOCSPResponder(signerCert)
	checker := &OCSPChecker{Trust: store, URLOverride: func(*Certificate, *Certificate) string { return srv.URL }}
	opts := VerifyOptions{At: at, CertificateTypes: []CertificateType{CertHCIAUT}, Revocation: checker}

	t.Run("the revoked SMC-B is refused with ErrRevoked", func(t *testing.T) {
		_, err := store.Verify(context.Background(), revoked, opts)
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Check != "ocsp" || !errors.Is(err, ErrRevoked) {
			t.Fatalf("Verify: %v, want an ocsp ChainError wrapping ErrRevoked", err)
		}
	})
	t.Run("the revoked SMC-B chains when revocation is not checked", func(t *testing.T) {
		o := opts
		o.Revocation = &OCSPChecker{Policy: OCSPOff}
		if _, err := store.Verify(context.Background(), revoked, o); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("a valid SMC-B passes through the same responder", func(t *testing.T) {
		chain, err := store.Verify(context.Background(), valid, opts)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if len(chain) != 2 || !chain[1].Equal(smcbCA) {
			t.Errorf("chain %v", chain)
		}
	})
	t.Run("without the responder in the trust store its answers are refused", func(t *testing.T) {
		o := opts
		o.Revocation = &OCSPChecker{Trust: gematikCAStore(t), URLOverride: checker.URLOverride}
		_, err := store.Verify(context.Background(), valid, o)
		if !errors.Is(err, ErrOCSPInvalid) {
			t.Fatalf("Verify: %v, want ErrOCSPInvalid", err)
		}
	})
}

func TestParseOCSPResponseRefusesMalformedInput(t *testing.T) {
	t.Parallel()
	f := newOCSPFixture(t, KeyP256)
	r := f.responder()
	r.DefaultGood = true
	req, _ := CreateOCSPRequest(f.leaf, f.pki.inter.Cert)
	der := r.Respond(req)
	if _, err := ParseOCSPResponse(der); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
	}{
		{"an empty input is refused", nil},
		{"a truncated response is refused", der[:len(der)-1]},
		{"trailing data is refused", append(bytes.Clone(der), 0)},
		{"a certificate instead of a response is refused", f.leaf.Raw},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseOCSPResponse(tc.der); !errors.Is(err, ErrOCSPInvalid) {
				t.Fatalf("ParseOCSPResponse: %v, want ErrOCSPInvalid", err)
			}
		})
	}
}

func FuzzParseOCSPResponse(f *testing.F) {
	fx := newOCSPFixture(f, KeyP256)
	r := fx.responder()
	r.SetStatus(fx.leaf.SerialNumber, OCSPStatusEntry{Status: OCSPRevoked, RevokedAt: caTestClock, Reason: 4})
	req, _ := CreateOCSPRequest(fx.leaf, fx.pki.inter.Cert)
	f.Add(r.Respond(req))
	r.ResponderByKey = true
	f.Add(r.Respond(req))
	f.Add(ocspMustError(OCSPTryLater))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ParseOCSPResponse(data)
		if err != nil {
			return
		}
		_ = resp.Verify(fx.leaf, fx.pki.inter.Cert, fx.store, caTestClock)
	})
}
