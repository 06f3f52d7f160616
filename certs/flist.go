package certs

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Federation-list failures. VerifyFederationList wraps one of these (or a *ChainError), so a caller can
// say which check refused the list.
var (
	ErrFederationListMalformed = errors.New("malformed federation list")
	ErrFederationListSignature = errors.New("federation list signature invalid")
	ErrFederationListSigner    = errors.New("federation list signer not acceptable")
)

// FederationDomain is one entry of the signed federation list (gemSpec_VZD_FHIR_Directory, FederationList
// schema). Real lists deviate from the schema; the parser follows the lists, not the schema.
type FederationDomain struct {
	Domain      string   `json:"domain"`
	TelematikID string   `json:"telematikID"`
	IsInsurance bool     `json:"isInsurance"`
	IK          []string `json:"ik"`
	// TimAnbieter is the provider's ITSM assignment group; null in many real entries.
	TimAnbieter string `json:"timAnbieter,omitempty"`
}

// FederationList is a verified federation list. It is immutable once returned; callers swap whole lists.
type FederationList struct {
	Version int64
	// JWS holds the original compact JWS bytes exactly as received, so proxies can pass them on and
	// re-verify them themselves.
	JWS       []byte
	Algorithm JWSAlgorithm
	Signer    *Certificate
	Chain     []*Certificate
	domains   map[string]*FederationDomain
	ordered   []*FederationDomain
}

// Lookup finds a domain (case-insensitively, as DNS names compare). O(1).
func (l *FederationList) Lookup(domain string) (FederationDomain, bool) {
	if l == nil {
		return FederationDomain{}, false
	}
	d, ok := l.domains[strings.ToLower(domain)]
	if !ok {
		return FederationDomain{}, false
	}
	return *d, true
}

// Len returns the number of domains.
func (l *FederationList) Len() int {
	if l == nil {
		return 0
	}
	return len(l.ordered)
}

// Domains returns the entries in list order (copies).
func (l *FederationList) Domains() []FederationDomain {
	out := make([]FederationDomain, len(l.ordered))
	for i, d := range l.ordered {
		out[i] = *d
	}
	return out
}

// InsuranceCount returns how many entries have isInsurance set.
func (l *FederationList) InsuranceCount() int {
	n := 0
	for _, d := range l.ordered {
		if d.IsInsurance {
			n++
		}
	}
	return n
}

// wireDomain accepts both spellings of the IK field: the schema's `ik` and the `iks` real lists use.
type wireDomain struct {
	Domain      *string  `json:"domain"`
	TelematikID *string  `json:"telematikID"`
	IsInsurance *bool    `json:"isInsurance"`
	IK          []string `json:"ik"`
	IKs         []string `json:"iks"`
	TimAnbieter *string  `json:"timAnbieter"`
}

type wireList struct {
	Version    *int64       `json:"version"`
	DomainList []wireDomain `json:"domainList"`
}

// ParseFederationListPayload decodes the JWS payload tolerantly: `ik` or legacy `iks`, `timAnbieter` may be
// null, unknown fields are ignored, an insurance entry without IK numbers is kept (13 of 18 in the real TU
// list). It refuses what would make lookups ambiguous: a missing version, an entry without domain, and
// duplicate domains.
func ParseFederationListPayload(payload []byte) (int64, []FederationDomain, error) {
	var w wireList
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&w); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrFederationListMalformed, err)
	}
	if dec.More() {
		return 0, nil, fmt.Errorf("%w: trailing data after payload", ErrFederationListMalformed)
	}
	if w.Version == nil || *w.Version < 0 {
		return 0, nil, fmt.Errorf("%w: missing or negative version", ErrFederationListMalformed)
	}
	out := make([]FederationDomain, 0, len(w.DomainList))
	seen := make(map[string]bool, len(w.DomainList))
	for i, e := range w.DomainList {
		if e.Domain == nil || strings.TrimSpace(*e.Domain) == "" {
			return 0, nil, fmt.Errorf("%w: domainList[%d] has no domain", ErrFederationListMalformed, i)
		}
		d := FederationDomain{Domain: *e.Domain}
		key := strings.ToLower(d.Domain)
		if seen[key] {
			return 0, nil, fmt.Errorf("%w: duplicate domain %q", ErrFederationListMalformed, d.Domain)
		}
		seen[key] = true
		if e.TelematikID != nil {
			d.TelematikID = *e.TelematikID
		}
		if e.IsInsurance != nil {
			d.IsInsurance = *e.IsInsurance
		}
		d.IK = append(append([]string(nil), e.IK...), e.IKs...)
		if e.TimAnbieter != nil {
			d.TimAnbieter = *e.TimAnbieter
		}
		out = append(out, d)
	}
	return *w.Version, out, nil
}

