package devidp

import (
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"time"

	"github.com/timstack/timstack/certs"
)

// Endpoint paths below the issuer. The TI-M guide names /auth, /token, /certs; the reference server's
// aliases (/jwks, /idpSig/jwk.json, /idpEnc/jwk.json) are served too.
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathAuth      = "/auth"
	PathToken     = "/token"
	PathJWKS      = "/certs"
	PathPukSig    = "/certs/puk_idp_sig"
	PathPukEnc    = "/certs/puk_idp_enc"
)

// maxFormBytes bounds request bodies: a signed challenge with an RSA card chain is about 6 KiB.
const maxFormBytes = 64 << 10

// Handler returns the IDP's HTTP endpoints: GET discovery (signed JWS), GET /certs (JWKS),
// GET /certs/puk_idp_sig and /certs/puk_idp_enc (JWKs), GET /auth (challenge), POST /auth
// (signed_challenge → 302 to redirect_uri with code and state), POST /token.
func (i *IDP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathDiscovery, i.serveDiscovery)
	mux.HandleFunc("GET "+PathJWKS, i.serveJWKS)
	mux.HandleFunc("GET /jwks", i.serveJWKS)
	mux.HandleFunc("GET "+PathPukSig, i.servePukSig)
	mux.HandleFunc("GET /idpSig/jwk.json", i.servePukSig)
	mux.HandleFunc("GET "+PathPukEnc, i.servePukEnc)
	mux.HandleFunc("GET /idpEnc/jwk.json", i.servePukEnc)
	mux.HandleFunc("GET "+PathAuth, i.serveChallenge)
	mux.HandleFunc("POST "+PathAuth, i.serveSignedChallenge)
	mux.HandleFunc("POST "+PathToken, i.serveToken)
	for _, p := range unsupportedPaths {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotImplemented, "unsupported_endpoint", "the development IDP implements the smartcard flow only")
		})
	}
	return mux
}

// unsupportedPaths are announced in the discovery document (the RP may expect the members) but not served.
var unsupportedPaths = []string{"/auth/alternative", "/sso_response", "/pairings", "/third_party_auth", "/fed_auth", "/kk_app_list", "/fed_idp_list"}

// writeJSON writes a JSON body; tokens are never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorBody is the OAuth error response (RFC 6749 §5.2).
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, errorBody{Error: code, ErrorDescription: desc})
}

// discoveryDocument is the body of the signed discovery document (§1.2).
func (i *IDP) discoveryDocument(now time.Time) map[string]any {
	u := func(p string) string { return i.issuer + p }
	return map[string]any{
		"issuer":                                i.issuer,
		"authorization_endpoint":                u(PathAuth),
		"auth_pair_endpoint":                    u("/auth/alternative"),
		"sso_endpoint":                          u("/sso_response"),
		"uri_pair":                              u("/pairings"),
		"token_endpoint":                        u(PathToken),
		"third_party_authorization_endpoint":    u("/third_party_auth"),
		"federation_authorization_endpoint":     u("/fed_auth"),
		"uri_disc":                              u(PathDiscovery),
		"jwks_uri":                              u(PathJWKS),
		"uri_puk_idp_enc":                       u(PathPukEnc),
		"uri_puk_idp_sig":                       u(PathPukSig),
		"kk_app_list_uri":                       u("/kk_app_list"),
		"fed_idp_list_uri":                      u("/fed_idp_list"),
		"iat":                                   now.Unix(),
		"exp":                                   now.Add(DiscoveryLifetime).Unix(),
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{string(certs.AlgBP256R1)},
		"response_types_supported":              []string{"code"},
		"scopes_supported":                      supportedScopes,
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code"},
		"acr_values_supported":                  []string{ACR},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
}

// supportedScopes are the only scopes the dev IDP grants.
var supportedScopes = []string{"openid", "ti-messenger"}

// Discovery returns a freshly signed discovery document (compact JWS, kid puk_disc_sig, x5c).
func (i *IDP) Discovery() ([]byte, error) {
	body, err := json.Marshal(i.discoveryDocument(i.now()))
	if err != nil {
		return nil, err
	}
	return certs.SignCompactJWS(i.keys.DiscSig.Key, certs.AlgBP256R1, map[string]any{
		"typ": "JWT", "kid": "puk_disc_sig", "x5c": certs.X5CHeader(i.keys.DiscSig.Cert),
	}, body)
}

func (i *IDP) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	jws, err := i.Discovery()
	if err != nil {
		i.log.Error("devidp: signing discovery", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "could not sign the discovery document")
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(jws)
}

// jwk returns the raw JWK of puk_idp_sig (with x5c, as the reference sets x5cInJwks) or puk_idp_enc.
func (i *IDP) jwk(sig bool) (json.RawMessage, error) {
	if sig {
		return certs.BP256JWK(i.keys.IDPSig.Cert.PublicKey.(*ecdsa.PublicKey), "puk_idp_sig", "sig", i.keys.IDPSig.Cert)
	}
	return certs.BP256JWK(i.keys.IDPEnc.Cert.PublicKey.(*ecdsa.PublicKey), "puk_idp_enc", "enc")
}

func (i *IDP) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	sig, err1 := i.jwk(true)
	enc, err2 := i.jwk(false)
	if err1 != nil || err2 != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "could not encode the keys")
		return
	}
	writeJSON(w, http.StatusOK, map[string][]json.RawMessage{"keys": {sig, enc}})
}

func (i *IDP) servePukSig(w http.ResponseWriter, _ *http.Request) { i.serveOneJWK(w, true) }
func (i *IDP) servePukEnc(w http.ResponseWriter, _ *http.Request) { i.serveOneJWK(w, false) }

func (i *IDP) serveOneJWK(w http.ResponseWriter, sig bool) {
	k, err := i.jwk(sig)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "could not encode the key")
		return
	}
	writeJSON(w, http.StatusOK, k)
}
