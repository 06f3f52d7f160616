package registration

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/timstack/timstack/authn/idp"
)

type adminKey struct{}

// sessionAdmin is the signed-in Org-Admin of a request that passed requireSession.
func sessionAdmin(r *http.Request) *OrgAdmin {
	a, _ := r.Context().Value(adminKey{}).(*OrgAdmin)
	return a
}

func (s *Service) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="registration"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a session token is required")
			return
		}
		se, err := s.deps.Store.SessionByHash(r.Context(), hashToken(tok), s.now())
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.log.Error("session lookup failed", "err", err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="registration", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "the session is unknown or expired")
			return
		}
		admin, err := s.deps.Store.Admin(r.Context(), se.AdminID)
		if err != nil {
			s.log.Error("session admin lookup failed", "err", err)
			writeError(w, http.StatusUnauthorized, "unauthorized", "the session's account is gone")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminKey{}, admin)))
	})
}

// begin starts an IDP sign-in with the SMC-B and remembers its purpose.
func (s *Service) begin(ctx context.Context, intent authIntent) (string, error) {
	authURL, state, err := s.deps.IDP.Begin(ctx, idp.BeginOptions{CardType: idp.CardTypeSMCB})
	if err != nil {
		return "", err
	}
	intent.expires = s.now().Add(authIntentLifetime)
	s.mu.Lock()
	s.auths[state] = intent
	s.mu.Unlock()
	return authURL, nil
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// login: GET /registration/v1/login → 302 to the IDP (or {"authURL"} for Accept: application/json).
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	authURL, err := s.begin(r.Context(), authIntent{kind: authLogin})
	if err != nil {
		s.log.Error("IDP sign-in could not start", "err", err)
		writeError(w, http.StatusBadGateway, "idp_unavailable", "the IDP-Dienst could not be reached")
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"authURL": authURL})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

// enrolment is the TOTP set-up the first sign-in answers with.
type enrolment struct {
	Secret     string `json:"secret"`
	OtpauthURI string `json:"otpauthURI"`
}

type callbackAnswer struct {
	Pending          string     `json:"pending"`
	ExpiresIn        int64      `json:"expires_in"`
	TelematikID      string     `json:"telematikID"`
	OrganizationName string     `json:"organizationName,omitempty"`
	Created          bool       `json:"created"`
	TOTPEnrolment    *enrolment `json:"totpEnrolment,omitempty"`
}

// callback: GET /registration/v1/callback?code&state — redeems the IDP code, then signs in (pending TOTP),
// creates the organisation on its first sign-in, or links a further Telematik-ID.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	s.mu.Lock()
	intent, ok := s.auths[state]
	delete(s.auths, state)
	s.mu.Unlock()
	if state == "" || !ok || s.now().After(intent.expires) {
		writeError(w, http.StatusBadRequest, "invalid_state", "unknown or expired sign-in")
		return
	}
	if e := q.Get("error"); e != "" || code == "" {
		s.log.Info("IDP sign-in refused", "error", truncate(e, 64))
		writeError(w, http.StatusUnauthorized, "idp_refused", "the IDP-Dienst did not authenticate the card")
		return
	}
	id, err := s.deps.IDP.Complete(r.Context(), state, code)
	if err != nil {
		s.log.Info("IDP sign-in failed", "reason", err.Error())
		writeError(w, http.StatusUnauthorized, "idp_refused", "the IDP sign-in could not be verified")
		return
	}
	if strings.TrimSpace(id.TelematikID) == "" {
		writeError(w, http.StatusForbidden, "no_telematik_id", "the ID token carries no idNummer")
		return
	}
	if err := idp.CheckProfession(id, professionUse(s.cfg.Variant)); err != nil {
		s.log.Info("sign-in refused by profession policy", "telematik_id", id.TelematikID, "reason", err.Error())
		writeError(w, http.StatusForbidden, "profession_refused", err.Error())
		return
	}
	if intent.kind == authLink {
		s.finishLink(w, r, intent.adminID, id)
		return
	}
	ctx := r.Context()
	org, err := s.deps.Store.OrganisationByTelematikID(ctx, id.TelematikID)
	switch {
	case errors.Is(err, ErrNotFound):
		s.signUp(w, r, id)
		return
	case err != nil:
		s.internal(w, "organisation lookup", err)
		return
	}
	admin, err := s.deps.Store.AdminByOrg(ctx, org.ID)
	if err != nil {
		s.internal(w, "admin lookup", err)
		return
	}
	ans := callbackAnswer{TelematikID: id.TelematikID, OrganizationName: org.Name}
	if !admin.TOTPConfirmed {
		// The enrolment was never finished: a fresh secret, shown once more.
		secret, err := NewTOTPSecret()
		if err == nil {
			err = s.deps.Store.ResetTOTP(ctx, admin.ID, secret)
		}
		if err != nil {
			s.internal(w, "totp reset", err)
			return
		}
		ans.TOTPEnrolment = &enrolment{Secret: TOTPSecretBase32(secret), OtpauthURI: TOTPURI(totpIssuer, id.TelematikID, secret)}
	}
	s.answerPending(w, admin.ID, ans)
}

