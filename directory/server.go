package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory/fhir"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/search"
)

// Store is what the directory needs of its storage (package store satisfies it).
type Store interface {
	search.Searcher
	KV
	Get(ctx context.Context, typ, id string) (index.Resource, error)
	Put(ctx context.Context, rs ...index.Resource) ([]index.Resource, error)
	Delete(ctx context.Context, typ, id string) error
}

// Config configures the directory server.
type Config struct {
	// BaseURL is the public base URL (fullUrl of entries, token audiences), e.g. https://vzd.example.
	BaseURL string `yaml:"base_url"`
	// MaxBodyBytes limits request bodies (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// SearchTimeout bounds one search request against the store (default 30 s, gematik's server limit).
	SearchTimeout time.Duration `yaml:"search_timeout"`
}

// Deps are the directory's collaborators, built by cmd.
type Deps struct {
	Store Store
	// NotFound tells whether a store error means "absent" (store.ErrNotFound).
	NotFound    func(error) bool
	ListSigners []ListSigner
	OpenID      OpenIDVerifier
	// RegServiceTrust anchors the certificates (C.FD.SIG, role oid_tim) that sign RegService-OpenID-Tokens
	// presented at /owner-authenticate. Nil: that form of /owner-authenticate answers 401.
	RegServiceTrust *certs.TrustStore
	// RegServiceRevocation checks those certificates (OCSP); nil means not checked.
	RegServiceRevocation certs.RevocationChecker
	// OwnerLogin is the gematik IDP login of /owner-authenticate without a header. Nil: 401.
	OwnerLogin OwnerLogin
	Log        *slog.Logger
	Now        func() time.Time
	Version    string
}

// Server is the directory's HTTP surface.
type Server struct {
	cfg    Config
	deps   Deps
	tokens *Tokens
	fed    *Federation
	log    *slog.Logger
}

// New builds the server: token key and federation state are loaded (or created) from the store.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("directory: base_url is required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.SearchTimeout == 0 {
		cfg.SearchTimeout = 30 * time.Second
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	key, err := LoadOrCreateTokenKey(ctx, deps.Store, deps.NotFound)
	if err != nil {
		return nil, err
	}
	tokens, err := NewTokens(cfg.BaseURL, key, deps.Now)
	if err != nil {
		return nil, err
	}
	fed, err := NewFederation(ctx, deps.Store, deps.NotFound, StoreOrganizations{Store: deps.Store}, deps.ListSigners, deps.Now)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, deps: deps, tokens: tokens, fed: fed, log: deps.Log}, nil
}

// Tokens exposes the token service (the CLI mints operator tokens with it).
func (s *Server) Tokens() *Tokens { return s.tokens }

// Federation exposes the federation domains.
func (s *Server) Federation() *Federation { return s.fed }

// Handler returns the directory's routes.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	// A panicking handler must still answer (500 OperationOutcome, cause logged) instead of dropping the
	// connection; http.ErrAbortHandler keeps its meaning (abort the response on purpose).
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					s.log.Error("handler panicked", "path", req.URL.Path, "panic", fmt.Sprint(v))
					writeOutcome(w, http.StatusInternalServerError, fhir.NewIssue(fhir.CodeException, "", "internal error"))
				}
			}()
			next.ServeHTTP(w, req)
		})
	})
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeOutcome(w, http.StatusNotFound, fhir.NewIssue(fhir.CodeNotFound, "", "unknown path"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeOutcome(w, http.StatusMethodNotAllowed, fhir.NewIssue(fhir.CodeNotSupported, "", "method not allowed"))
	})
	r.Get("/metadata", s.metadata)
	r.Route("/search", func(r chi.Router) { s.searchRoutes(r, TokenSearch, false) })
	r.Route("/fdv/search", func(r chi.Router) { s.searchRoutes(r, TokenFdV, true) })
	r.Route("/owner", s.ownerRoutes)
	auth := &authAPI{fed: s.fed, tokens: s.tokens, openid: s.deps.OpenID, clients: KVClients{KV: s.deps.Store}, log: s.log}
	r.Get("/tim-authenticate", auth.timAuthenticate)
	r.Get("/ti-provider-authenticate", auth.tiProviderAuthenticate)
	owner := &ownerAuthAPI{base: s.cfg.BaseURL, tokens: s.tokens, trust: s.deps.RegServiceTrust, revocation: s.deps.RegServiceRevocation,
		login: s.deps.OwnerLogin, now: s.deps.Now, log: s.log}
	r.Get("/owner-authenticate", owner.ownerAuthenticate)
	r.Get("/signin-gematik-idp-dienst", owner.signinGematikIDP)
	r.Post("/auth/realms/TI-Provider/protocol/openid-connect/token", auth.clientCredentials)
	prov := &providerAPI{fed: s.fed, tokens: s.tokens, locator: storeLocator{store: s.deps.Store}, log: s.log, version: s.deps.Version, maxBytes: s.cfg.MaxBodyBytes}
	r.Route("/tim-provider-services", prov.routes)
	return r
}

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(fhir.CapabilityStatement(fhir.CapabilityOptions{
		SoftwareName:    "timstack directory",
		SoftwareVersion: s.deps.Version,
		BaseURL:         s.cfg.BaseURL + "/search",
		Description:     "timstack VZD-FHIR-Directory (FHIR R4): search API",
		Date:            s.deps.Now(),
		Includes: map[string][]string{
			index.PractitionerRole:  {"PractitionerRole:practitioner", "PractitionerRole:location", "PractitionerRole:endpoint", "*"},
			index.HealthcareService: {"HealthcareService:organization", "HealthcareService:location", "HealthcareService:endpoint", "*"},
		},
		RevIncludes: map[string][]string{index.Endpoint: {"HealthcareService:endpoint"}},
	}))
}

