package certs

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// cardRow is one line of testdata/cards.tsv.
type cardRow struct {
	line          int
	dir           string // below testdata/gematik/pki
	id            string // Telematik-ID, or the KVNR for eGK; "" when absent
	professionOID string
	typ           CertificateType
	issuerCN      string
	at            time.Time
	check         string // "" when the chain must verify
	sentinel      error
	skip          string
}

func cardSentinel(name string) error {
	for _, s := range []struct {
		name string
		err  error
	}{
		{"ErrExpired", ErrExpired}, {"ErrNotYetValid", ErrNotYetValid}, {"ErrUnknownIssuer", ErrUnknownIssuer},
		{"ErrSelfSigned", ErrSelfSigned}, {"ErrBadSignature", ErrBadSignature}, {"ErrProfession", ErrProfession},
		{"ErrCertificateType", ErrCertificateType}, {"ErrRevoked", ErrRevoked}, {"ErrAnchorRevoked", ErrAnchorRevoked},
	} {
		if s.name == name {
			return s.err
		}
	}
	return nil
}

func cardReadTable(t *testing.T) []cardRow {
	t.Helper()
	var rows []cardRow
	header := true
	for i, line := range strings.Split(string(mustReadFile(t, filepath.Join("testdata", "cards.tsv"))), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			t.Fatalf("cards.tsv:%d: %d fields, want 8", i+1, len(f))
		}
		if header {
			header = false
			continue
		}
		at, err := time.Parse(time.RFC3339, f[5])
		if err != nil {
			t.Fatalf("cards.tsv:%d: %v", i+1, err)
		}
		r := cardRow{line: i + 1, dir: f[0], id: f[1], professionOID: f[2], typ: CertificateType(f[3]), issuerCN: f[4], at: at, skip: f[7]}
		if r.id == "-" {
			r.id = ""
		}
		if r.skip == "-" {
			r.skip = ""
		}
		if f[6] != "ok" {
			check, name, ok := strings.Cut(f[6], "/")
			if r.check, r.sentinel = check, cardSentinel(name); !ok || r.sentinel == nil {
				t.Fatalf("cards.tsv:%d: bad expectation %q", i+1, f[6])
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// cardID is how the identity of a card holder is read: the Telematik-ID, or for the insured (who have
// none) the KVNR.
func cardID(c *Certificate) string {
	if c.CertificateType() == CertCHAUT {
		return c.KVNR()
	}
	return c.TelematikID()
}

func cardKinds(typ CertificateType) []ProfessionKind {
	switch typ {
	case CertHPAUT:
		return []ProfessionKind{KindPerson}
	case CertHCIAUT:
		return []ProfessionKind{KindInstitution}
	case CertCHAUT:
		return []ProfessionKind{KindInsured}
	}
	return nil
}

func TestCardTableCoversEveryFixture(t *testing.T) {
	var inTable []string
	for _, r := range cardReadTable(t) {
		inTable = append(inTable, r.dir)
	}
	var onDisk []string
	for _, top := range []string{"cards", "cards-invalid"} {
		entries, err := os.ReadDir(gematikPath("pki", top))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				onDisk = append(onDisk, top+"/"+e.Name())
			}
		}
	}
	slices.Sort(inTable)
	slices.Sort(onDisk)
	if !slices.Equal(inTable, onDisk) {
		t.Errorf("cards.tsv rows and fixture directories differ:\ntable: %v\ndisk:  %v", inTable, onDisk)
	}
}

// TestCardChains checks every gematik test card against cards.tsv: its identity fields as timstack and as
// OpenSSL read them, and its chain against the trust store of the verified test TSL. The TSL is needed,
// not pki/ca: GEM.HBA-CA44, GEM.EGK-CA41 and GEM.SMCB-CA9 are only listed there. The TSL's own freshness is
// ignored (it expired 2025-03-12, before most cards were issued); each row brings its own clock.
func TestCardChains(t *testing.T) {
	rows := cardReadTable(t)
	tsl := tslParseDefault(t)
	store := tsl.TrustStore()
	ocspSigner := cardOCSPSigner(t)
	store.AddOCSPResponder(ocspSigner.Cert)
	openssl, lookErr := exec.LookPath("openssl")
	for _, r := range rows {
		t.Run(r.dir, func(t *testing.T) {
			t.Parallel()
			path := gematikPath("pki", filepath.FromSlash(r.dir), "cert.pem")
			c := mustCert(t, path)
			if got := cardID(c); got != r.id {
				t.Errorf("cards.tsv:%d: id = %q, want %q", r.line, got, r.id)
			}
			if r.typ == CertCHAUT && c.TelematikID() != "" {
				t.Errorf("eGK carries a Telematik-ID %q", c.TelematikID())
			}
			if got := c.ProfessionOIDs(); len(got) == 0 || got[0] != r.professionOID {
				t.Errorf("cards.tsv:%d: profession OIDs = %v, want %s first", r.line, got, r.professionOID)
			}
			if got := c.CertificateType(); got != r.typ {
				t.Errorf("cards.tsv:%d: type = %q, want %q", r.line, got, r.typ)
			}
			if got := c.Issuer.CommonName; got != r.issuerCN {
				t.Errorf("cards.tsv:%d: issuer CN = %q, want %q", r.line, got, r.issuerCN)
			}

			if lookErr != nil {
				t.Fatalf("openssl is required for the cross-check (make test installs it): %v", lookErr)
			} else {
				cardCompareOpenSSL(t, openssl, path, r)
			}

			if r.skip != "" {
				t.Skipf("chain not checked here: %s", r.skip)
			}
			// OCSP policy "require" for every card, answered by a test responder at the row's clock: the
			// revoked SMC-B differs from a valid one only in its OCSP status.
			checker := cardOCSP(t, ocspSigner, store, tsl.Anchors, r, c)
			chain, err := store.Verify(context.Background(), c, VerifyOptions{
				At:               r.at,
				KeyUsage:         KeyUsageDigitalSignature,
				CertificateTypes: []CertificateType{r.typ},
				ProfessionKinds:  cardKinds(r.typ),
				Revocation:       checker,
			})
			if r.check == "" {
				if err != nil {
					t.Fatalf("cards.tsv:%d: Verify: %v", r.line, err)
				}
				if got := chain[len(chain)-1].Subject.CommonName; got != r.issuerCN {
					t.Errorf("chain ends at %q, want %q", got, r.issuerCN)
				}
				return
			}
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Check != r.check || !errors.Is(err, r.sentinel) {
				t.Fatalf("cards.tsv:%d: Verify = %v, want check %q failing with %v", r.line, err, r.check, r.sentinel)
			}
		})
	}
}

var (
	cardOpenSSLRegNo      = regexp.MustCompile(`registrationNumber: *(.*)`)
	cardOpenSSLProfession = regexp.MustCompile(`Profession OIDs:\s*\n\s*[^\n(]*\(([0-9.]+)\)`)
	cardOpenSSLPolicy     = regexp.MustCompile(`Policy: *([0-9.]+)`)
	cardOpenSSLIssuerCN   = regexp.MustCompile(`Issuer:.*\bCN *= *([^,\n]*)`)
	cardOpenSSLSubject    = regexp.MustCompile(`Subject: *(.*)`)
	cardOpenSSLOU         = regexp.MustCompile(`\bOU *= *([^,]*)`)
)

// cardCompareOpenSSL reads the same fields from `openssl x509 -text`, an independent parser, so a bug in
// our ASN.1 decoding cannot agree with itself through the table.
func cardCompareOpenSSL(t *testing.T, openssl, path string, r cardRow) {
	t.Helper()
	out, err := exec.Command(openssl, "x509", "-in", path, "-noout", "-text", "-nameopt", "utf8").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	text := string(out)
	var regNo string
	if m := cardOpenSSLRegNo.FindStringSubmatch(text); m != nil {
		regNo = strings.TrimSpace(m[1])
	}
	if r.typ == CertCHAUT {
		if regNo != "" {
			t.Errorf("openssl: eGK has registrationNumber %q", regNo)
		}
		var kvnr []string
		if m := cardOpenSSLSubject.FindStringSubmatch(text); m != nil {
			for _, ou := range cardOpenSSLOU.FindAllStringSubmatch(m[1], -1) {
				if cardIsKVNR(strings.TrimSpace(ou[1])) {
					kvnr = append(kvnr, strings.TrimSpace(ou[1]))
				}
			}
		}
		if got := strings.Join(kvnr, ","); got != r.id {
			t.Errorf("openssl: KVNR-shaped subject OUs = %q, want %q", got, r.id)
		}
	} else if regNo != r.id {
		t.Errorf("openssl: registrationNumber = %q, want %q", regNo, r.id)
	}
	if m := cardOpenSSLProfession.FindStringSubmatch(text); m == nil || m[1] != r.professionOID {
		t.Errorf("openssl: first profession OID = %v, want %s", m, r.professionOID)
	}
	var policies []string
	for _, m := range cardOpenSSLPolicy.FindAllStringSubmatch(text, -1) {
		policies = append(policies, m[1])
	}
	if want := CertificateTypeOID(r.typ); !slices.Contains(policies, want) {
		t.Errorf("openssl: policies %v lack %s (%s)", policies, want, r.typ)
	}
	if m := cardOpenSSLIssuerCN.FindStringSubmatch(text); m == nil || strings.TrimSpace(m[1]) != r.issuerCN {
		t.Errorf("openssl: issuer CN = %v, want %q", m, r.issuerCN)
	}
}

func TestCardKVNR(t *testing.T) {
	tests := []struct {
		name string
		ous  []string
		want string
	}{
		{"the KVNR is the OU of one letter and nine digits, not the IK number", []string{"109500969", "X110471380"}, "X110471380"},
		{"no KVNR-shaped OU yields nothing", []string{"899077891"}, ""},
		{"two different KVNR-shaped OUs are ambiguous", []string{"X110471380", "Y110471380"}, ""},
		{"lower-case or short values are not KVNRs", []string{"x110471380", "X11047138"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Certificate{Subject: Name{OrganizationalUnit: tc.ous}}
			if got := c.KVNR(); got != tc.want {
				t.Errorf("KVNR() = %q, want %q", got, tc.want)
			}
		})
	}
}

// cardOCSPSigner is a test-CA OCSP signer, trusted like a TSL Certstatus/OCSP service.
func cardOCSPSigner(t *testing.T) *TestCA {
	t.Helper()
	from, until := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := NewTestCA("timstack card-table OCSP CA", KeyBrainpoolP256r1, from, until)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(IssueRequest{Profile: IssueProfileOCSPSigner, CommonName: "card-table OCSP signer", KeyAlgorithm: KeyBrainpoolP256r1, NotBefore: from, NotAfter: until})
	if err != nil {
		t.Fatal(err)
	}
	return &TestCA{Cert: cert, Key: key}
}

// cardOCSP starts a responder for the card's issuer with the row's clock; it answers good, except revoked
// for a row that expects ErrRevoked.
func cardOCSP(t *testing.T, signer *TestCA, trust *TrustStore, anchors []*Anchor, r cardRow, c *Certificate) *OCSPChecker {
	t.Helper()
	resp := &OCSPResponder{Signer: signer.Key, SignerCert: signer.Cert, DefaultGood: true, Now: func() time.Time { return r.at }}
	for _, a := range anchors {
		if string(a.Cert.RawSubject) == string(c.RawIssuer) {
			resp.Issuers = append(resp.Issuers, a.Cert)
		}
	}
	if errors.Is(r.sentinel, ErrRevoked) {
		resp.SetStatus(c.SerialNumber, OCSPStatusEntry{Status: OCSPRevoked, RevokedAt: r.at.Add(-24 * time.Hour)})
	}
	srv := httptest.NewServer(resp)
	t.Cleanup(srv.Close)
	return &OCSPChecker{Trust: trust, Policy: OCSPRequire, URLOverride: func(_, _ *Certificate) string { return srv.URL }}
}
