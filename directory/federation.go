package directory

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/timstack/timstack/certs"
)

// Domain is a TI-Messenger domain as the provider API carries it (I_VZD_TIM_Provider_Services `Domain`).
// timAnbieter is read-only and left out while unknown: the spec types it as a non-nullable string.
type Domain struct {
	Domain          string   `json:"domain"`
	TelematikID     string   `json:"telematikID"`
	IsInsurance     bool     `json:"isInsurance"`
	IK              []string `json:"ik,omitempty"`
	TimAnbieter     *string  `json:"timAnbieter,omitempty"`
	RedirectDomains []string `json:"redirectDomains,omitempty"`
}

// domainRecord is what the directory keeps per domain: the wire fields plus who registered it and whether
// federationCheck found its organisation inactive.
type domainRecord struct {
	Domain
	Provider      string    `json:"provider"`
	DeactivatedAt time.Time `json:"deactivatedAt,omitzero"`
}

// FederationError is a refusal of the provider API with the status gematik's OpenAPI gives for it.
type FederationError struct {
	Status    int
	Message   string
	Attribute string // the offending attribute, when there is one
}

func (e *FederationError) Error() string { return e.Message }

func fedErr(status int, attr, format string, args ...any) error {
	return &FederationError{Status: status, Attribute: attr, Message: fmt.Sprintf(format, args...)}
}

// ListSigner signs federation lists for one sigAlg.
type ListSigner struct {
	Alg    certs.JWSAlgorithm
	Signer crypto.Signer
	Chain  []*certs.Certificate // x5c: signer certificate first
}

// OrganizationChecker answers whether an active Organization carries the Telematik-ID (the provider API
// refuses domains of unknown or inactive organisations with 400).
type OrganizationChecker interface {
	ActiveOrganization(ctx context.Context, telematikID string) (bool, error)
}

// federationSnapshot is one published state: the domains and the precomputed signed lists. Readers load it
// atomically; a list is signed once per change, never per request.
type federationSnapshot struct {
	version int64
	domains map[string]*domainRecord
	lists   map[certs.JWSAlgorithm][]byte
}

type federationState struct {
	Version int64           `json:"version"`
	Domains []*domainRecord `json:"domains"`
}

const federationStateKey = "directory/federation"

// Federation keeps the TI-Messenger domains and the signed federation list.
type Federation struct {
	kv      KV
	orgs    OrganizationChecker
	signers []ListSigner
	now     func() time.Time

	mu   sync.Mutex // serialises changes; reads go through snap
	snap atomic.Pointer[federationSnapshot]
}

// NewFederation loads the stored domains and signs the current list with every signer.
func NewFederation(ctx context.Context, kv KV, notFound func(error) bool, orgs OrganizationChecker, signers []ListSigner, now func() time.Time) (*Federation, error) {
	if len(signers) == 0 {
		return nil, errors.New("federation: no list signer configured")
	}
	if now == nil {
		now = time.Now
	}
	f := &Federation{kv: kv, orgs: orgs, signers: signers, now: now}
	var st federationState
	data, err := kv.GetKV(ctx, federationStateKey)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("federation: stored state: %w", err)
		}
	case notFound(err):
		st.Version = 1
	default:
		return nil, fmt.Errorf("federation: %w", err)
	}
	snap, err := f.publish(st)
	if err != nil {
		return nil, err
	}
	f.snap.Store(snap)
	return f, nil
}

func (f *Federation) publish(st federationState) (*federationSnapshot, error) {
	snap := &federationSnapshot{version: st.Version, domains: map[string]*domainRecord{}, lists: map[certs.JWSAlgorithm][]byte{}}
	var listed []certs.FederationDomain
	for _, d := range st.Domains {
		snap.domains[d.Domain.Domain] = d
		if !d.DeactivatedAt.IsZero() {
			continue // a deactivated domain leaves the list until its organisation is active again
		}
		fd := certs.FederationDomain{Domain: d.Domain.Domain, TelematikID: d.TelematikID, IsInsurance: d.IsInsurance, IK: d.IK}
		if d.TimAnbieter != nil {
			fd.TimAnbieter = *d.TimAnbieter
		}
		listed = append(listed, fd)
	}
	sort.Slice(listed, func(i, j int) bool { return listed[i].Domain < listed[j].Domain })
	for _, s := range f.signers {
		jws, err := certs.SignFederationList(s.Signer, s.Alg, s.Chain, st.Version, listed)
		if err != nil {
			return nil, fmt.Errorf("federation: sign %s list: %w", s.Alg, err)
		}
		snap.lists[s.Alg] = jws
	}
	return snap, nil
}

// List returns the signed list for alg when the caller's version is older; (nil, version, nil) when the
// caller is current (204).
func (f *Federation) List(alg certs.JWSAlgorithm, have int64) ([]byte, int64, error) {
	snap := f.snap.Load()
	jws, ok := snap.lists[alg]
	if !ok {
		return nil, 0, fedErr(404, "sigAlg", "no federation list signed with %s is available", alg)
	}
	if have >= snap.version {
		return nil, snap.version, nil
	}
	return jws, snap.version, nil
}

// Version returns the current list version.
func (f *Federation) Version() int64 { return f.snap.Load().version }

