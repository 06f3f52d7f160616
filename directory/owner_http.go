package directory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/timstack/timstack/directory/fhir"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/search"
)

// The owner API (FHIRDirectoryOwnerAPI, spec §1.3): FHIR search and read over the whole directory, and
// writes restricted by the Telematik-ID of the owner token. What a caller owns:
//
//   - the Practitioner and Organization carrying its Telematik-ID (identifier system telematik-id) — read
//     only here, the LDAP sync writes them;
//   - the synced (Origin ldap) PractitionerRoles of those Practitioners and HealthcareServices of those
//     Organizations — the owner may only add or remove references to its own endpoints;
//   - the resources it created (Origin owner), marked server-side with the OwnerTelematikIdEx extension.
//
// Every write goes through Writer.Put (parse, normalise, validate, index, store).

const (
	originLDAP  = "ldap"
	originOwner = "owner"
)

// ownerError is a refused owner request: status and the issues of the OperationOutcome.
type ownerError struct {
	status int
	issues []fhir.Issue
}

func (e *ownerError) Error() string {
	if len(e.issues) == 0 {
		return fmt.Sprintf("owner: %d", e.status)
	}
	return fmt.Sprintf("owner: %d: %s", e.status, e.issues[0].Diagnostics)
}

func ownerFail(status int, code fhir.IssueCode, expr, msg string) *ownerError {
	return &ownerError{status: status, issues: []fhir.Issue{fhir.NewIssue(code, expr, msg)}}
}

func forbidden(expr, msg string) *ownerError {
	return ownerFail(http.StatusForbidden, fhir.CodeForbidden, expr, msg)
}

func badRequest(code fhir.IssueCode, expr, msg string) *ownerError {
	return ownerFail(http.StatusBadRequest, code, expr, msg)
}

type ownerCtxKey struct{}

// ownerRoutes serves /owner.
func (s *Server) ownerRoutes(r chi.Router) {
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			c, err := s.tokens.Verify(bearer(req), TokenOwner)
			if err != nil {
				s.log.Info("owner token refused", "reason", err.Error(), "path", req.URL.Path)
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				writeOutcome(w, http.StatusUnauthorized, fhir.NewIssue(fhir.CodeLogin, "", "a valid owner access token is required"))
				return
			}
			if strings.TrimSpace(c.TelematikID) == "" {
				writeOutcome(w, http.StatusForbidden, fhir.NewIssue(fhir.CodeForbidden, "", "the owner token carries no Telematik-ID"))
				return
			}
			next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ownerCtxKey{}, c)))
		})
	})
	base := s.cfg.BaseURL + "/owner"
	r.Get("/{type}", func(w http.ResponseWriter, req *http.Request) {
		s.search(w, req, chi.URLParam(req, "type"), search.Options{Mandatory: false}, base)
	})
	r.Get("/{type}/{id}", s.ownerRead)
	r.Post("/{type}", s.ownerCreate)
	r.Put("/{type}/{id}", s.ownerUpdate)
	r.Delete("/{type}/{id}", s.ownerDelete)
}

// ownerReq is one owner request: the caller's Telematik-ID and what it owns, looked up lazily.
type ownerReq struct {
	s      *Server
	ctx    context.Context
	tid    string
	owned  map[string]map[string]bool // Practitioner/Organization ids carrying tid
	writer *Writer
}

func (s *Server) ownerReq(r *http.Request) *ownerReq {
	c, _ := r.Context().Value(ownerCtxKey{}).(*Claims)
	return &ownerReq{s: s, ctx: r.Context(), tid: c.TelematikID, owned: map[string]map[string]bool{}, writer: &Writer{Store: s.deps.Store}}
}

// fail renders err as an OperationOutcome: refusals as they are, validation failures as 400 with the
// validator's issues, everything else logged and answered 500 without detail.
func (s *Server) ownerFail(w http.ResponseWriter, err error) {
	var oe *ownerError
	var ve *ValidationError
	switch {
	case errors.As(err, &oe):
		writeOutcome(w, oe.status, oe.issues...)
	case errors.As(err, &ve):
		writeOutcome(w, http.StatusBadRequest, ve.Issues...)
	default:
		s.log.Error("owner API failed", "err", err)
		writeOutcome(w, http.StatusInternalServerError, fhir.NewIssue(fhir.CodeException, "", "internal error"))
	}
}

