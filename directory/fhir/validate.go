package fhir

import (
	"fmt"
	"strings"

	"github.com/timstack/timstack/directory/index"
)

// ValidateOptions selects between write validation and the laxer check of data already in the directory.
// The zero value is write validation, the strict one.
type ValidateOptions struct {
	// Legacy is for data that was not written through our API: imports of recorded VZD responses and the
	// store's own older rows. gematik's 2022 TU data carries no meta.tag at all, so a missing Origin tag is a
	// warning instead of an error; every other rule stays an error. Writes (owner API, sync) must leave this
	// false.
	Legacy bool
}

// Validate checks a parsed resource against the directory's profile rules (spec §2.1, §2.2, §2.4) and
// returns every finding, not just the first. The resource is acceptable when HasErrors is false. Elements of
// the wrong JSON type found by Parse come first.
func Validate(r *Resource, opts ValidateOptions) []Issue {
	if r == nil {
		return []Issue{NewIssue(CodeRequired, "", "no resource")}
	}
	v := &validator{typ: r.ResourceType, opts: opts}
	v.issues = append(v.issues, r.decodeIssues...)
	if r.View == nil {
		v.add(NewIssue(CodeNotSupported, "resourceType",
			fmt.Sprintf("resource type %q is not served by the directory (expected one of %s)", r.ResourceType, strings.Join(index.ResourceTypes, ", "))))
		return v.issues
	}
	base := r.View.Base()
	if base.ID != "" && !ValidID(base.ID) {
		v.add(NewIssue(CodeValue, v.path("id"), "id must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'"))
	}
	v.meta(base.Meta)

	switch x := r.View.(type) {
	case *Practitioner:
		v.identifiers(x.Identifier, true)
	case *Organization:
		v.identifiers(x.Identifier, true)
	case *PractitionerRole:
		v.identifiers(x.Identifier, false)
		v.requiredRef(x.Practitioner, "practitioner", index.Practitioner)
	case *HealthcareService:
		v.identifiers(x.Identifier, false)
		v.requiredRef(x.ProvidedBy, "providedBy", index.Organization)
	case *Location:
		v.identifiers(x.Identifier, false)
		v.location(x)
	case *Endpoint:
		v.identifiers(x.Identifier, false)
		v.endpoint(x)
	}
	return v.issues
}

type validator struct {
	typ    string
	opts   ValidateOptions
	issues []Issue
}

func (v *validator) add(is Issue) { v.issues = append(v.issues, is) }

func (v *validator) path(p string) string { return v.typ + "." + p }

// meta checks the Origin tag every profile requires (spec §2.1).
func (v *validator) meta(m *Meta) {
	found := false
	if m != nil {
		for i, t := range m.Tag {
			if t.System != SystemOrigin {
				continue
			}
			found = true
			if !originCodes[t.Code] {
				v.add(NewIssue(CodeCodeInvalid, v.path(fmt.Sprintf("meta.tag[%d].code", i)),
					"Origin tag code must be one of ldap, owner, apo"))
			}
		}
	}
	if !found {
		is := NewIssue(CodeRequired, v.path("meta.tag"), "meta.tag must contain an Origin coding ("+SystemOrigin+")")
		if v.opts.Legacy {
			is.Severity = SeverityWarning
		}
		v.add(is)
	}
}

// identifiers checks TelematikID identifiers have a value and, where the profile demands one, that there is
// a TelematikID at all.
func (v *validator) identifiers(ids []Identifier, needTelematikID bool) {
	found := false
	for i, id := range ids {
		if id.System != SystemTelematikID {
			continue
		}
		found = true
		if strings.TrimSpace(id.Value) == "" {
			v.add(NewIssue(CodeRequired, v.path(fmt.Sprintf("identifier[%d].value", i)), "TelematikID identifier has no value"))
		}
	}
	if needTelematikID && !found {
		v.add(NewIssue(CodeRequired, v.path("identifier"), "a TelematikID identifier ("+SystemTelematikID+") is required"))
	}
}

