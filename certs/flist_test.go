package certs

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var flistClock = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func realFederationList(t testing.TB) []byte {
	t.Helper()
	return mustReadFile(t, gematikPath("vzd", "samples", "federationList-TU-v1650.jws"))
}

func TestRealFederationListVerifies(t *testing.T) {
	l, err := VerifyFederationList(context.Background(), realFederationList(t), FederationListOptions{
		Trust: gematikCAStore(t),
		At:    flistClock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 1650 || l.Len() != 277 || l.InsuranceCount() != 18 {
		t.Fatalf("version %d, %d domains, %d insurance; want 1650, 277, 18", l.Version, l.Len(), l.InsuranceCount())
	}
	if l.Algorithm != AlgBP256R1 {
		t.Errorf("algorithm %q", l.Algorithm)
	}
	if got := l.Signer.Subject.CommonName; got != "VZD-FHIR-FList-Signer" {
		t.Errorf("signer CN %q", got)
	}
	if got := l.Chain[len(l.Chain)-1].Subject.CommonName; got != "GEM.KOMP-CA50 TEST-ONLY" {
		t.Errorf("chain ends at %q", got)
	}
	if !bytes.Equal(l.JWS, bytes.TrimSpace(realFederationList(t))) {
		t.Error("the original JWS bytes were not kept")
	}
	got, ok := l.Lookup("ONE-BOB.ujumbelabs.com")
	want := FederationDomain{Domain: "one-bob.ujumbelabs.com", TelematikID: "1-SMC-B-Testkarte--883110000153155", TimAnbieter: "ORG-0058:BT-0158"}
	if !ok {
		t.Fatal("one-bob.ujumbelabs.com not found")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lookup (-want +got):\n%s", diff)
	}
	withIK := 0
	for _, d := range l.Domains() {
		if d.IsInsurance && len(d.IK) > 0 {
			withIK++
		}
	}
	if withIK != 5 {
		t.Errorf("%d insurance domains carry IK numbers (legacy `iks`), want 5", withIK)
	}
	if _, ok := l.Lookup("not-listed.example"); ok {
		t.Error("an unlisted domain was found")
	}
}

// flipByte changes one base64url character of part (0 header, 1 payload, 2 signature) of a compact JWS.
func flipByte(t *testing.T, jws []byte, part, offset int) []byte {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(string(jws)), ".")
	p := []byte(parts[part])
	if p[offset] == 'A' {
		p[offset] = 'B'
	} else {
		p[offset] = 'A'
	}
	parts[part] = string(p)
	return []byte(strings.Join(parts, "."))
}

func TestRealFederationListRefusals(t *testing.T) {
	real := realFederationList(t)
	all := gematikCAStore(t)
	withoutKOMP50 := NewTrustStore()
	for _, a := range all.Anchors() {
		if a.Cert.Subject.CommonName != "GEM.KOMP-CA50 TEST-ONLY" {
			withoutKOMP50.AddAnchor(a)
		}
	}
	tests := []struct {
		name  string
		jws   []byte
		trust *TrustStore
		at    time.Time
		algs  []JWSAlgorithm
		want  error
	}{
		{name: "one changed payload byte breaks the signature", jws: flipByte(t, real, 1, 200), trust: all, at: flistClock, want: ErrFederationListSignature},
		{name: "one changed signature byte breaks the signature", jws: flipByte(t, real, 2, 10), trust: all, at: flistClock, want: ErrFederationListSignature},
		{name: "a trust store without GEM.KOMP-CA50 does not trust the signer", jws: real, trust: withoutKOMP50, at: flistClock, want: ErrUnknownIssuer},
		{name: "after the signer expired (2028-01-24) the list is refused", jws: real, trust: all, at: time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), want: ErrExpired},
		{name: "before the signer was issued the list is refused", jws: real, trust: all, at: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), want: ErrNotYetValid},
		{name: "a caller that accepts only ES256 refuses a BP256R1 list", jws: real, trust: all, at: flistClock, algs: []JWSAlgorithm{AlgES256}, want: ErrFederationListSignature},
		{name: "a truncated JWS is malformed", jws: real[:len(real)/2], trust: all, at: flistClock, want: ErrFederationListMalformed},
		{name: "an empty file is malformed", jws: nil, trust: all, at: flistClock, want: ErrFederationListMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := VerifyFederationList(context.Background(), tc.jws, FederationListOptions{Trust: tc.trust, At: tc.at, Algorithms: tc.algs})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if l != nil {
				t.Fatal("a refused list was returned")
			}
		})
	}
}

