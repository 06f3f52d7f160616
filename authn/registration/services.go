package registration

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

type serviceRequest struct {
	Domain          string   `json:"domain"`
	IsInsurance     bool     `json:"isInsurance"`
	IK              []string `json:"ik,omitempty"`
	RedirectDomains []string `json:"redirectDomains,omitempty"`
	// TelematikID picks which of the organisation's Telematik-IDs the domain is registered for (default:
	// the first).
	TelematikID string `json:"telematikID,omitempty"`
}

type serviceAnswer struct {
	Domain          string       `json:"domain"`
	TelematikID     string       `json:"telematikID"`
	IsInsurance     bool         `json:"isInsurance"`
	IK              []string     `json:"ik"`
	RedirectDomains []string     `json:"redirectDomains"`
	State           ServiceState `json:"state"`
	StateSince      time.Time    `json:"stateSince"`
	CreatedAt       time.Time    `json:"createdAt"`
}

func toAnswer(m MessengerService) serviceAnswer {
	a := serviceAnswer{Domain: m.Domain, TelematikID: m.TelematikID, IsInsurance: m.IsInsurance, IK: m.IK, RedirectDomains: m.RedirectDomains,
		State: m.State, StateSince: m.StateSince, CreatedAt: m.CreatedAt}
	if a.IK == nil {
		a.IK = []string{}
	}
	if a.RedirectDomains == nil {
		a.RedirectDomains = []string{}
	}
	return a
}

// parseServiceRequest checks what the service can check before asking the directory, which has the last
// word (IK check digits, organisation active, uniqueness).
func parseServiceRequest(r *http.Request, variant string) (serviceRequest, error) {
	var req serviceRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	req.Domain = strings.ToLower(strings.TrimSpace(req.Domain))
	if err := validServerName(req.Domain); err != nil {
		return req, errors.New("domain: " + err.Error())
	}
	// ePA organisations (Kostenträger) register insurance domains; Pro domains are never insurance ones.
	if variant == "epa" && !req.IsInsurance {
		return req, errors.New("isInsurance: an ePA registration service registers insurance domains only")
	}
	if variant == "pro" && req.IsInsurance {
		return req, errors.New("isInsurance: a Pro registration service registers no insurance domains")
	}
	for i, rd := range req.RedirectDomains {
		req.RedirectDomains[i] = strings.ToLower(strings.TrimSpace(rd))
		if err := validServerName(req.RedirectDomains[i]); err != nil {
			return req, errors.New("redirectDomains: " + err.Error())
		}
	}
	return req, nil
}

// listServices: GET /registration/v1/messenger-services.
func (s *Service) listServices(w http.ResponseWriter, r *http.Request) {
	list, err := s.deps.Store.Services(r.Context(), sessionAdmin(r).OrgID)
	if err != nil {
		s.internal(w, "services", err)
		return
	}
	out := []serviceAnswer{}
	for _, m := range list {
		out = append(out, toAnswer(m))
	}
	writeJSON(w, http.StatusOK, out)
}

// writeDirectoryError passes a directory refusal on: its status for the caller's mistakes (400, 403, 404,
// 409) with the directory's message; anything else is a 502.
func (s *Service) writeDirectoryError(w http.ResponseWriter, op string, err error) {
	var de *DirectoryError
	if errors.As(err, &de) {
		switch de.Status {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict:
			s.log.Info("directory refused", "op", op, "status", de.Status, "message", de.Message)
			writeError(w, de.Status, "directory_refused", "VZD: "+de.Message)
			return
		}
	}
	s.log.Error("directory call failed", "op", op, "err", err)
	writeError(w, http.StatusBadGateway, "directory_unavailable", "the VZD-FHIR-Directory could not be used")
}

