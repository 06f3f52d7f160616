package registration

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/authn/matrixopenid"
	"github.com/timstack/timstack/certs"
)

// IdentityProvider is the relying party of the gematik IDP-Dienst (*idp.RelyingParty satisfies it):
// Begin starts an authorization-code flow for the SMC-B and returns the URL for the Authenticator;
// Complete redeems the code and returns the verified identity.
type IdentityProvider interface {
	Begin(ctx context.Context, opts idp.BeginOptions) (authURL, state string, err error)
	Complete(ctx context.Context, state, code string) (*idp.Identity, error)
}

// DirectoryAPI is the part of the VZD provider API the service changes (DirectoryClient satisfies it).
type DirectoryAPI interface {
	AddDomain(ctx context.Context, d Domain) (Domain, error)
	DeleteDomain(ctx context.Context, domain string) error
	FederationCheck(ctx context.Context) ([]Domain, error)
}

// OpenIDValidator validates a Matrix OpenID token at the homeserver serverName (openid/userinfo); when
// wantMXID is set the user must be exactly that one. It returns the user the homeserver vouches for.
type OpenIDValidator interface {
	Validate(ctx context.Context, token, serverName, wantMXID string) (mxid string, err error)
}

// Deps are the service's collaborators; cmd builds them from the Config.
type Deps struct {
	Store     Store
	IDP       IdentityProvider
	Directory DirectoryAPI
	Lists     ListSource
	OpenID    OpenIDValidator
	// ListTrust anchors the federation list signer; ListRevocation checks it (nil: no OCSP).
	ListTrust      *certs.TrustStore
	ListRevocation certs.RevocationChecker
	// Signer and SignerChain (C.FD.SIG with role oid_tim first, then optionally its CA) sign RegService tokens.
	Signer      crypto.Signer
	SignerChain []*certs.Certificate
	// ProxyTokens, when not empty, are the bearer tokens accepted at /backend/federation.
	ProxyTokens []string
	Log         *slog.Logger
	Now         func() time.Time
}

// Service is the TI-M registration service.
type Service struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	now    func() time.Time
	keeper *ListKeeper

	mu       sync.Mutex
	auths    map[string]authIntent // IDP state → what the sign-in is for
	pendings map[string]*pending   // pending id → sign-in waiting for its TOTP code
}

type authKind int

const (
	authLogin authKind = iota
	authLink
)

// authIntent remembers why a sign-in was started: a login, or linking a further Telematik-ID to adminID.
type authIntent struct {
	kind    authKind
	adminID int64
	expires time.Time
}

// pending is an IDP sign-in that still needs its TOTP code.
type pending struct {
	adminID  int64
	enrol    bool
	expires  time.Time
	attempts int
}

const (
	authIntentLifetime = 10 * time.Minute // the IDP's own state lifetime
	pendingLifetime    = 5 * time.Minute
	maxTOTPAttempts    = 5
	maxBodyBytes       = 64 << 10
	// AudienceSuffix documents the default aud of RegService tokens.
	totpIssuer = "timstack TI-M Registrierung"
)

// New checks the dependencies and builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Store == nil || deps.IDP == nil || deps.Directory == nil || deps.Lists == nil || deps.OpenID == nil {
		return nil, errors.New("registration: Store, IDP, Directory, Lists and OpenID are required")
	}
	if deps.ListTrust == nil {
		return nil, errors.New("registration: no trust anchors for the federation list")
	}
	if err := checkSigner(deps.Signer, deps.SignerChain); err != nil {
		return nil, fmt.Errorf("registration: signer: %w", err)
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Log, now: deps.Now,
		auths: map[string]authIntent{}, pendings: map[string]*pending{}}
	s.keeper = &ListKeeper{Source: deps.Lists, Store: deps.Store, Trust: deps.ListTrust, Revocation: deps.ListRevocation,
		MaxAge: cfg.FederationList.MaxAge, Now: deps.Now, Log: deps.Log}
	return s, nil
}

// professionUse is the IDP profession policy of the variant: pro admits institution OIDs (SMC-B,
// GS-A_4443), epa only Betriebsstätte Kostenträger (1.2.276.0.76.4.59).
func professionUse(variant string) idp.Use {
	if variant == "epa" {
		return idp.UseOrgRegistrationEPA
	}
	return idp.UseOrgRegistrationPro
}

