package directory

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// authAPI serves the token endpoints: /tim-authenticate (I_VZD_TIM_Authenticate), /ti-provider-authenticate
// (I_VZD_TI_Provider_Authenticate_Service) and the client-credentials step we host in place of gematik's
// Keycloak realm TI-Provider.
type authAPI struct {
	fed     *Federation
	tokens  *Tokens
	openid  OpenIDVerifier
	clients ClientStore
	log     *slog.Logger
}

// ClientStore knows the registration services allowed to call the provider API (Keycloak's role).
type ClientStore interface {
	// ClientSecretHash returns the hex SHA-256 of the client's secret, or an error when unknown.
	ClientSecretHash(ctx context.Context, clientID string) (string, error)
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	ClientID    string `json:"client_id,omitempty"`
}

// timAuthenticate: GET /tim-authenticate?mxId=<server name> with header X-Matrix-OpenID-Token.
//
// The server name must be on our federation list; the homeserver's openid/userinfo must vouch for the
// token; the user it names must belong to that server. The search token's audience is /search, or
// /fdv/search for an insurance domain.
func (a *authAPI) timAuthenticate(w http.ResponseWriter, r *http.Request) {
	serverName := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("mxId")))
	token := r.Header.Get("X-Matrix-OpenID-Token")
	// I_VZD_TIM_Authenticate documents only 200, 401 and 503: every refusal of the caller is a 401 with
	// WWW-Authenticate, and the message says which check refused it.
	refuse := func(reason, message string) {
		a.log.Info("tim-authenticate refused", "reason", reason, "server_name", serverName)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, providerError{Message: message})
	}
	if serverName == "" || token == "" {
		refuse("mxId or token missing", "mxId and the X-Matrix-OpenID-Token header are required")
		return
	}
	d, ok := a.fed.snap.Load().domains[serverName]
	if !ok || !d.DeactivatedAt.IsZero() {
		refuse("domain not on federation list", "the server is not on the TI-Messenger federation list")
		return
	}
	userID, err := a.openid.UserInfo(r.Context(), serverName, token)
	switch {
	case errors.Is(err, ErrOpenIDRefused):
		refuse("homeserver refused the OpenID token", "the homeserver did not accept the OpenID token")
		return
	case err != nil:
		a.log.Warn("tim-authenticate: homeserver unreachable", "server_name", serverName, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, providerError{Message: "the homeserver could not be asked"})
		return
	}
	if got, ok := ServerNameOf(userID); !ok || !strings.EqualFold(got, serverName) {
		refuse("userinfo sub belongs to another server", "the OpenID token belongs to another server")
		return
	}
	kind := TokenSearch
	if d.IsInsurance {
		kind = TokenFdV
	}
	tok, life, err := a.tokens.Issue(kind, userID, Claims{})
	if err != nil {
		writeProviderError(w, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(life.Seconds())})
}

// tiProviderAuthenticate: GET /ti-provider-authenticate with the client-credentials token as bearer →
// provider token for /tim-provider-services (24 h).
func (a *authAPI) tiProviderAuthenticate(w http.ResponseWriter, r *http.Request) {
	c, err := a.tokens.Verify(bearer(r), TokenClientCredentials)
	if err != nil {
		a.log.Info("ti-provider-authenticate refused", "reason", err.Error())
		writeProviderError(w, a.log, err)
		return
	}
	tok, life, err := a.tokens.Issue(TokenProvider, c.Subject, Claims{ClientID: c.Subject})
	if err != nil {
		writeProviderError(w, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(life.Seconds()), ClientID: c.Subject})
}

// clientCredentials: POST …/protocol/openid-connect/token, grant_type=client_credentials, client id and
// secret by HTTP Basic or form (RFC 6749 §2.3.1). Errors follow RFC 6749 §5.2.
func (a *authAPI) clientCredentials(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(status int, code string) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="TI-Provider"`)
		}
		writeJSON(w, status, map[string]string{"error": code})
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" || secret == "" || a.clients == nil {
		oauthErr(http.StatusUnauthorized, "invalid_client")
		return
	}
	want, err := a.clients.ClientSecretHash(r.Context(), id)
	sum := sha256.Sum256([]byte(secret))
	if err != nil || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(want)) != 1 {
		a.log.Info("client credentials refused", "client_id", id)
		oauthErr(http.StatusUnauthorized, "invalid_client")
		return
	}
	tok, life, err := a.tokens.Issue(TokenClientCredentials, id, Claims{ClientID: id})
	if err != nil {
		writeProviderError(w, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(life.Seconds())})
}