// requiredRef checks a mandatory reference resolves to a local resource of the target type: chains and
// _include follow it, so a logical or foreign reference would silently drop the resource from searches.
func (v *validator) requiredRef(ref *Reference, elem, target string) {
	if ref == nil || ref.Reference == "" {
		v.add(NewIssue(CodeRequired, v.path(elem), elem+" is required"))
		return
	}
	to, ok := ParseReference(ref.Reference)
	if !ok || to.Type != target {
		v.add(NewIssue(CodeValue, v.path(elem+".reference"), fmt.Sprintf("%s must reference a %s as %s/<id>", elem, target, target)))
	}
}

func (v *validator) location(l *Location) {
	if l.Address.empty() {
		v.add(NewIssue(CodeRequired, v.path("address"), "address is required"))
	}
	if p := l.Position; p != nil {
		if p.Latitude == nil || *p.Latitude < -90 || *p.Latitude > 90 {
			v.add(NewIssue(CodeValue, v.path("position.latitude"), "latitude is required and must be within -90..90"))
		}
		if p.Longitude == nil || *p.Longitude < -180 || *p.Longitude > 180 {
			v.add(NewIssue(CodeValue, v.path("position.longitude"), "longitude is required and must be within -180..180"))
		}
	}
}

func (v *validator) endpoint(e *Endpoint) {
	switch {
	case e.Status == "":
		v.add(NewIssue(CodeRequired, v.path("status"), "status is required"))
	case !endpointStatuses[e.Status]:
		v.add(NewIssue(CodeCodeInvalid, v.path("status"), "status must be one of active, suspended, error, off, entered-in-error, test"))
	}
	if e.Name == "" {
		v.add(NewIssue(CodeRequired, v.path("name"), "name is required"))
	}
	if e.Address == "" {
		v.add(NewIssue(CodeRequired, v.path("address"), "address is required"))
	}
	ct := e.ConnectionType
	if ct == nil || ct.Code == "" {
		v.add(NewIssue(CodeRequired, v.path("connectionType"), "connectionType with a code is required"))
		return
	}
	switch {
	case ct.System == "":
		if connectionTypes[SystemConnectionType][ct.Code] || connectionTypes[SystemHL7ConnType][ct.Code] {
			v.add(NewWarning(CodeInvariant, v.path("connectionType.system"), "coding should carry a system (CodingSytemCodeInv)"))
		} else {
			v.add(NewIssue(CodeCodeInvalid, v.path("connectionType.code"), "connection type is not in EndpointConnectionTypeVS"))
		}
	case connectionTypes[ct.System] == nil:
		v.add(NewIssue(CodeCodeInvalid, v.path("connectionType.system"), "connection type system is not in EndpointConnectionTypeVS"))
	case !connectionTypes[ct.System][ct.Code]:
		v.add(NewIssue(CodeCodeInvalid, v.path("connectionType.code"), "connection type is not in EndpointConnectionTypeVS"))
	}
	// KIM invariant (main branch): connection type kim carries the kimVersion extension. A warning, because
	// the develop branch encodes the version in the code instead.
	if ct.Code == "kim" && len(extensionsByURL(ct.Extension, ExtKimVersion)) == 0 {
		v.add(NewWarning(CodeInvariant, v.path("connectionType"), "connection type kim should carry the ConnectionTypeKimVersionEx extension"))
	}
	if e.isTIM() {
		v.timEndpoint(e)
	}
}

// timEndpoint applies the TI-Messenger rules (spec §2.4): payload type tim-chat and a Matrix user ID as
// address.
func (v *validator) timEndpoint(e *Endpoint) {
	chat := false
	for _, pt := range e.PayloadType {
		for _, c := range pt.Coding {
			if c.System == SystemPayloadType && c.Code == PayloadTIMChat {
				chat = true
			}
		}
	}
	if !chat {
		v.add(NewIssue(CodeRequired, v.path("payloadType"), "a TI-Messenger endpoint needs payloadType "+SystemPayloadType+"|"+PayloadTIMChat))
	}
	if e.Address != "" {
		if _, err := NormalizeMXID(e.Address); err != nil {
			v.add(NewIssue(CodeValue, v.path("address"), "a TI-Messenger endpoint address must be a Matrix user ID matrix:u/<localpart>:<server name>"))
		}
	}
}