// signUp creates the organisation and its Org-Admin for a Telematik-ID seen the first time, unless an
// organisation of the same name already has an admin ("Account existiert bereits": that admin links the
// card instead).
func (s *Service) signUp(w http.ResponseWriter, r *http.Request, id *idp.Identity) {
	ctx := r.Context()
	if strings.TrimSpace(id.OrganizationName) != "" {
		if _, err := s.deps.Store.OrganisationByName(ctx, id.OrganizationName); err == nil {
			s.log.Info("sign-up refused: organisation already has an Org-Admin", "telematik_id", id.TelematikID)
			writeError(w, http.StatusConflict, "account_exists",
				"Account existiert bereits: the organisation already has an Org-Admin, who can link this Telematik-ID")
			return
		} else if !errors.Is(err, ErrNotFound) {
			s.internal(w, "organisation lookup", err)
			return
		}
	}
	secret, err := NewTOTPSecret()
	if err != nil {
		s.internal(w, "totp secret", err)
		return
	}
	_, admin, err := s.deps.Store.CreateOrganisation(ctx, id.OrganizationName, TelematikID{ID: id.TelematikID, ProfessionOID: id.ProfessionOID}, secret, s.now())
	if errors.Is(err, ErrConflict) {
		writeError(w, http.StatusConflict, "account_exists", "Account existiert bereits")
		return
	}
	if err != nil {
		s.internal(w, "create organisation", err)
		return
	}
	s.log.Info("organisation created", "telematik_id", id.TelematikID, "profession_oid", id.ProfessionOID)
	s.answerPending(w, admin.ID, callbackAnswer{TelematikID: id.TelematikID, OrganizationName: id.OrganizationName, Created: true,
		TOTPEnrolment: &enrolment{Secret: TOTPSecretBase32(secret), OtpauthURI: TOTPURI(totpIssuer, id.TelematikID, secret)}})
}

func (s *Service) answerPending(w http.ResponseWriter, adminID int64, ans callbackAnswer) {
	pid, err := randomToken()
	if err != nil {
		s.internal(w, "pending id", err)
		return
	}
	s.mu.Lock()
	s.pendings[pid] = &pending{adminID: adminID, enrol: ans.TOTPEnrolment != nil, expires: s.now().Add(pendingLifetime)}
	s.mu.Unlock()
	ans.Pending, ans.ExpiresIn = pid, int64(pendingLifetime/time.Second)
	status := http.StatusOK
	if ans.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, ans)
}

type totpRequest struct {
	Pending string `json:"pending"`
	Code    string `json:"code"`
}

type sessionAnswer struct {
	Session   string `json:"session"`
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
}

// totp: POST /registration/v1/totp {pending, code} → session. A pending sign-in allows a few attempts.
func (s *Service) totp(w http.ResponseWriter, r *http.Request) {
	var req totpRequest
	if err := decodeJSON(r, &req); err != nil || req.Pending == "" || req.Code == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "pending and code are required")
		return
	}
	now := s.now()
	s.mu.Lock()
	p, ok := s.pendings[req.Pending]
	if ok && (now.After(p.expires) || p.attempts >= maxTOTPAttempts) {
		delete(s.pendings, req.Pending)
		ok = false
	}
	if ok {
		p.attempts++
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusUnauthorized, "invalid_pending", "unknown or expired sign-in; sign in with the card again")
		return
	}
	ctx := r.Context()
	admin, err := s.deps.Store.Admin(ctx, p.adminID)
	if err != nil {
		s.internal(w, "admin lookup", err)
		return
	}
	step, err := VerifyTOTP(admin.TOTPSecret, req.Code, now, admin.TOTPLastStep)
	if err == nil {
		err = s.deps.Store.UseTOTPStep(ctx, admin.ID, step) // conditional: a concurrent use of the step loses
	}
	if err != nil {
		if !errors.Is(err, ErrTOTPInvalid) && !errors.Is(err, ErrStale) {
			s.internal(w, "totp", err)
			return
		}
		s.log.Info("TOTP refused", "admin", admin.ID)
		writeError(w, http.StatusUnauthorized, "invalid_totp", "the code is wrong or was already used")
		return
	}
	s.mu.Lock()
	delete(s.pendings, req.Pending)
	s.mu.Unlock()
	tok, err := randomToken()
	if err != nil {
		s.internal(w, "session token", err)
		return
	}
	if err := s.deps.Store.CreateSession(ctx, Session{TokenHash: hashToken(tok), AdminID: admin.ID, ExpiresAt: now.Add(s.cfg.SessionLifetime)}); err != nil {
		s.internal(w, "session", err)
		return
	}
	s.log.Info("Org-Admin signed in", "admin", admin.ID, "enrolled", p.enrol)
	writeJSON(w, http.StatusOK, sessionAnswer{Session: tok, TokenType: "Bearer", ExpiresIn: int64(s.cfg.SessionLifetime / time.Second)})
}

