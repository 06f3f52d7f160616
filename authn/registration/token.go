package registration

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/timstack/timstack/certs"
)

// RegServiceClaims are the claims of a RegService-OpenID-Token (vzd-directory-spec §1.6).
type RegServiceClaims struct {
	Subject       string `json:"sub"` // the Org-Admin's MXID
	Issuer        string `json:"iss"` // this service's URL
	Audience      string `json:"aud"` // the directory's …/owner-authenticate
	ProfessionOID string `json:"professionOID"`
	IDNummer      string `json:"idNummer"` // Telematik-ID
	IssuedAt      int64  `json:"iat"`
	ExpiresAt     int64  `json:"exp"`
	JTI           string `json:"jti"`
}

// SignRegServiceToken signs claims as compact JWS BP256R1, typ JWT, x5c = chain (C.FD.SIG first).
func SignRegServiceToken(signer crypto.Signer, chain []*certs.Certificate, c RegServiceClaims) ([]byte, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("regservice token: %w", err)
	}
	jws, err := certs.SignCompactJWS(signer, certs.AlgBP256R1, map[string]any{"typ": "JWT", "x5c": certs.X5CHeader(chain...)}, payload)
	if err != nil {
		return nil, fmt.Errorf("regservice token: %w", err)
	}
	return jws, nil
}

type requestTokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// requestToken: POST /regservice/openid/user/{userId}/requesttoken?request_token=<Matrix OpenID token>
// (I_requestToken). The homeserver of userId must vouch for the token as exactly userId, and userId must
// be an Org-Admin's bound Matrix user. Every refusal is 400 {"error":"unauthorized"} as in the reference
// implementation; the log says which check refused.
//
// The token lives TokenLifetime (default 5 min): the Org-Admin client exchanges it at /owner-authenticate
// right away, and as a bearer token that cannot be revoked it should not outlive that exchange by much.
func (s *Service) requestToken(w http.ResponseWriter, r *http.Request) {
	refuse := func(reason string, args ...any) {
		s.log.Info("requesttoken refused", append([]any{"reason", reason}, args...)...)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unauthorized"})
	}
	userID, err := url.PathUnescape(chi.URLParam(r, "userId"))
	if err != nil {
		refuse("user id not decodable")
		return
	}
	_, server, err := ParseMXID(userID)
	if err != nil {
		refuse("user id invalid", "err", err.Error())
		return
	}
	token := r.URL.Query().Get("request_token")
	if token == "" {
		refuse("no request_token")
		return
	}
	ctx := r.Context()
	// The homeserver is asked only when userId belongs to an Org-Admin: no outbound call for arbitrary
	// server names (SSRF), and the bound MXID's domain is one of the organisation's own services.
	admin, err := s.deps.Store.AdminByMXID(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		refuse("not an Org-Admin's Matrix user", "user_id", userID)
		return
	}
	if err != nil {
		s.internal(w, "admin by mxid", err)
		return
	}
	got, err := s.deps.OpenID.Validate(ctx, token, server, userID)
	if err != nil {
		refuse("OpenID token not vouched for", "user_id", userID, "err", err.Error())
		return
	}
	if got != userID {
		refuse("OpenID token names another user", "user_id", userID)
		return
	}
	org, err := s.deps.Store.Organisation(ctx, admin.OrgID)
	if err != nil || len(org.TelematikIDs) == 0 {
		s.internal(w, "organisation", fmt.Errorf("organisation of admin %d: %v", admin.ID, err))
		return
	}
	now := s.now()
	jti, err := randomToken()
	if err != nil {
		s.internal(w, "jti", err)
		return
	}
	primary := org.TelematikIDs[0]
	life := s.cfg.Signer.TokenLifetime
	tok, err := SignRegServiceToken(s.deps.Signer, s.deps.SignerChain, RegServiceClaims{
		Subject: userID, Issuer: s.cfg.PublicURL, Audience: s.cfg.Directory.OwnerAuthenticateURL,
		ProfessionOID: primary.ProfessionOID, IDNummer: primary.ID,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(life).Unix(), JTI: jti,
	})
	if err != nil {
		s.internal(w, "sign", err)
		return
	}
	s.log.Info("RegService token issued", "user_id", userID, "telematik_id", primary.ID)
	writeJSON(w, http.StatusOK, requestTokenAnswer{AccessToken: string(tok), ExpiresIn: int64(life / time.Second), TokenType: "Bearer"})
}