// checkSigner requires a C.FD.SIG certificate with role oid_tim on a brainpool key that is signer's.
func checkSigner(signer crypto.Signer, chain []*certs.Certificate) error {
	if signer == nil || len(chain) == 0 {
		return errors.New("key and certificate are required")
	}
	leaf := chain[0]
	if leaf.CertificateType() != certs.CertFDSIG {
		return fmt.Errorf("certificate type is %q, want C.FD.SIG", leaf.CertificateType())
	}
	if !leaf.HasRole(certs.RoleTIM) {
		return fmt.Errorf("certificate lacks role oid_tim (%s)", certs.RoleTIM)
	}
	if leaf.Curve() != "brainpoolP256r1" {
		return fmt.Errorf("certificate key is %q, RegService tokens are BP256R1", leaf.Curve())
	}
	a, err1 := certs.MarshalPKIXPublicKey(signer.Public())
	b, err2 := certs.MarshalPKIXPublicKey(leaf.PublicKey)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		return errors.New("the key does not belong to the certificate")
	}
	return nil
}

// Keeper is the federation list keeper (for the CLI and tests).
func (s *Service) Keeper() *ListKeeper { return s.keeper }

// Run runs the background jobs until ctx ends: the federation list refresh and the daily federationCheck.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.keeper.Run(ctx, RefreshSchedule{Interval: s.cfg.FederationList.Interval, RetryInterval: s.cfg.FederationList.RetryInterval,
			Retries: derefInt(s.cfg.FederationList.Retries, 3)}, nil)
	}()
	go func() {
		defer wg.Done()
		for {
			if err := s.FederationCheck(ctx); err != nil {
				s.log.Error("federation check failed", "err", err)
			}
			_ = s.deps.Store.DeleteExpiredSessions(ctx, s.now())
			s.sweep()
			if !sleepCtx(ctx, s.cfg.FederationCheck.Interval) {
				return
			}
		}
	}()
	wg.Wait()
}

func derefInt(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// sweep forgets expired sign-ins.
func (s *Service) sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.auths {
		if now.After(v.expires) {
			delete(s.auths, k)
		}
	}
	for k, v := range s.pendings {
		if now.After(v.expires) {
			delete(s.pendings, k)
		}
	}
}

// Handler returns all routes: the Org-Admin API (/registration/v1), I_internVerification
// (/backend/federation), I_requestToken (/regservice/openid/…) and /tim-information.
func (s *Service) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					s.log.Error("handler panicked", "path", req.URL.Path, "panic", fmt.Sprint(v))
					writeError(w, http.StatusInternalServerError, "internal", "internal error")
				}
			}()
			next.ServeHTTP(w, req)
		})
	})
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "unknown path")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Route("/registration/v1", func(r chi.Router) {
		r.Get("/login", s.login)
		r.Get("/callback", s.callback)
		r.Post("/totp", s.totp)
		r.Group(func(r chi.Router) {
			r.Use(s.requireSession)
			r.Post("/logout", s.logout)
			r.Get("/org-admin", s.me)
			r.Put("/org-admin/mxid", s.bindMXID)
			r.Post("/telematik-ids", s.startLink)
			r.Delete("/telematik-ids/{telematikID}", s.unlink)
			r.Get("/messenger-services", s.listServices)
			r.Post("/messenger-services", s.addService)
			r.Delete("/messenger-services/{domain}", s.deleteService)
		})
	})
	r.Get("/backend/federation", s.backendFederation)
	r.Post("/regservice/openid/user/{userId}/requesttoken", s.requestToken)
	r.Route("/tim-information", s.informationRoutes)
	return r
}

// apiError is the registration API's error body.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: code, Message: msg})
}

// randomToken returns 32 random bytes, base64url.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// decodeJSON reads a strict JSON body of at most maxBodyBytes into v.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: trailing data")
	}
	return nil
}

// The real collaborators satisfy the service's interfaces.
var (
	_ IdentityProvider = (*idp.RelyingParty)(nil)
	_ OpenIDValidator  = (*matrixopenid.Validator)(nil)
	_ DirectoryAPI     = (*DirectoryClient)(nil)
	_ ListSource       = (*DirectoryClient)(nil)
)

// Federated reports whether serverName is on the verified federation list (false when the list is
// outdated or missing: fail closed). It is the Federated gate of the Matrix OpenID validator.
func (s *Service) Federated(serverName string) bool {
	ctx := context.Background()
	if out, _ := s.keeper.Outdated(ctx); out {
		return false
	}
	_, l, err := s.keeper.Current(ctx)
	if err != nil {
		return false
	}
	_, ok := l.Lookup(strings.ToLower(serverName))
	return ok
}