func knownResourceType(typ string) bool {
	for _, t := range index.ResourceTypes {
		if t == typ {
			return true
		}
	}
	return false
}

// load reads a stored resource: 404 when absent or of an unknown type.
func (o *ownerReq) load(typ, id string) (index.Resource, *fhir.Resource, error) {
	if !knownResourceType(typ) {
		return index.Resource{}, nil, ownerFail(http.StatusNotFound, fhir.CodeNotSupported, "", "unknown resource type")
	}
	res, err := o.s.deps.Store.Get(o.ctx, typ, id)
	if err != nil {
		if o.s.deps.NotFound(err) {
			return index.Resource{}, nil, ownerFail(http.StatusNotFound, fhir.CodeNotFound, "", "resource not found")
		}
		return index.Resource{}, nil, err
	}
	r, err := fhir.Parse(res.JSON)
	if err != nil {
		return index.Resource{}, nil, fmt.Errorf("stored %s/%s: %w", typ, id, err)
	}
	return res, r, nil
}

func (s *Server) ownerRead(w http.ResponseWriter, r *http.Request) {
	o := s.ownerReq(r)
	res, _, err := o.load(chi.URLParam(r, "type"), chi.URLParam(r, "id"))
	if err != nil {
		s.ownerFail(w, err)
		return
	}
	writeResource(w, http.StatusOK, res)
}

func writeResource(w http.ResponseWriter, status int, res index.Resource) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("ETag", etag(res.VersionID))
	if !res.LastUpdated.IsZero() {
		w.Header().Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(status)
	_, _ = w.Write(res.JSON)
}

func etag(v int64) string { return `W/"` + strconv.FormatInt(v, 10) + `"` }

// checkIfMatch honours If-Match: W/"<versionId>" (or "<versionId>"); a mismatch is 412.
func checkIfMatch(r *http.Request, res index.Resource) error {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return nil
	}
	v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	if v != strconv.FormatInt(res.VersionID, 10) {
		return ownerFail(http.StatusPreconditionFailed, fhir.CodeConflict, "", "If-Match does not name the current version "+etag(res.VersionID))
	}
	return nil
}

// body reads and parses the request body as a resource of typ: the parsed resource (for its view) and the
// JSON object (for server-side edits).
func (o *ownerReq) body(w http.ResponseWriter, r *http.Request, typ string) (*fhir.Resource, map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
			return nil, nil, ownerFail(http.StatusUnsupportedMediaType, fhir.CodeNotSupported, "", "the body must be application/fhir+json")
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, o.s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, ownerFail(http.StatusRequestEntityTooLarge, fhir.CodeTooCostly, "", "the body is too large")
		}
		return nil, nil, badRequest(fhir.CodeStructure, "", "the body could not be read")
	}
	res, err := fhir.Parse(data)
	if err != nil {
		var pe *fhir.ParseError
		if errors.As(err, &pe) {
			return nil, nil, &ownerError{status: http.StatusBadRequest, issues: []fhir.Issue{pe.Issue}}
		}
		return nil, nil, err
	}
	if res.ResourceType != typ {
		return nil, nil, badRequest(fhir.CodeInvalid, "resourceType", "resourceType must be "+typ+", as in the URL")
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, nil, badRequest(fhir.CodeStructure, "", "the body is not a JSON object")
	}
	return res, obj, nil
}

func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	return m, nil
}

