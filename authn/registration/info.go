package registration

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// maxInfoHomeservers bounds how many homeservers one /tim-information request may ask about its token.
const maxInfoHomeservers = 8

// InformationVersion is the version of gematik's TiMessengerInformation.yaml this service implements.
const InformationVersion = "1.0.0"

type infoError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func writeInfoError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, infoError{ErrorCode: code, ErrorMessage: msg})
}

// informationRoutes serve I_TiMessengerInformation from the verified federation list.
func (s *Service) informationRoutes(r chi.Router) {
	r.Use(s.requireMatrixUser)
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{
			"title":       "TI-Messenger Information API",
			"description": "Server lookup by IK number and insurance flag, from the verified federation list",
			"contact":     s.cfg.Information.Contact,
			"version":     InformationVersion,
		})
	})
	r.Get("/v1/server/findByIk", s.findByIK)
	r.Get("/v1/server/isInsurance", s.isInsurance)
}

// requireMatrixUser accepts a Matrix OpenID bearer token of a user on one of the homeservers this
// Fachdienst serves (Information.Homeservers, else the domains of its active messenger services): only
// those homeservers are asked, so a caller cannot make the service call arbitrary servers.
func (s *Service) requireMatrixUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			writeInfoError(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "a Matrix OpenID token is required")
			return
		}
		hss := s.homeservers(r.Context())
		if len(hss) > maxInfoHomeservers {
			// Each candidate costs a userinfo call for an unknown token: bound the fan-out.
			hss = hss[:maxInfoHomeservers]
		}
		for _, hs := range hss {
			if _, err := s.deps.OpenID.Validate(r.Context(), tok, hs, ""); err == nil {
				next.ServeHTTP(w, r)
				return
			}
		}
		s.log.Info("tim-information: OpenID token refused by every served homeserver")
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeInfoError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "the Matrix OpenID token is not valid here")
	})
}

func (s *Service) homeservers(ctx context.Context) []string {
	if len(s.cfg.Information.Homeservers) > 0 {
		return s.cfg.Information.Homeservers
	}
	list, err := s.deps.Store.Services(ctx, 0)
	if err != nil {
		s.log.Error("tim-information: services", "err", err)
		return nil
	}
	var out []string
	for _, m := range list {
		if m.State == StateActive {
			out = append(out, m.Domain)
		}
	}
	return out
}

// findByIK: GET /v1/server/findByIk?ikNumber= → {serverName}; 404 when no listed domain has the IK.
func (s *Service) findByIK(w http.ResponseWriter, r *http.Request) {
	ik := strings.TrimSpace(r.URL.Query().Get("ikNumber"))
	if ik == "" {
		writeInfoError(w, http.StatusBadRequest, "MISSING_PARAMETER", "ikNumber is required")
		return
	}
	_, l, err := s.keeper.Current(r.Context())
	if err != nil {
		s.log.Error("tim-information: no federation list", "err", err)
		writeInfoError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "no verified federation list")
		return
	}
	for _, d := range l.Domains() {
		for _, have := range d.IK {
			if have == ik {
				writeJSON(w, http.StatusOK, map[string]string{"serverName": d.Domain})
				return
			}
		}
	}
	writeInfoError(w, http.StatusNotFound, "NOT_FOUND", "no TI-Messenger server is registered for this IK number")
}

// isInsurance: GET /v1/server/isInsurance?serverName= → {isInsurance}; a server not on the list is no
// insurance server (the interface defines no 404 here).
func (s *Service) isInsurance(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("serverName")))
	if name == "" {
		writeInfoError(w, http.StatusBadRequest, "MISSING_PARAMETER", "serverName is required")
		return
	}
	_, l, err := s.keeper.Current(r.Context())
	if err != nil {
		s.log.Error("tim-information: no federation list", "err", err)
		writeInfoError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "no verified federation list")
		return
	}
	d, ok := l.Lookup(name)
	writeJSON(w, http.StatusOK, map[string]bool{"isInsurance": ok && d.IsInsurance})
}
