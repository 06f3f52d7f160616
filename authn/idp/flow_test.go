package idp

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/timstack/timstack/certs"
)

// login runs Begin, the IDP round trip and Complete.
func login(t *testing.T, rp *RelyingParty, f *fakeIDP) (*Identity, error) {
	t.Helper()
	authURL, state, err := rp.Begin(context.Background(), BeginOptions{CardType: CardTypeSMCB})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	code, gotState := authorize(t, f, authURL)
	if gotState != state {
		t.Fatalf("state %q came back as %q", state, gotState)
	}
	return rp.Complete(context.Background(), state, code)
}

func TestFullLoginAgainstTheFakeIDP(t *testing.T) {
	clock := newTestClock(time.Now())
	f := newFakeIDP(t, clock)
	rp := newTestRP(t, f, nil)

	authURL, state, err := rp.Begin(context.Background(), BeginOptions{CardType: CardTypeSMCB})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the authorization URL carries PKCE S256, state, nonce, scope and the card type", func(t *testing.T) {
		u, err := url.Parse(authURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		got := map[string]string{}
		for _, k := range []string{"client_id", "response_type", "redirect_uri", "state", "code_challenge_method", "scope", "cardType"} {
			got[k] = q.Get(k)
		}
		want := map[string]string{"client_id": testClientID, "response_type": "code", "redirect_uri": testRedirect,
			"state": state, "code_challenge_method": "S256", "scope": "openid ti-messenger", "cardType": "SMC-B"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("query (-want +got):\n%s", diff)
		}
		if u.Scheme+"://"+u.Host+u.Path != f.srv.URL+"/auth" {
			t.Errorf("endpoint %s", u.Path)
		}
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(k)) < 43 { // 32 random bytes in base64url
				t.Errorf("%s %q shorter than 32 random bytes", k, q.Get(k))
			}
		}
	})

	code, _ := authorize(t, f, authURL)
	id, err := rp.Complete(context.Background(), state, code)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	t.Run("the identity carries the card-derived claims", func(t *testing.T) {
		want := &Identity{
			TelematikID: "1-SMC-B-Testkarte-883110000129077", ProfessionOID: "1.2.276.0.76.4.50",
			Kind: certs.KindInstitution, OrganizationName: "Praxis Dr. Test TEST-ONLY", DisplayName: "Praxis Dr. Test TEST-ONLY",
			Subject: "pairwise-" + testClientID, Issuer: f.issuer, ClientID: testClientID, ACR: acrHigh,
			AMR: []string{"mfa", "sc", "pin"},
		}
		if diff := cmp.Diff(want, id, cmpopts.IgnoreFields(Identity{}, "JTI", "AuthTime", "IssuedAt", "ExpiresAt")); diff != "" {
			t.Errorf("identity (-want +got):\n%s", diff)
		}
		if id.JTI == "" || id.ExpiresAt.Sub(id.IssuedAt) != 300*time.Second {
			t.Errorf("jti %q, lifetime %s", id.JTI, id.ExpiresAt.Sub(id.IssuedAt))
		}
		if err := CheckProfession(id, UseOrgRegistrationPro); err != nil {
			t.Errorf("SMC-B Arztpraxis refused for org registration: %v", err)
		}
	})
	t.Run("the same state cannot complete a second login", func(t *testing.T) {
		_, err := rp.Complete(context.Background(), state, code)
		if !errors.Is(err, ErrState) || !errors.Is(err, ErrReplay) {
			t.Errorf("got %v, want ErrState and ErrReplay", err)
		}
	})
	t.Run("a used code is refused with a fresh state", func(t *testing.T) {
		_, state2, err := rp.Begin(context.Background(), BeginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rp.Complete(context.Background(), state2, code); !errors.Is(err, ErrReplay) {
			t.Errorf("got %v, want ErrReplay", err)
		}
	})
	t.Run("discovery was loaded once for all of it", func(t *testing.T) {
		if n := f.discoveryHits.Load(); n != 1 {
			t.Errorf("discovery fetched %d times", n)
		}
	})
}