func encodeObject(m map[string]any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		panic("directory: encode decoded JSON: " + err.Error()) // values come from json.Decoder
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// canonical is the comparison form of a resource: keys sorted (encoding/json), the members omit left out,
// and the server-managed meta.versionId/meta.lastUpdated ignored.
func canonical(m map[string]any, omit ...string) string {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	for _, k := range omit {
		delete(c, k)
	}
	if meta, ok := c["meta"].(map[string]any); ok {
		mc := make(map[string]any, len(meta))
		for k, v := range meta {
			if k != "versionId" && k != "lastUpdated" {
				mc[k] = v
			}
		}
		if len(mc) == 0 {
			delete(c, "meta")
		} else {
			c["meta"] = mc
		}
	}
	return string(encodeObject(c))
}

// splitExtensions separates the extensions with url from the others (JSON form).
func splitExtensions(m map[string]any, url string) (with, without []any) {
	exts, _ := m["extension"].([]any)
	for _, e := range exts {
		if em, ok := e.(map[string]any); ok && em["url"] == url {
			with = append(with, e)
		} else {
			without = append(without, e)
		}
	}
	return with, without
}

func setOrDelete(m map[string]any, key string, list []any) {
	if len(list) == 0 {
		delete(m, key)
	} else {
		m[key] = list
	}
}

// markOwned sets what the server manages on an owner-created resource: id, meta (client profiles kept,
// tags replaced by Origin owner, versionId/lastUpdated dropped) and exactly one OwnerTelematikIdEx with
// the token's Telematik-ID.
func (o *ownerReq) markOwned(m map[string]any, id string) error {
	m["id"] = id
	meta := map[string]any{}
	if old, ok := m["meta"]; ok {
		om, ok := old.(map[string]any)
		if !ok {
			return badRequest(fhir.CodeStructure, "meta", "meta must be an object")
		}
		if p, ok := om["profile"]; ok {
			meta["profile"] = p
		}
	}
	meta["tag"] = []any{map[string]any{"system": fhir.SystemOrigin, "code": originOwner}}
	m["meta"] = meta
	if old, ok := m["extension"]; ok {
		if _, ok := old.([]any); !ok {
			return badRequest(fhir.CodeStructure, "extension", "extension must be an array")
		}
	}
	_, others := splitExtensions(m, fhir.ExtOwnerTelematikID)
	m["extension"] = append(others, map[string]any{
		"url":             fhir.ExtOwnerTelematikID,
		"valueIdentifier": map[string]any{"system": fhir.SystemTelematikID, "value": o.tid},
	})
	return nil
}

func originOf(r *fhir.Resource) string {
	if m := r.View.Base().Meta; m != nil {
		for _, t := range m.Tag {
			if t.System == fhir.SystemOrigin {
				return t.Code
			}
		}
	}
	return ""
}

func ownerTelematikIDOf(r *fhir.Resource) string {
	for _, e := range r.View.Base().Extension {
		if e.URL == fhir.ExtOwnerTelematikID && e.ValueIdentifier != nil {
			return e.ValueIdentifier.Value
		}
	}
	return ""
}

// createdBy reports whether r was created through the owner API by the caller.
func (o *ownerReq) createdBy(r *fhir.Resource) bool {
	return originOf(r) == originOwner && ownerTelematikIDOf(r) == o.tid
}

// ownedIDs returns the ids of the resources of typ (Practitioner or Organization) that carry the caller's
// Telematik-ID.
func (o *ownerReq) ownedIDs(typ string) (map[string]bool, error) {
	if ids, ok := o.owned[typ]; ok {
		return ids, nil
	}
	res, err := o.s.deps.Store.Search(o.ctx, index.Query{Type: typ, Limit: search.MaxResults, Where: index.And{
		index.Token{Param: "identifier", System: fhir.SystemTelematikID, Code: o.tid},
	}})
	if err != nil {
		return nil, fmt.Errorf("owner %s lookup: %w", typ, err)
	}
	ids := make(map[string]bool, len(res.IDs))
	for _, id := range res.IDs {
		ids[id] = true
	}
	o.owned[typ] = ids
	return ids, nil
}

// refersToOwned reports whether ref names one of the caller's resources of typ.
func (o *ownerReq) refersToOwned(ref *fhir.Reference, typ string) (bool, error) {
	if ref == nil {
		return false, nil
	}
	to, ok := fhir.ParseReference(ref.Reference)
	if !ok || to.Type != typ {
		return false, nil
	}
	ids, err := o.ownedIDs(typ)
	if err != nil {
		return false, err
	}
	return ids[to.ID], nil
}

// syncedOwned reports whether r is a synced (ldap) role of the caller's Practitioner or service of the
// caller's Organization.
func (o *ownerReq) syncedOwned(r *fhir.Resource) (bool, error) {
	if originOf(r) != originLDAP {
		return false, nil
	}
	switch x := r.View.(type) {
	case *fhir.PractitionerRole:
		return o.refersToOwned(x.Practitioner, index.Practitioner)
	case *fhir.HealthcareService:
		return o.refersToOwned(x.ProvidedBy, index.Organization)
	}
	return false, nil
}

// endpointRefs resolves endpoint references; anything but a local Endpoint reference is a 400.
func endpointRefs(typ string, refs []fhir.Reference) ([]index.Ref, error) {
	out := make([]index.Ref, 0, len(refs))
	for i, ref := range refs {
		to, ok := fhir.ParseReference(ref.Reference)
		if !ok || to.Type != index.Endpoint {
			return nil, badRequest(fhir.CodeValue, fmt.Sprintf("%s.endpoint[%d].reference", typ, i), "endpoint must reference an Endpoint as Endpoint/<id>")
		}
		out = append(out, to)
	}
	return out, nil
}

// checkOwnEndpoints requires every ref to be an Endpoint the caller created (403 otherwise). A missing
// endpoint is a 400, unless allowMissing (removing a dangling reference).
func (o *ownerReq) checkOwnEndpoints(typ string, refs []index.Ref, allowMissing bool) error {
	if len(refs) == 0 {
		return nil
	}
	stored, err := o.s.deps.Store.GetMany(o.ctx, refs)
	if err != nil {
		return fmt.Errorf("owner endpoints: %w", err)
	}
	found := make(map[string]index.Resource, len(stored))
	for _, s := range stored {
		found[s.ID] = s
	}
	for _, ref := range refs {
		s, ok := found[ref.ID]
		if !ok {
			if allowMissing {
				continue
			}
			return badRequest(fhir.CodeValue, typ+".endpoint", "Endpoint/"+ref.ID+" does not exist")
		}
		r, err := fhir.Parse(s.JSON)
		if err != nil {
			return fmt.Errorf("stored Endpoint/%s: %w", s.ID, err)
		}
		if !o.createdBy(r) {
			return forbidden(typ+".endpoint", "Endpoint/"+ref.ID+" is not an endpoint of the caller")
		}
	}
	return nil
}

// checkEndpointChange allows a synced resource's endpoint list to change only by the caller's own
// endpoints: every added and every removed reference must name one of them.
func (o *ownerReq) checkEndpointChange(typ string, old, new []fhir.Reference) error {
	oldRefs, err := endpointRefs(typ, old)
	if err != nil {
		// a stored reference we cannot resolve: compare raw values instead
		oldRefs = nil
		for _, r := range old {
			oldRefs = append(oldRefs, index.Ref{Type: "?", ID: r.Reference})
		}
	}
	newRefs, err := endpointRefs(typ, new)
	if err != nil {
		return err
	}
	inOld := map[index.Ref]bool{}
	for _, r := range oldRefs {
		inOld[r] = true
	}
	inNew := map[index.Ref]bool{}
	var added, removed []index.Ref
	for _, r := range newRefs {
		inNew[r] = true
		if !inOld[r] {
			added = append(added, r)
		}
	}
	for _, r := range oldRefs {
		if !inNew[r] {
			if r.Type != index.Endpoint {
				return forbidden(typ+".endpoint", "only references to the caller's own endpoints may be removed")
			}
			removed = append(removed, r)
		}
	}
	if err := o.checkOwnEndpoints(typ, added, false); err != nil {
		return err
	}
	return o.checkOwnEndpoints(typ, removed, true)
}

// syncedIDs returns the synced (ldap) resources of typ linked to the caller's Practitioners (roles) or
// Organizations (services).
func (o *ownerReq) syncedIDs(typ string) ([]string, error) {
	param, target := "practitioner", index.Practitioner
	if typ == index.HealthcareService {
		param, target = "organization", index.Organization
	}
	owned, err := o.ownedIDs(target)
	if err != nil || len(owned) == 0 {
		return nil, err
	}
	var linked index.Or
	for id := range owned {
		linked = append(linked, index.Reference{Param: param, Type: target, ID: id})
	}
	res, err := o.s.deps.Store.Search(o.ctx, index.Query{Type: typ, Limit: 1000, Where: index.And{
		linked, index.Token{Param: "_tag", System: fhir.SystemOrigin, Code: originLDAP},
	}})
	if err != nil {
		return nil, fmt.Errorf("owner synced %s: %w", typ, err)
	}
	return res.IDs, nil
}

// checkLocations: an owner-created role or service may only reference the Locations of the caller's
// synced roles or services ("may reference the same Location").
func (o *ownerReq) checkLocations(typ string, locs []fhir.Reference) error {
	if len(locs) == 0 {
		return nil
	}
	synced, err := o.syncedIDs(typ)
	if err != nil {
		return err
	}
	allowed := map[index.Ref]bool{}
	if len(synced) > 0 {
		refs, err := o.s.deps.Store.References(o.ctx, typ, synced, "location")
		if err != nil {
			return fmt.Errorf("owner locations: %w", err)
		}
		for _, r := range refs {
			allowed[r] = true
		}
	}
	for i, l := range locs {
		to, ok := fhir.ParseReference(l.Reference)
		if !ok || to.Type != index.Location {
			return badRequest(fhir.CodeValue, fmt.Sprintf("%s.location[%d].reference", typ, i), "location must reference a Location as Location/<id>")
		}
		if !allowed[to] {
			return forbidden(fmt.Sprintf("%s.location[%d]", typ, i), "only Locations of the caller's synced entries may be referenced")
		}
	}
	return nil
}

// checkSpecialties: an owner-created service's specialties must be a subset of those of the caller's
// synced services.
func (o *ownerReq) checkSpecialties(ccs []fhir.CodeableConcept) error {
	if len(ccs) == 0 {
		return nil
	}
	synced, err := o.syncedIDs(index.HealthcareService)
	if err != nil {
		return err
	}
	refs := make([]index.Ref, len(synced))
	for i, id := range synced {
		refs[i] = index.Ref{Type: index.HealthcareService, ID: id}
	}
	stored, err := o.s.deps.Store.GetMany(o.ctx, refs)
	if err != nil {
		return fmt.Errorf("owner specialties: %w", err)
	}
	allowed := map[string]bool{}
	for _, s := range stored {
		r, err := fhir.Parse(s.JSON)
		if err != nil {
			return fmt.Errorf("stored HealthcareService/%s: %w", s.ID, err)
		}
		for _, cc := range r.View.(*fhir.HealthcareService).Specialty {
			for _, c := range cc.Coding {
				allowed[c.System+"|"+c.Code] = true
			}
		}
	}
	for i, cc := range ccs {
		for _, c := range cc.Coding {
			if !allowed[c.System+"|"+c.Code] {
				return badRequest(fhir.CodeValue, fmt.Sprintf("HealthcareService.specialty[%d]", i), "specialty must be one of the synced services' specialties")
			}
		}
	}
	return nil
}

// checkOwnerRole applies the rules of an owner-created PractitionerRole (spec §1.3).
func (o *ownerReq) checkOwnerRole(x *fhir.PractitionerRole) error {
	for i, id := range x.Identifier {
		if id.System == fhir.SystemTelematikID {
			return badRequest(fhir.CodeInvalid, fmt.Sprintf("PractitionerRole.identifier[%d]", i), "an owner PractitionerRole carries no TelematikID identifier")
		}
	}
	if x.Organization != nil {
		return badRequest(fhir.CodeInvalid, "PractitionerRole.organization", "an owner PractitionerRole has no organization")
	}
	if ok, err := o.refersToOwned(x.Practitioner, index.Practitioner); err != nil {
		return err
	} else if !ok {
		return forbidden("PractitionerRole.practitioner", "practitioner must be the caller's Practitioner")
	}
	if err := o.checkLocations(index.PractitionerRole, x.Location); err != nil {
		return err
	}
	refs, err := endpointRefs(index.PractitionerRole, x.Endpoint)
	if err != nil {
		return err
	}
	return o.checkOwnEndpoints(index.PractitionerRole, refs, false)
}

// checkOwnerService applies the rules of an owner-created HealthcareService (spec §1.3).
func (o *ownerReq) checkOwnerService(x *fhir.HealthcareService) error {
	if ok, err := o.refersToOwned(x.ProvidedBy, index.Organization); err != nil {
		return err
	} else if !ok {
		return forbidden("HealthcareService.providedBy", "providedBy must be the caller's Organization")
	}
	for i, id := range x.Identifier {
		if id.System == fhir.SystemTelematikID && id.Value != o.tid {
			return forbidden(fmt.Sprintf("HealthcareService.identifier[%d]", i), "a TelematikID identifier must be the caller's")
		}
	}
	if err := o.checkLocations(index.HealthcareService, x.Location); err != nil {
		return err
	}
	if err := o.checkSpecialties(x.Specialty); err != nil {
		return err
	}
	refs, err := endpointRefs(index.HealthcareService, x.Endpoint)
	if err != nil {
		return err
	}
	return o.checkOwnEndpoints(index.HealthcareService, refs, false)
}

// checkOwnerEndpoint: owners create TI-Messenger endpoints only (spec §1.3, §2.4), status active or off,
// one endpoint per address.
func (o *ownerReq) checkOwnerEndpoint(x *fhir.Endpoint, id string) error {
	if !isTIMEndpoint(x) {
		return forbidden("Endpoint.connectionType", "owners may only create TI-Messenger endpoints (connectionType tim, tim-fa or tim-bot)")
	}
	if x.Status != "active" && x.Status != "off" {
		return badRequest(fhir.CodeCodeInvalid, "Endpoint.status", "an owner endpoint's status is active or off")
	}
	res, err := o.s.deps.Store.Search(o.ctx, index.Query{Type: index.Endpoint, Limit: 2, Where: index.And{
		index.String{Param: "address", Value: fhir.NormalizeAddress(x.Address), Mode: index.StringExact},
	}})
	if err != nil {
		return fmt.Errorf("owner endpoint address: %w", err)
	}
	for _, other := range res.IDs {
		if other != id {
			return ownerFail(http.StatusConflict, fhir.CodeDuplicate, "Endpoint.address", "another Endpoint already has this address")
		}
	}
	return nil
}

func isTIMEndpoint(e *fhir.Endpoint) bool {
	ct := e.ConnectionType
	if ct == nil || (ct.System != "" && ct.System != fhir.SystemConnectionType) {
		return false
	}
	switch ct.Code {
	case "tim", "tim-fa", "tim-bot":
		return true
	}
	return false
}

// prepare validates a document the API built (400 with the validator's issues).
func (o *ownerReq) prepare(doc []byte) (*fhir.Resource, error) {
	r, _, err := o.writer.Prepare(doc)
	return r, err
}

// store writes one prepared document and returns it as stored.
func (o *ownerReq) store(op string, r *fhir.Resource) (index.Resource, error) {
	if _, err := o.writer.Put(o.ctx, [][]byte{r.JSON}); err != nil {
		return index.Resource{}, err
	}
	res, err := o.s.deps.Store.Get(o.ctx, r.ResourceType, r.ID)
	if err != nil {
		return index.Resource{}, fmt.Errorf("owner %s: read back: %w", op, err)
	}
	o.s.log.Info("owner write", "op", op, "type", r.ResourceType, "id", r.ID, "version", res.VersionID, "telematik_id", o.tid)
	return res, nil
}

func newResourceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func writableType(typ string) error {
	switch typ {
	case index.Endpoint, index.PractitionerRole, index.HealthcareService:
		return nil
	case index.Practitioner, index.Organization:
		return forbidden("", typ+" entries are synced from LDAP; owners may not write them")
	case index.Location:
		return ownerFail(http.StatusMethodNotAllowed, fhir.CodeNotSupported, "", "owner-created Locations are not supported; reference the synced Location")
	}
	return ownerFail(http.StatusNotFound, fhir.CodeNotSupported, "", "unknown resource type")
}

// ownerCreate serves POST /owner/{type}: Endpoint, PractitionerRole and HealthcareService of Origin owner.
func (s *Server) ownerCreate(w http.ResponseWriter, r *http.Request) {
	o := s.ownerReq(r)
	typ := chi.URLParam(r, "type")
	res, err := o.create(w, r, typ)
	if err != nil {
		s.ownerFail(w, err)
		return
	}
	w.Header().Set("Location", s.cfg.BaseURL+"/owner/"+res.Type+"/"+res.ID+"/_history/"+strconv.FormatInt(res.VersionID, 10))
	writeResource(w, http.StatusCreated, res)
}

func (o *ownerReq) create(w http.ResponseWriter, r *http.Request, typ string) (index.Resource, error) {
	if err := writableType(typ); err != nil {
		return index.Resource{}, err
	}
	_, obj, err := o.body(w, r, typ)
	if err != nil {
		return index.Resource{}, err
	}
	id := newResourceID()
	if err := o.markOwned(obj, id); err != nil {
		return index.Resource{}, err
	}
	p, err := o.prepare(encodeObject(obj))
	if err != nil {
		return index.Resource{}, err
	}
	if err := o.checkOwned(p); err != nil {
		return index.Resource{}, err
	}
	return o.store("create", p)
}

// checkOwned applies the type's rules to an owner-created resource.
func (o *ownerReq) checkOwned(p *fhir.Resource) error {
	switch x := p.View.(type) {
	case *fhir.Endpoint:
		return o.checkOwnerEndpoint(x, p.ID)
	case *fhir.PractitionerRole:
		return o.checkOwnerRole(x)
	case *fhir.HealthcareService:
		return o.checkOwnerService(x)
	}
	return forbidden("", "owners may not write "+p.ResourceType)
}

// ownerUpdate serves PUT /owner/{type}/{id}.
func (s *Server) ownerUpdate(w http.ResponseWriter, r *http.Request) {
	o := s.ownerReq(r)
	res, err := o.update(w, r, chi.URLParam(r, "type"), chi.URLParam(r, "id"))
	if err != nil {
		s.ownerFail(w, err)
		return
	}
	writeResource(w, http.StatusOK, res)
}

func (o *ownerReq) update(w http.ResponseWriter, r *http.Request, typ, id string) (index.Resource, error) {
	if err := writableType(typ); err != nil {
		return index.Resource{}, err
	}
	stored, cur, err := o.load(typ, id)
	if err != nil {
		return index.Resource{}, err
	}
	// Ownership first: a caller learns nothing about someone else's entry from validation answers.
	synced, err := o.syncedOwned(cur)
	if err != nil {
		return index.Resource{}, err
	}
	if !synced && !o.createdBy(cur) {
		return index.Resource{}, forbidden("", typ+"/"+id+" does not belong to the caller")
	}
	if err := checkIfMatch(r, stored); err != nil {
		return index.Resource{}, err
	}
	nr, obj, err := o.body(w, r, typ)
	if err != nil {
		return index.Resource{}, err
	}
	if nr.ID != id {
		return index.Resource{}, badRequest(fhir.CodeInvalid, typ+".id", "the body's id must equal the id in the URL")
	}
	old, err := decodeObject(stored.JSON)
	if err != nil {
		return index.Resource{}, fmt.Errorf("stored %s/%s: %w", typ, id, err)
	}
	var doc []byte
	switch {
	case synced:
		// Only endpoint references may change; the rest must stay as synced.
		if canonical(old, "endpoint") != canonical(obj, "endpoint") {
			return index.Resource{}, forbidden(typ, "this "+typ+" is synced from LDAP: only endpoint references may be added or removed")
		}
		var oldEps, newEps []fhir.Reference
		switch x := nr.View.(type) {
		case *fhir.PractitionerRole:
			oldEps, newEps = cur.View.(*fhir.PractitionerRole).Endpoint, x.Endpoint
		case *fhir.HealthcareService:
			oldEps, newEps = cur.View.(*fhir.HealthcareService).Endpoint, x.Endpoint
		}
		if err := o.checkEndpointChange(typ, oldEps, newEps); err != nil {
			return index.Resource{}, err
		}
		eps, _ := obj["endpoint"].([]any)
		setOrDelete(old, "endpoint", eps)
		doc = encodeObject(old)
	case typ == index.Endpoint:
		// PUT changes status (active ↔ off) or the visibility extension, nothing else.
		if endpointInvariant(old) != endpointInvariant(obj) {
			return index.Resource{}, badRequest(fhir.CodeInvalid, "Endpoint", "only status and the EndpointVisibility extension of an endpoint may change; create a new Endpoint instead")
		}
		vis, _ := splitExtensions(obj, fhir.ExtEndpointVisibility)
		_, keep := splitExtensions(old, fhir.ExtEndpointVisibility)
		setOrDelete(old, "extension", append(keep, vis...))
		if st, ok := obj["status"]; ok {
			old["status"] = st
		} else {
			delete(old, "status")
		}
		doc = encodeObject(old)
	default:
		// An owner-created role or service is replaced as a whole, under the creation rules.
		if err := o.markOwned(obj, id); err != nil {
			return index.Resource{}, err
		}
		doc = encodeObject(obj)
	}
	p, err := o.prepare(doc)
	if err != nil {
		return index.Resource{}, err
	}
	if !synced {
		if err := o.checkOwned(p); err != nil {
			return index.Resource{}, err
		}
	}
	return o.store("update", p)
}

// endpointInvariant is the canonical form of an endpoint without what an owner may change.
func endpointInvariant(m map[string]any) string {
	_, others := splitExtensions(m, fhir.ExtEndpointVisibility)
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	setOrDelete(c, "extension", others)
	return canonical(c, "status")
}

// ownerDelete serves DELETE /owner/{type}/{id}: the caller's own endpoints (when unreferenced), roles and
// services.
func (s *Server) ownerDelete(w http.ResponseWriter, r *http.Request) {
	o := s.ownerReq(r)
	if err := o.delete(r, chi.URLParam(r, "type"), chi.URLParam(r, "id")); err != nil {
		s.ownerFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (o *ownerReq) delete(r *http.Request, typ, id string) error {
	if err := writableType(typ); err != nil {
		return err
	}
	stored, cur, err := o.load(typ, id)
	if err != nil {
		return err
	}
	if !o.createdBy(cur) {
		if originOf(cur) == originLDAP {
			return forbidden("", typ+"/"+id+" is synced from LDAP; owners may not delete it")
		}
		return forbidden("", typ+"/"+id+" does not belong to the caller")
	}
	if err := checkIfMatch(r, stored); err != nil {
		return err
	}
	target := []index.Ref{{Type: typ, ID: id}}
	var referrers [][2]string
	switch typ {
	case index.Endpoint:
		referrers = [][2]string{{index.HealthcareService, "endpoint"}, {index.PractitionerRole, "endpoint"}}
	case index.HealthcareService:
		referrers = [][2]string{{index.PractitionerRole, "service"}}
	}
	for _, rf := range referrers {
		refs, err := o.s.deps.Store.ReferencedBy(o.ctx, rf[0], rf[1], target)
		if err != nil {
			return fmt.Errorf("owner delete: %w", err)
		}
		if len(refs) > 0 {
			return ownerFail(http.StatusConflict, fhir.CodeConflict, "", fmt.Sprintf("%s/%s is still referenced by %s/%s", typ, id, refs[0].Type, refs[0].ID))
		}
	}
	if err := o.s.deps.Store.Delete(o.ctx, typ, id); err != nil {
		if o.s.deps.NotFound(err) {
			return ownerFail(http.StatusNotFound, fhir.CodeNotFound, "", "resource not found")
		}
		return fmt.Errorf("owner delete: %w", err)
	}
	o.s.log.Info("owner write", "op", "delete", "type", typ, "id", id, "telematik_id", o.tid)
	return nil
}