func TestFederationListPayloadIsParsedTolerantly(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    []FederationDomain
		wantErr bool
	}{
		{
			name:    "schema field ik, legacy field iks, null timAnbieter and unknown fields are accepted",
			payload: `{"version":7,"extra":1,"domainList":[{"domain":"a.de","telematikID":"1-a","isInsurance":true,"ik":["101575519"],"timAnbieter":null,"future":{}},{"domain":"b.de","telematikID":"1-b","isInsurance":false,"iks":[],"timAnbieter":"G1"}]}`,
			want: []FederationDomain{
				{Domain: "a.de", TelematikID: "1-a", IsInsurance: true, IK: []string{"101575519"}},
				{Domain: "b.de", TelematikID: "1-b", TimAnbieter: "G1", IK: []string{}},
			},
		},
		{name: "an insurance domain without IK numbers is kept (as in real lists)", payload: `{"version":1,"domainList":[{"domain":"kk.de","telematikID":"x","isInsurance":true,"iks":[]}]}`,
			want: []FederationDomain{{Domain: "kk.de", TelematikID: "x", IsInsurance: true, IK: []string{}}}},
		{name: "an empty list is a valid list", payload: `{"version":3,"domainList":[]}`, want: []FederationDomain{}},
		{name: "a missing version is refused", payload: `{"domainList":[]}`, wantErr: true},
		{name: "an entry without domain is refused", payload: `{"version":1,"domainList":[{"telematikID":"x"}]}`, wantErr: true},
		{name: "duplicate domains (case-insensitive) are refused", payload: `{"version":1,"domainList":[{"domain":"a.de"},{"domain":"A.de"}]}`, wantErr: true},
		{name: "a domainList that is not an array is refused", payload: `{"version":1,"domainList":{}}`, wantErr: true},
		{name: "trailing data is refused", payload: `{"version":1,"domainList":[]} {}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := ParseFederationListPayload([]byte(tc.payload))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got, cmp.Transformer("nilToEmpty", func(s []string) []string {
					if s == nil {
						return []string{}
					}
					return s
				})); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}

func BenchmarkVerifyFederationList(b *testing.B) {
	jws := realFederationList(b)
	trust := gematikCAStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := VerifyFederationList(context.Background(), jws, FederationListOptions{Trust: trust, At: flistClock})
		if err != nil || l.Len() != 277 {
			b.Fatal(err)
		}
	}
}

func BenchmarkFederationListLookup(b *testing.B) {
	l, err := VerifyFederationList(context.Background(), realFederationList(b), FederationListOptions{Trust: gematikCAStore(b), At: flistClock})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := l.Lookup("one-bob.ujumbelabs.com"); !ok {
			b.Fatal("not found")
		}
	}
}

func FuzzParseFederationListPayload(f *testing.F) {
	real := realFederationList(f)
	parts := bytes.Split(bytes.TrimSpace(real), []byte("."))
	payload, err := base64.RawURLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(payload)
	f.Add([]byte(`{"version":1,"domainList":[{"domain":"a.de","ik":["1"],"iks":null,"timAnbieter":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, domains, err := ParseFederationListPayload(data)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("negative version %d accepted", v)
		}
		seen := map[string]bool{}
		for _, d := range domains {
			k := strings.ToLower(d.Domain)
			if d.Domain == "" || seen[k] {
				t.Fatalf("empty or duplicate domain %q accepted", d.Domain)
			}
			seen[k] = true
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	for _, pattern := range []string{"pki/ca/*.pem", "pki/cards/*/cert.pem", "pki/cards-invalid/*/cert.pem", "pki/idp/*/cert.pem"} {
		files, _ := filepath.Glob(gematikPath(pattern))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			c, err := ParseCertificatePEMOrDER(data)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(c.Raw)
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseCertificate(der)
		if err != nil {
			return
		}
		// Whatever parses must be safe to use. (Signature checks are left out: at ~3 ms per brainpool
		// verification they would cut the fuzzer to a few hundred executions a minute.)
		_ = c.Subject.String()
		_ = c.Issuer.String()
		_ = c.TelematikID()
		_ = c.ProfessionItems()
		_ = c.CertificateType()
		_ = c.KVNR()
		if !bytes.Equal(c.Raw, der) {
			t.Fatal("Raw differs from the input")
		}
	})
}