// addService: POST /registration/v1/messenger-services — registers the domain at the directory's
// federation list for the organisation's Telematik-ID, stores it and refreshes the list at once.
func (s *Service) addService(w http.ResponseWriter, r *http.Request) {
	req, err := parseServiceRequest(r, s.cfg.Variant)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ctx := r.Context()
	admin := sessionAdmin(r)
	org, err := s.deps.Store.Organisation(ctx, admin.OrgID)
	if err != nil {
		s.internal(w, "organisation", err)
		return
	}
	tid := org.TelematikIDs[0].ID
	if req.TelematikID != "" {
		if !slices.ContainsFunc(org.TelematikIDs, func(t TelematikID) bool { return t.ID == req.TelematikID }) {
			writeError(w, http.StatusForbidden, "foreign_telematik_id", "telematikID is not linked to this organisation")
			return
		}
		tid = req.TelematikID
	}
	d, err := s.deps.Directory.AddDomain(ctx, Domain{Domain: req.Domain, TelematikID: tid, IsInsurance: req.IsInsurance, IK: req.IK, RedirectDomains: req.RedirectDomains})
	if err != nil {
		s.writeDirectoryError(w, "add domain", err)
		return
	}
	now := s.now()
	m := MessengerService{Domain: d.Domain, OrgID: org.ID, TelematikID: tid, IsInsurance: d.IsInsurance, IK: d.IK, RedirectDomains: req.RedirectDomains,
		State: StateActive, StateSince: now, CreatedAt: now}
	if m.Domain == "" {
		m.Domain = req.Domain
	}
	if err := s.deps.Store.AddService(ctx, m); err != nil {
		// The directory has the domain, we do not: take it back so both agree.
		if derr := s.deps.Directory.DeleteDomain(context.WithoutCancel(ctx), m.Domain); derr != nil {
			s.log.Error("domain registered at the directory but not stored, and could not be removed again", "domain", m.Domain, "err", derr)
		}
		if errors.Is(err, ErrConflict) {
			writeError(w, http.StatusConflict, "conflict", "the domain is already registered here")
			return
		}
		s.internal(w, "store service", err)
		return
	}
	s.log.Info("messenger service registered", "domain", m.Domain, "telematik_id", tid, "admin", admin.ID)
	if err := s.keeper.Refresh(ctx); err != nil {
		s.log.Warn("federation list refresh after registration failed", "err", err)
	}
	stored, _ := s.deps.Store.Service(ctx, m.Domain)
	if stored != nil {
		m = *stored
	}
	writeJSON(w, http.StatusCreated, toAnswer(m))
}

// deleteService: DELETE /registration/v1/messenger-services/{domain}.
func (s *Service) deleteService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	domain := strings.ToLower(chi.URLParam(r, "domain"))
	m, err := s.deps.Store.Service(ctx, domain)
	if errors.Is(err, ErrNotFound) || (err == nil && m.OrgID != sessionAdmin(r).OrgID) {
		writeError(w, http.StatusNotFound, "not_found", "no such messenger service of this organisation")
		return
	}
	if err != nil {
		s.internal(w, "service", err)
		return
	}
	if err := s.removeService(ctx, domain); err != nil {
		s.writeDirectoryError(w, "delete domain", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeService deletes the domain at the directory (already gone is fine), then here, then refreshes.
func (s *Service) removeService(ctx context.Context, domain string) error {
	if err := s.deps.Directory.DeleteDomain(ctx, domain); err != nil {
		var de *DirectoryError
		if !errors.As(err, &de) || de.Status != http.StatusNotFound {
			return err
		}
	}
	if err := s.deps.Store.DeleteService(ctx, domain); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	s.log.Info("messenger service removed", "domain", domain)
	if err := s.keeper.Refresh(ctx); err != nil {
		s.log.Warn("federation list refresh after removal failed", "err", err)
	}
	return nil
}

// FederationCheck runs the daily housekeeping: services whose organisation the directory reports inactive
// are deactivated, reactivated when it no longer does, and removed (directory and here) after
// DeleteAfter inactive. The directory's provider API has no deactivation of its own (PUT replaces the
// Domain, which has no state), so deactivation is this service's state, for provisioning to act on.
func (s *Service) FederationCheck(ctx context.Context) error {
	inactive, err := s.deps.Directory.FederationCheck(ctx)
	if err != nil {
		return err
	}
	bad := map[string]bool{}
	for _, d := range inactive {
		bad[strings.ToLower(d.Domain)] = true
	}
	list, err := s.deps.Store.Services(ctx, 0)
	if err != nil {
		return err
	}
	now := s.now()
	var errs []error
	for _, m := range list {
		switch {
		case bad[m.Domain] && m.State == StateActive:
			s.log.Warn("organisation inactive: messenger service deactivated", "domain", m.Domain, "telematik_id", m.TelematikID)
			errs = append(errs, s.deps.Store.SetServiceState(ctx, m.Domain, StateDeactivated, now))
		case bad[m.Domain] && now.Sub(m.StateSince) >= s.cfg.FederationCheck.DeleteAfter:
			s.log.Warn("organisation inactive too long: messenger service removed", "domain", m.Domain, "since", m.StateSince)
			errs = append(errs, s.removeService(ctx, m.Domain))
		case !bad[m.Domain] && m.State == StateDeactivated:
			s.log.Info("organisation active again: messenger service reactivated", "domain", m.Domain)
			errs = append(errs, s.deps.Store.SetServiceState(ctx, m.Domain, StateActive, now))
		}
	}
	return errors.Join(errs...)
}