// FederationListOptions configure VerifyFederationList.
type FederationListOptions struct {
	// Trust holds the TI component CAs (GEM.KOMP-CA…) the signer must chain to.
	Trust *TrustStore
	// At is the time at which the signer chain is checked. Required.
	At time.Time
	// Revocation checks the signer (OCSP); nil means OCSP policy "off".
	Revocation RevocationChecker
	// Algorithms allowed in the header; empty means BP256R1 and ES256 (the two sigAlg values of the VZD).
	Algorithms []JWSAlgorithm
}

// VerifyFederationList verifies a compact JWS federation list and returns it with its domain index.
//
// Order: parse the JWS; require an allowed alg; verify the signature with x5c[0]; check the signer
// (digitalSignature, C.FD.SIG, admission role oid_vzd_ti 1.2.276.0.76.4.171) and its chain to the trust
// store at opts.At, with revocation per policy; only then parse the payload. A list is either verified
// completely or refused: nothing partial is ever returned.
func VerifyFederationList(ctx context.Context, jws []byte, opts FederationListOptions) (*FederationList, error) {
	if opts.Trust == nil {
		return nil, fmt.Errorf("federation list: %w: no trust store", ErrFederationListSigner)
	}
	raw := bytes.TrimSpace(jws)
	j, err := ParseCompactJWS(raw)
	if err != nil {
		return nil, fmt.Errorf("federation list: %w: %v", ErrFederationListMalformed, err)
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = []JWSAlgorithm{AlgBP256R1, AlgES256}
	}
	allowed := false
	for _, a := range algs {
		if j.Header.Alg == a {
			allowed = true
		}
	}
	if !allowed {
		return nil, fmt.Errorf("federation list: %w: algorithm %q not accepted", ErrFederationListSignature, j.Header.Alg)
	}
	if len(j.Header.X5C) == 0 {
		return nil, fmt.Errorf("federation list: %w: no x5c signer certificate", ErrFederationListSigner)
	}
	signer, err := j.VerifyX5C(j.Header.Alg)
	if err != nil {
		return nil, fmt.Errorf("federation list: %w: %v", ErrFederationListSignature, err)
	}
	chain, err := opts.Trust.Verify(ctx, signer, VerifyOptions{
		At:               opts.At,
		Intermediates:    j.Header.X5C[1:],
		KeyUsage:         KeyUsageDigitalSignature,
		CertificateTypes: []CertificateType{CertFDSIG},
		Role:             RoleVZDTI,
		Revocation:       opts.Revocation,
	})
	if err != nil {
		return nil, fmt.Errorf("federation list: %w: %w", ErrFederationListSigner, err)
	}
	version, domains, err := ParseFederationListPayload(j.Payload)
	if err != nil {
		return nil, fmt.Errorf("federation list: %w", err)
	}
	l := &FederationList{
		Version:   version,
		JWS:       append([]byte(nil), raw...),
		Algorithm: j.Header.Alg,
		Signer:    signer,
		Chain:     chain,
		domains:   make(map[string]*FederationDomain, len(domains)),
		ordered:   make([]*FederationDomain, len(domains)),
	}
	for i := range domains {
		d := &domains[i]
		l.ordered[i] = d
		l.domains[strings.ToLower(d.Domain)] = d
	}
	return l, nil
}

// SignFederationList produces a compact JWS federation list in the VZD's shape: header
// {"alg","x5c","typ":"JWT"}, payload {"version","domainList"} with `ik` arrays (never null).
func SignFederationList(signer crypto.Signer, alg JWSAlgorithm, chain []*Certificate, version int64, domains []FederationDomain) ([]byte, error) {
	type entry struct {
		Domain      string   `json:"domain"`
		TelematikID string   `json:"telematikID"`
		IsInsurance bool     `json:"isInsurance"`
		IK          []string `json:"ik"`
		TimAnbieter *string  `json:"timAnbieter"`
	}
	list := struct {
		Version    int64   `json:"version"`
		DomainList []entry `json:"domainList"`
	}{Version: version, DomainList: make([]entry, 0, len(domains))}
	for _, d := range domains {
		e := entry{Domain: d.Domain, TelematikID: d.TelematikID, IsInsurance: d.IsInsurance, IK: d.IK}
		if e.IK == nil {
			e.IK = []string{}
		}
		if d.TimAnbieter != "" {
			t := d.TimAnbieter
			e.TimAnbieter = &t
		}
		list.DomainList = append(list.DomainList, e)
	}
	payload, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("federation list: %w", err)
	}
	return SignCompactJWS(signer, alg, map[string]any{"typ": "JWT", "x5c": X5CHeader(chain...)}, payload)
}