func TestCompleteRefusals(t *testing.T) {
	otherKey, err := certs.GenerateKey(certs.KeyBrainpoolP256r1)
	if err != nil {
		t.Fatal(err)
	}
	p256Key, err := certs.GenerateKey(certs.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		knob  func(f *fakeIDP)
		want  []error
		words string
	}{
		{"an ID token with one payload character changed is refused", func(f *fakeIDP) {
			f.idRaw = func(in []byte) []byte { return tamper(in, strings.IndexByte(string(in), '.')+20) }
		}, []error{ErrTokenInvalid, certs.ErrBadSignature}, ""},
		{"an ID token re-signed by another brainpool key is refused", func(f *fakeIDP) { f.idSigner = otherKey },
			[]error{ErrTokenInvalid, certs.ErrBadSignature}, ""},
		{"an ID token signed ES256 with a P-256 key is refused as algorithm confusion", func(f *fakeIDP) {
			f.idSigner, f.idAlg = p256Key, certs.AlgES256
		}, []error{ErrTokenInvalid, certs.ErrAlgorithmMismatch}, "ES256"},
		{"an ID token with alg none is refused", func(f *fakeIDP) {
			f.idRaw = func(in []byte) []byte {
				parts := strings.Split(string(in), ".")
				return []byte(b64url(`{"alg":"none","typ":"JWT","kid":"puk_idp_sig"}`) + "." + parts[1] + "." + parts[2])
			}
		}, []error{ErrTokenInvalid}, "none"},
		{"an ID token with another kid is refused", func(f *fakeIDP) { f.idHeader = func(h map[string]any) { h["kid"] = "puk_other" } },
			[]error{ErrTokenInvalid}, "kid"},
		{"an ID token with typ at+JWT is refused", func(f *fakeIDP) { f.idHeader = func(h map[string]any) { h["typ"] = "at+JWT" } },
			[]error{ErrTokenInvalid}, "typ"},
		{"an ID token for another client is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { c["aud"] = "other-client" } },
			[]error{ErrTokenInvalid}, "aud"},
		{"an ID token whose azp names another client is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { c["azp"] = "other-client" } },
			[]error{ErrTokenInvalid}, "azp"},
		{"an ID token from another issuer is refused", func(f *fakeIDP) {
			f.claims = func(c map[string]any) { c["iss"] = "https://idp.evil.example" }
		}, []error{ErrTokenInvalid}, "iss"},
		{"an expired ID token is refused", func(f *fakeIDP) {
			f.claims = func(c map[string]any) {
				now := f.clock.Now().Unix()
				c["iat"], c["exp"], c["auth_time"] = now-1000, now-200, now-1000
			}
		}, []error{ErrTokenInvalid}, "expired"},
		{"an ID token living longer than 24 h is refused", func(f *fakeIDP) {
			f.claims = func(c map[string]any) { c["exp"] = f.clock.Now().Add(25 * time.Hour).Unix() }
		}, []error{ErrTokenInvalid}, "lifetime"},
		{"an ID token issued in the future is refused", func(f *fakeIDP) {
			f.claims = func(c map[string]any) {
				c["iat"] = f.clock.Now().Add(5 * time.Minute).Unix()
				c["exp"] = f.clock.Now().Add(10 * time.Minute).Unix()
			}
		}, []error{ErrTokenInvalid}, "future"},
		{"an ID token without sc in amr is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { c["amr"] = []string{"mfa", "pin"} } },
			[]error{ErrTokenInvalid}, "smartcard"},
		{"an ID token with a lower acr is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { c["acr"] = "gematik-ehealth-loa-substantial" } },
			[]error{ErrTokenInvalid}, "acr"},
		{"an ID token with another nonce is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { c["nonce"] = "not-the-login's" } },
			[]error{ErrTokenInvalid}, "nonce"},
		{"an ID token whose at_hash does not match the access token is refused", func(f *fakeIDP) {
			f.claims = func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }
		}, []error{ErrTokenInvalid}, "at_hash"},
		{"an ID token without idNummer is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { delete(c, "idNummer") } },
			[]error{ErrTokenInvalid}, "idNummer"},
		{"an ID token with a malformed professionOID is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { c["professionOID"] = "1.2.276.0.76.4.x" } },
			[]error{ErrTokenInvalid}, "professionOID"},
		{"an SMC-B ID token without organizationName is refused", func(f *fakeIDP) { f.claims = func(c map[string]any) { c["organizationName"] = nil } },
			[]error{ErrTokenInvalid}, "organizationName"},
		{"a token response with token_type mac is refused", func(f *fakeIDP) { f.tokenType = "mac" },
			[]error{ErrTokenInvalid}, "token_type"},
		{"an id_token JWE without cty NJWT is refused", func(f *fakeIDP) { f.jweHeader = map[string]any{"cty": "JWT"} },
			[]error{ErrTokenInvalid}, "NJWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newTestClock(time.Now())
			f := newFakeIDP(t, clock)
			rp := newTestRP(t, f, nil)
			f.set(tc.knob)
			_, err := login(t, rp, f)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want %v", err, w)
				}
			}
			if err != nil && !strings.Contains(err.Error(), tc.words) {
				t.Errorf("error %q does not say %q", err, tc.words)
			}
		})
	}
}