// Domains returns the domains registered by provider ("" = all), or the one named domain.
func (f *Federation) Domains(provider, domain string) []Domain {
	snap := f.snap.Load()
	var out []Domain
	for _, d := range snap.domains {
		if (provider == "" || d.Provider == provider) && (domain == "" || d.Domain.Domain == domain) {
			out = append(out, d.Domain)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}

// change applies fn to a copy of the state under the lock, bumps the version, persists and publishes.
func (f *Federation) change(ctx context.Context, fn func(map[string]*domainRecord) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.snap.Load()
	next := make(map[string]*domainRecord, len(cur.domains))
	for k, v := range cur.domains {
		c := *v
		next[k] = &c
	}
	if err := fn(next); err != nil {
		return err
	}
	st := federationState{Version: cur.version + 1}
	for _, d := range next {
		st.Domains = append(st.Domains, d)
	}
	sort.Slice(st.Domains, func(i, j int) bool { return st.Domains[i].Domain.Domain < st.Domains[j].Domain.Domain })
	snap, err := f.publish(st)
	if err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := f.kv.PutKV(ctx, federationStateKey, data); err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	f.snap.Store(snap)
	return nil
}

// validate applies gematik's rules for a domain a provider adds or updates. existing holds the other
// domains (the one being updated excluded).
func (f *Federation) validate(ctx context.Context, d *Domain, existing map[string]*domainRecord) error {
	d.Domain = strings.ToLower(strings.TrimSpace(d.Domain))
	if err := validDomainName(d.Domain); err != nil {
		return fedErr(400, "domain", "domain: %v", err)
	}
	if strings.TrimSpace(d.TelematikID) == "" {
		return fedErr(400, "telematikID", "telematikID is required")
	}
	if d.IsInsurance && len(d.IK) == 0 {
		return fedErr(400, "ik", "ik is required when isInsurance is true")
	}
	if !d.IsInsurance && len(d.IK) > 0 {
		return fedErr(400, "ik", "ik is only allowed when isInsurance is true")
	}
	seen := map[string]bool{}
	for _, ik := range d.IK {
		if err := ValidateIK(ik); err != nil {
			return fedErr(400, "ik", "ik %q: %v", ik, err)
		}
		if seen[ik] {
			return fedErr(409, "ik", "ik %q is given twice", ik)
		}
		seen[ik] = true
	}
	for _, rd := range d.RedirectDomains {
		if err := validDomainName(strings.ToLower(rd)); err != nil {
			return fedErr(400, "redirectDomains", "redirectDomains %q: %v", rd, err)
		}
	}
	for _, other := range existing {
		for _, ik := range other.IK {
			if seen[ik] {
				return fedErr(409, "ik", "ik %q is already registered for another domain", ik)
			}
		}
	}
	if f.orgs != nil {
		ok, err := f.orgs.ActiveOrganization(ctx, d.TelematikID)
		if err != nil {
			return fmt.Errorf("federation: organisation lookup: %w", err)
		}
		if !ok {
			return fedErr(400, "telematikID", "no active Organization carries telematikID %q", d.TelematikID)
		}
	}
	d.TimAnbieter = nil // read-only: set by the VZD from the ITSM assignment, never by the caller
	return nil
}

// Add registers a new domain for provider (POST /federation).
func (f *Federation) Add(ctx context.Context, provider string, d Domain) (Domain, error) {
	err := f.change(ctx, func(m map[string]*domainRecord) error {
		if err := f.validate(ctx, &d, m); err != nil {
			return err
		}
		if _, dup := m[d.Domain]; dup {
			return fedErr(409, "domain", "domain %q is already registered", d.Domain)
		}
		m[d.Domain] = &domainRecord{Domain: d, Provider: provider}
		return nil
	})
	return d, err
}

// Update replaces a domain of provider (PUT /federation/{domain}); the path must equal the body.
func (f *Federation) Update(ctx context.Context, provider, path string, d Domain) (Domain, error) {
	if !strings.EqualFold(strings.TrimSpace(d.Domain), path) {
		return d, fedErr(400, "domain", "the domain in the path and in the body differ")
	}
	err := f.change(ctx, func(m map[string]*domainRecord) error {
		cur, ok := m[strings.ToLower(path)]
		if !ok {
			return fedErr(404, "domain", "domain %q is not registered", path)
		}
		if cur.Provider != provider {
			return fedErr(403, "domain", "domain %q belongs to another provider", path)
		}
		others := make(map[string]*domainRecord, len(m))
		for k, v := range m {
			if k != cur.Domain.Domain {
				others[k] = v
			}
		}
		if err := f.validate(ctx, &d, others); err != nil {
			return err
		}
		d.TimAnbieter = cur.TimAnbieter
		m[d.Domain] = &domainRecord{Domain: d, Provider: provider}
		return nil
	})
	return d, err
}

// Delete removes a domain of provider (DELETE /federation/{domain}).
func (f *Federation) Delete(ctx context.Context, provider, domain string) error {
	return f.change(ctx, func(m map[string]*domainRecord) error {
		cur, ok := m[strings.ToLower(domain)]
		if !ok {
			return fedErr(404, "domain", "domain %q is not registered", domain)
		}
		if cur.Provider != provider {
			return fedErr(403, "domain", "domain %q belongs to another provider", domain)
		}
		delete(m, cur.Domain.Domain)
		return nil
	})
}

// Check returns provider's domains whose organisation is no longer active (GET /federationCheck).
func (f *Federation) Check(ctx context.Context, provider string) ([]Domain, error) {
	var out []Domain
	for _, d := range f.Domains(provider, "") {
		if f.orgs == nil {
			break
		}
		ok, err := f.orgs.ActiveOrganization(ctx, d.TelematikID)
		if err != nil {
			return nil, fmt.Errorf("federation check: %w", err)
		}
		if !ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// validDomainName accepts a DNS name (optionally with port, as Matrix server names may carry one) of
// lower-case labels.
func validDomainName(s string) error {
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return errors.New("invalid port")
		}
		host = h
	}
	if host == "" || len(host) > 253 {
		return errors.New("empty or too long")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("invalid label %q", label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("invalid character %q", c)
			}
		}
	}
	return nil
}
