package directory

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/timstack/timstack/certs"
)

// providerError is gematik's Error schema of the provider and auth interfaces: {message, errors[]}.
type providerError struct {
	Message string            `json:"message"`
	Errors  []providerAttrErr `json:"errors,omitempty"`
}

type providerAttrErr struct {
	AttributeName  string `json:"attributeName"`
	AttributeError string `json:"attributeError"`
}

// writeProviderError is the one writer of the provider and auth interfaces' errors. Internal errors are
// logged and answered with a fixed message.
func writeProviderError(w http.ResponseWriter, log *slog.Logger, err error) {
	var fe *FederationError
	body := providerError{Message: "internal error"}
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &fe):
		status, body.Message = fe.Status, fe.Message
		if fe.Attribute != "" {
			body.Errors = []providerAttrErr{{AttributeName: fe.Attribute, AttributeError: fe.Message}}
		}
	case errors.Is(err, ErrTokenInvalid):
		status, body.Message = http.StatusUnauthorized, "invalid or missing bearer token"
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	default:
		log.Error("provider API failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// bearer extracts the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// providerAPI serves /tim-provider-services (I_VZD_TIM_Provider_Services v1.4.0).
type providerAPI struct {
	fed      *Federation
	tokens   *Tokens
	locator  Locator
	log      *slog.Logger
	version  string
	maxBytes int64
}

// Locator answers the localization question: in which directory part is an MXID's endpoint referenced.
type Locator interface {
	Localize(r *http.Request, mxid string) (string, error) // org, pract, orgPract or none
}

func (p *providerAPI) routes(r chi.Router) {
	r.Get("/", p.getInfo)
	r.Group(func(r chi.Router) {
		r.Use(p.requireProvider)
		r.Get("/FederationList/federationList.jws", p.getFederationList)
		r.Get("/localization", p.whereIs)
		r.Post("/federation", p.addDomain)
		r.Get("/federation", p.getDomains)
		r.Put("/federation/{domain}", p.updateDomain)
		r.Delete("/federation/{domain}", p.deleteDomain)
		r.Get("/federationCheck", p.checkDomains)
	})
}

type providerKey struct{}

func (p *providerAPI) requireProvider(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := p.tokens.Verify(bearer(r), TokenProvider)
		if err != nil {
			p.log.Info("provider token refused", "reason", err.Error())
			writeProviderError(w, p.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), providerKey{}, c.Subject)))
	})
}

func providerOf(r *http.Request) string { s, _ := r.Context().Value(providerKey{}).(string); return s }

// getInfo: GET /tim-provider-services/ — no authentication (HOWTO Provider).
func (p *providerAPI) getInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"title":       "timstack VZD-FHIR-Directory: I_VZD_TIM_Provider_Services",
		"description": "TI-Messenger federation list, domain administration and MXID localization",
		"version":     p.version,
	})
}

// getFederationList: GET /FederationList/federationList.jws?version=&sigAlg= — the precomputed compact JWS,
// 204 when the caller already holds the current version.
func (p *providerAPI) getFederationList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "version" && k != "sigAlg" {
			writeProviderError(w, p.log, fedErr(400, k, "unknown parameter %q", k))
			return
		}
	}
	alg := certs.AlgBP256R1
	if s := q.Get("sigAlg"); s != "" {
		if s != string(certs.AlgBP256R1) && s != string(certs.AlgES256) {
			writeProviderError(w, p.log, fedErr(400, "sigAlg", "sigAlg must be BP256R1 or ES256"))
			return
		}
		alg = certs.JWSAlgorithm(s)
	}
	have := int64(-1)
	if s := q.Get("version"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			writeProviderError(w, p.log, fedErr(400, "version", "version must be a non-negative integer"))
			return
		}
		have = v
	}
	jws, version, err := p.fed.List(alg, have)
	if err != nil {
		writeProviderError(w, p.log, err)
		return
	}
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
	if jws == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(jws)))
	_, _ = w.Write(jws)
}

// whereIs: GET /localization?mxid=matrix:u/localpart:domain → "org" | "pract" | "orgPract" | "none".
func (p *providerAPI) whereIs(w http.ResponseWriter, r *http.Request) {
	mxid := r.URL.Query().Get("mxid")
	if mxid == "" {
		writeProviderError(w, p.log, fedErr(400, "mxid", "mxid is required"))
		return
	}
	if p.locator == nil {
		writeProviderError(w, p.log, errors.New("localization: no locator configured"))
		return
	}
	where, err := p.locator.Localize(r, mxid)
	if err != nil {
		writeProviderError(w, p.log, err)
		return
	}
	writeJSON(w, http.StatusOK, where)
}

func (p *providerAPI) readDomain(w http.ResponseWriter, r *http.Request) (Domain, bool) {
	var d Domain
	dec := json.NewDecoder(io.LimitReader(r.Body, p.maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		writeProviderError(w, p.log, fedErr(400, "", "request body is not a Domain: %v", err))
		return d, false
	}
	return d, true
}

func (p *providerAPI) addDomain(w http.ResponseWriter, r *http.Request) {
	d, ok := p.readDomain(w, r)
	if !ok {
		return
	}
	out, err := p.fed.Add(r.Context(), providerOf(r), d)
	if err != nil {
		writeProviderError(w, p.log, err)
		return
	}
	p.log.Info("federation domain added", "domain", out.Domain, "provider", providerOf(r), "version", p.fed.Version())
	writeJSON(w, http.StatusOK, out)
}

func (p *providerAPI) getDomains(w http.ResponseWriter, r *http.Request) {
	domain := strings.ToLower(r.URL.Query().Get("domain"))
	out := p.fed.Domains(providerOf(r), domain)
	if domain != "" && len(out) == 0 {
		writeProviderError(w, p.log, fedErr(404, "domain", "domain %q is not registered for this provider", domain))
		return
	}
	if out == nil {
		out = []Domain{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *providerAPI) updateDomain(w http.ResponseWriter, r *http.Request) {
	d, ok := p.readDomain(w, r)
	if !ok {
		return
	}
	out, err := p.fed.Update(r.Context(), providerOf(r), chi.URLParam(r, "domain"), d)
	if err != nil {
		writeProviderError(w, p.log, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *providerAPI) deleteDomain(w http.ResponseWriter, r *http.Request) {
	if err := p.fed.Delete(r.Context(), providerOf(r), chi.URLParam(r, "domain")); err != nil {
		writeProviderError(w, p.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkDomains: GET /federationCheck → 200 {inactiveOrganizationDomains} or 204 when all are fine.
func (p *providerAPI) checkDomains(w http.ResponseWriter, r *http.Request) {
	inactive, err := p.fed.Check(r.Context(), providerOf(r))
	if err != nil {
		writeProviderError(w, p.log, err)
		return
	}
	if len(inactive) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Domain{"inactiveOrganizationDomains": inactive})
}