// searchRoutes serves /search (kind search) and /fdv/search (kind fdv, insured: hide-versicherte filtered).
func (s *Server) searchRoutes(r chi.Router, kind TokenKind, insured bool) {
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if _, err := s.tokens.Verify(bearer(req), kind); err != nil {
				s.log.Info("search token refused", "reason", err.Error(), "path", req.URL.Path)
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				writeOutcome(w, http.StatusUnauthorized, fhir.NewIssue(fhir.CodeLogin, "", "a valid search access token is required"))
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	base := s.cfg.BaseURL + "/search"
	if insured {
		base = s.cfg.BaseURL + "/fdv/search"
	}
	r.Get("/{type}", func(w http.ResponseWriter, req *http.Request) {
		s.search(w, req, chi.URLParam(req, "type"), search.Options{Mandatory: true, Insured: insured}, base)
	})
	r.Get("/{type}/{id}", func(w http.ResponseWriter, req *http.Request) {
		s.read(w, req, chi.URLParam(req, "type"), chi.URLParam(req, "id"))
	})
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, typ string, opts search.Options, base string) {
	req, err := search.ParseQuery(typ, r.URL.RawQuery, opts)
	if err != nil {
		s.searchError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SearchTimeout)
	defer cancel()
	page, err := search.Execute(ctx, s.deps.Store, req, base)
	if err != nil {
		s.searchError(w, err)
		return
	}
	body, err := page.BundleJSON(base)
	if err != nil {
		s.searchError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(body)
}

// read serves GET /search/{type}/{id}: unfiltered, as on the VZD (clients check active/status).
func (s *Server) read(w http.ResponseWriter, r *http.Request, typ, id string) {
	if _, ok := index.Lookup(typ, "_id"); !ok {
		writeOutcome(w, http.StatusNotFound, fhir.NewIssue(fhir.CodeNotSupported, "", "unknown resource type"))
		return
	}
	res, err := s.deps.Store.Get(r.Context(), typ, id)
	if err != nil {
		if s.deps.NotFound(err) {
			writeOutcome(w, http.StatusNotFound, fhir.NewIssue(fhir.CodeNotFound, "", "resource not found"))
			return
		}
		s.searchError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(res.JSON)
}

// searchError is the one place search failures become OperationOutcomes: parameter problems are the
// client's (400, naming the parameter), everything else is logged and answered without detail.
func (s *Server) searchError(w http.ResponseWriter, err error) {
	var se *search.Error
	switch {
	case errors.As(err, &se):
		code := fhir.CodeInvalid
		switch se.Code {
		case search.CodeNotSupported:
			code = fhir.CodeNotSupported
		case search.CodeTooCostly:
			code = fhir.CodeTooCostly
		}
		writeOutcome(w, http.StatusBadRequest, fhir.NewIssue(code, se.Param, se.Message))
	case errors.Is(err, context.DeadlineExceeded):
		writeOutcome(w, http.StatusServiceUnavailable, fhir.NewIssue(fhir.CodeTooCostly, "", "the search took too long"))
	default:
		s.log.Error("search failed", "err", err)
		writeOutcome(w, http.StatusInternalServerError, fhir.NewIssue(fhir.CodeException, "", "internal error"))
	}
}

func writeOutcome(w http.ResponseWriter, status int, issues ...fhir.Issue) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = w.Write(fhir.OperationOutcome(issues))
}

// StoreOrganizations answers OrganizationChecker from the store: an Organization with the Telematik-ID
// identifier and active=true.
type StoreOrganizations struct{ Store search.Searcher }

// ActiveOrganization implements OrganizationChecker.
func (o StoreOrganizations) ActiveOrganization(ctx context.Context, telematikID string) (bool, error) {
	res, err := o.Store.Search(ctx, index.Query{Type: index.Organization, Limit: 1, Where: index.And{
		index.Token{Param: "identifier", System: fhir.SystemTelematikID, Code: telematikID},
		index.Token{Param: "active", AnySystem: true, Code: "true"},
	}})
	if err != nil {
		return false, err
	}
	return len(res.IDs) > 0, nil
}

// storeLocator answers /localization: which directory part references an endpoint with the MXID.
type storeLocator struct{ store search.Searcher }

func (l storeLocator) Localize(r *http.Request, mxid string) (string, error) {
	addr, err := fhir.NormalizeMXID(mxid)
	if err != nil {
		return "", fedErr(400, "mxid", "mxid is not a Matrix user ID in matrix:u/ form")
	}
	ctx := r.Context()
	eps, err := l.store.Search(ctx, index.Query{Type: index.Endpoint, Limit: 100, Where: index.And{
		index.String{Param: "address", Value: strings.ToLower(addr), Mode: index.StringExact},
	}})
	if err != nil {
		return "", fmt.Errorf("localization: %w", err)
	}
	if len(eps.IDs) == 0 {
		return "none", nil
	}
	targets := make([]index.Ref, len(eps.IDs))
	for i, id := range eps.IDs {
		targets[i] = index.Ref{Type: index.Endpoint, ID: id}
	}
	pract, err := l.store.ReferencedBy(ctx, index.PractitionerRole, "endpoint", targets)
	if err != nil {
		return "", fmt.Errorf("localization: %w", err)
	}
	org, err := l.store.ReferencedBy(ctx, index.HealthcareService, "endpoint", targets)
	if err != nil {
		return "", fmt.Errorf("localization: %w", err)
	}
	switch {
	case len(pract) > 0 && len(org) > 0:
		return "orgPract", nil
	case len(pract) > 0:
		return "pract", nil
	case len(org) > 0:
		return "org", nil
	}
	return "none", nil
}