// logout: POST /registration/v1/logout ends the session.
func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.deps.Store.DeleteSession(r.Context(), hashToken(bearer(r))); err != nil {
		s.internal(w, "logout", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type telematikIDAnswer struct {
	TelematikID   string    `json:"telematikID"`
	ProfessionOID string    `json:"professionOID"`
	LinkedAt      time.Time `json:"linkedAt"`
}

type meAnswer struct {
	OrganisationName string              `json:"organizationName"`
	TelematikIDs     []telematikIDAnswer `json:"telematikIDs"`
	MXID             string              `json:"user_id,omitempty"`
}

// me: GET /registration/v1/org-admin — the signed-in admin's organisation.
func (s *Service) me(w http.ResponseWriter, r *http.Request) {
	admin := sessionAdmin(r)
	org, err := s.deps.Store.Organisation(r.Context(), admin.OrgID)
	if err != nil {
		s.internal(w, "organisation", err)
		return
	}
	ans := meAnswer{OrganisationName: org.Name, MXID: admin.MXID, TelematikIDs: []telematikIDAnswer{}}
	for _, t := range org.TelematikIDs {
		ans.TelematikIDs = append(ans.TelematikIDs, telematikIDAnswer{TelematikID: t.ID, ProfessionOID: t.ProfessionOID, LinkedAt: t.LinkedAt})
	}
	writeJSON(w, http.StatusOK, ans)
}

// startLink: POST /registration/v1/telematik-ids → {authURL}: a sign-in with the further SMC-B, whose
// callback links its Telematik-ID to the admin's organisation (AF_10438).
func (s *Service) startLink(w http.ResponseWriter, r *http.Request) {
	authURL, err := s.begin(r.Context(), authIntent{kind: authLink, adminID: sessionAdmin(r).ID})
	if err != nil {
		s.log.Error("IDP sign-in could not start", "err", err)
		writeError(w, http.StatusBadGateway, "idp_unavailable", "the IDP-Dienst could not be reached")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"authURL": authURL})
}

func (s *Service) finishLink(w http.ResponseWriter, r *http.Request, adminID int64, id *idp.Identity) {
	ctx := r.Context()
	admin, err := s.deps.Store.Admin(ctx, adminID)
	if err != nil {
		s.internal(w, "admin lookup", err)
		return
	}
	err = s.deps.Store.LinkTelematikID(ctx, admin.OrgID, TelematikID{ID: id.TelematikID, ProfessionOID: id.ProfessionOID, LinkedAt: s.now()})
	if errors.Is(err, ErrConflict) {
		if org, e := s.deps.Store.OrganisationByTelematikID(ctx, id.TelematikID); e == nil && org.ID == admin.OrgID {
			writeJSON(w, http.StatusOK, map[string]any{"telematikID": id.TelematikID, "linked": true})
			return
		}
		writeError(w, http.StatusConflict, "account_exists", "Account existiert bereits: the Telematik-ID belongs to another organisation")
		return
	}
	if err != nil {
		s.internal(w, "link", err)
		return
	}
	s.log.Info("Telematik-ID linked", "admin", admin.ID, "telematik_id", id.TelematikID)
	writeJSON(w, http.StatusCreated, map[string]any{"telematikID": id.TelematikID, "linked": true})
}

// unlink: DELETE /registration/v1/telematik-ids/{telematikID} (not the organisation's first).
func (s *Service) unlink(w http.ResponseWriter, r *http.Request) {
	tid := chi.URLParam(r, "telematikID")
	err := s.deps.Store.UnlinkTelematikID(r.Context(), sessionAdmin(r).OrgID, tid)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "the Telematik-ID is not linked to this organisation")
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, "conflict", "the organisation's first Telematik-ID cannot be unlinked")
	case err != nil:
		s.internal(w, "unlink", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

type mxidRequest struct {
	UserID string `json:"user_id"`
}

// bindMXID: PUT /registration/v1/org-admin/mxid {user_id} binds the Matrix user that may request
// RegService tokens. It must live on one of the organisation's messenger services ("" unbinds).
func (s *Service) bindMXID(w http.ResponseWriter, r *http.Request) {
	var req mxidRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	admin := sessionAdmin(r)
	if req.UserID != "" {
		_, server, err := ParseMXID(req.UserID)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "user_id: "+err.Error())
			return
		}
		svc, err := s.deps.Store.Service(r.Context(), server)
		if errors.Is(err, ErrNotFound) || (err == nil && svc.OrgID != admin.OrgID) {
			writeError(w, http.StatusForbidden, "foreign_domain", "user_id must belong to one of the organisation's messenger services")
			return
		}
		if err != nil {
			s.internal(w, "service lookup", err)
			return
		}
	}
	err := s.deps.Store.SetMXID(r.Context(), admin.ID, req.UserID)
	if errors.Is(err, ErrConflict) {
		writeError(w, http.StatusConflict, "conflict", "the Matrix user is bound to another Org-Admin")
		return
	}
	if err != nil {
		s.internal(w, "bind mxid", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user_id": req.UserID})
}

func (s *Service) internal(w http.ResponseWriter, what string, err error) {
	s.log.Error("registration: "+what+" failed", "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
