package registration

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
)

// backendFederation: GET /backend/federation?version=N (I_internVerification) — the verified list's
// original bytes (application/jose) when the caller's version is older or absent, 204 when it is current,
// 503 {"error":"outdated"} when the list had no verified contact with the directory for MaxAge: the proxy
// must not count that as contact, so its own 72 h rule blocks federation in time.
func (s *Service) backendFederation(w http.ResponseWriter, r *http.Request) {
	if len(s.deps.ProxyTokens) > 0 && !s.proxyAllowed(bearer(r)) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="federation"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a proxy token is required")
		return
	}
	have := int64(-1)
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "bad_request", "version must be a non-negative integer")
			return
		}
		have = n
	}
	ctx := r.Context()
	if out, reason := s.keeper.Outdated(ctx); out {
		s.log.Warn("federation list requested while outdated", "reason", reason)
		code := "outdated"
		if errors.Is(s.keeperErr(r), ErrNoList) {
			code = "no_list"
		}
		w.Header().Set("Retry-After", "3600")
		writeError(w, http.StatusServiceUnavailable, code, "federation list veraltet: "+reason)
		return
	}
	st, _, err := s.keeper.Current(ctx)
	if err != nil {
		s.internal(w, "federation list", err)
		return
	}
	w.Header().Set("ETag", `"`+strconv.FormatInt(st.Version, 10)+`"`)
	if have >= st.Version {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("Content-Length", strconv.Itoa(len(st.JWS)))
	_, _ = w.Write(st.JWS)
}

func (s *Service) keeperErr(r *http.Request) error {
	_, _, err := s.keeper.Current(r.Context())
	return err
}

// proxyAllowed compares tok with every configured token in constant time.
func (s *Service) proxyAllowed(tok string) bool {
	ok := 0
	for _, t := range s.deps.ProxyTokens {
		ok |= subtle.ConstantTimeCompare([]byte(tok), []byte(t))
	}
	return tok != "" && ok == 1
}