func TestLoginStateAndCodeBinding(t *testing.T) {
	ctx := context.Background()
	t.Run("a code issued for another login fails PKCE at the IDP", func(t *testing.T) {
		f := newFakeIDP(t, newTestClock(time.Now()))
		rp := newTestRP(t, f, nil)
		urlA, _, err := rp.Begin(ctx, BeginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		codeA, _ := authorize(t, f, urlA)
		_, stateB, err := rp.Begin(ctx, BeginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = rp.Complete(ctx, stateB, codeA) // code injection: B's verifier does not match A's challenge
		if !errors.Is(err, ErrTokenEndpoint) || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("got %v, want ErrTokenEndpoint with invalid_grant", err)
		}
	})
	t.Run("an unknown state is refused before the IDP is asked", func(t *testing.T) {
		f := newFakeIDP(t, newTestClock(time.Now()))
		rp := newTestRP(t, f, nil)
		if _, err := rp.Complete(ctx, "made-up", "code"); !errors.Is(err, ErrState) || errors.Is(err, ErrReplay) {
			t.Errorf("got %v, want ErrState (not replay)", err)
		}
		if f.tokenHits.Load() != 0 {
			t.Error("token endpoint was called")
		}
	})
	t.Run("a login older than 10 minutes is refused and its state is gone", func(t *testing.T) {
		clock := newTestClock(time.Now())
		f := newFakeIDP(t, clock)
		rp := newTestRP(t, f, nil)
		authURL, state, err := rp.Begin(ctx, BeginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		code, _ := authorize(t, f, authURL)
		clock.Advance(11 * time.Minute)
		if _, err := rp.Complete(ctx, state, code); !errors.Is(err, ErrState) {
			t.Errorf("got %v, want ErrState", err)
		}
	})
	t.Run("an unknown card type is refused", func(t *testing.T) {
		f := newFakeIDP(t, newTestClock(time.Now()))
		rp := newTestRP(t, f, nil)
		if _, _, err := rp.Begin(ctx, BeginOptions{CardType: "eGK"}); !errors.Is(err, ErrConfig) {
			t.Errorf("got %v, want ErrConfig", err)
		}
	})
}

func TestVerifyIDTokenHeadless(t *testing.T) {
	ctx := context.Background()
	f := newFakeIDP(t, newTestClock(time.Now()))
	rp := newTestRP(t, f, nil)
	tok := f.signIDToken(testClientID, "", func(c map[string]any) { delete(c, "nonce") })

	for _, tc := range []struct {
		name  string
		token []byte
		nonce string
		want  error
	}{
		{"a fresh ID token without nonce verifies when no nonce is expected", tok, "", nil},
		{"the same ID token presented again is refused as a jti replay", tok, "", ErrReplay},
		{"an ID token whose nonce differs from the expected one is refused",
			f.signIDToken(testClientID, "n1", nil), "n2", ErrTokenInvalid},
		{"an ID token with the expected nonce verifies", f.signIDToken(testClientID, "n1", nil), "n1", nil},
		{"an ID token with aud as an array containing the client verifies",
			f.signIDToken(testClientID, "", func(c map[string]any) { c["aud"] = []string{testClientID, "other"} }), "", nil},
		{"an ID token with several audiences and no azp is refused",
			f.signIDToken(testClientID, "", func(c map[string]any) { c["aud"] = []string{testClientID, "other"}; delete(c, "azp") }), "", ErrTokenInvalid},
		{"garbage is refused", []byte("not.a.jws"), "", ErrTokenInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rp.VerifyIDToken(ctx, tc.token, tc.nonce)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func tamper(tok []byte, i int) []byte {
	out := append([]byte(nil), tok...)
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

func TestJTIReplayThroughComplete(t *testing.T) {
	t.Run("a second login whose ID token repeats a jti is refused", func(t *testing.T) {
		f := newFakeIDP(t, newTestClock(time.Now()))
		rp := newTestRP(t, f, nil)
		f.set(func(f *fakeIDP) { f.claims = func(c map[string]any) { c["jti"] = "fixed-jti" } })
		if _, err := login(t, rp, f); err != nil {
			t.Fatal(err)
		}
		if _, err := login(t, rp, f); !errors.Is(err, ErrReplay) || !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("got %v, want ErrReplay and ErrTokenInvalid", err)
		}
	})
	t.Run("a login without access token needs no at_hash", func(t *testing.T) {
		f := newFakeIDP(t, newTestClock(time.Now()))
		rp := newTestRP(t, f, nil)
		f.set(func(f *fakeIDP) {
			f.noAccessToken = true
			f.claims = func(c map[string]any) { delete(c, "at_hash") }
		})
		if _, err := login(t, rp, f); err != nil {
			t.Fatal(err)
		}
	})
}
