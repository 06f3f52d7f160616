package fhir

import (
	"slices"
	"strings"

	"github.com/timstack/timstack/directory/index"
)

// Extract returns the index rows of a resource for every search parameter of its type that has values,
// following each parameter's Source in the registry (index.Params). Parameters with no rows of their own are
// skipped: _id (matched on the resource id), _lastUpdated (set by the store) and _text (denormalised over
// linked resources: the store adds TextRows, see TextWords and Linked). Rows come out in registry order,
// and within a parameter in document order.
func Extract(r *Resource) []index.Row {
	if r == nil || r.View == nil {
		return nil
	}
	set := extractors[r.ResourceType]
	if set == nil {
		return nil
	}
	s := &sink{rows: make([]index.Row, 0, 32)}
	for _, p := range extractParams[r.ResourceType] {
		s.p = p
		if f, ok := commonExtractors[p.Code]; ok {
			f(r.View.Base(), s)
			continue
		}
		set.extract(p.Code, r.View, s)
	}
	return s.rows
}

// extractParams is index.Params of every resource type, computed once: Params copies and sorts the
// registry on every call, which was 5 % of an import's CPU.
var extractParams = func() map[string][]index.Param {
	m := make(map[string][]index.Param, len(index.ResourceTypes))
	for _, t := range index.ResourceTypes {
		m[t] = index.Params(t)
	}
	return m
}()

// noRows are the registry parameters that deliberately have no extractor (see Extract).
var noRows = map[string]bool{"_id": true, "_lastUpdated": true, "_text": true}

// hasExtractor reports whether Extract knows how to produce rows for a registry parameter; the tests assert
// it for every parameter in index.Params so the registry and the extractor stay in step.
func hasExtractor(resourceType, code string) bool {
	if _, ok := commonExtractors[code]; ok {
		return true
	}
	set := extractors[resourceType]
	return set != nil && set.has(code)
}

// sink collects the rows of one resource; p is the parameter currently being extracted.
type sink struct {
	p    index.Param
	rows []index.Row
}

func (s *sink) token(system, code, display string) {
	if code == "" && display == "" {
		return
	}
	s.rows = append(s.rows, index.Row{Param: s.p.Code, Type: index.TypeToken, System: system, Code: code, Display: NormalizeString(display)})
}

// codings emits one token row per coding; the display falls back to the CodeableConcept's text (text given
// as fallback) so :text finds either.
func (s *sink) codings(cs []Coding, text string) {
	for _, c := range cs {
		d := c.Display
		if d == "" {
			d = text
		}
		s.token(c.System, c.Code, d)
		if c.Display != "" && text != "" && NormalizeString(text) != NormalizeString(c.Display) {
			s.token(c.System, c.Code, text)
		}
	}
}

func (s *sink) concepts(ccs []CodeableConcept) {
	for _, cc := range ccs {
		if len(cc.Coding) == 0 {
			s.token("", "", cc.Text) // text-only concept: found by :text alone
			continue
		}
		s.codings(cc.Coding, cc.Text)
	}
}

func (s *sink) identifiers(ids []Identifier) {
	for _, id := range ids {
		if id.Value == "" {
			continue
		}
		d := ""
		if id.Type != nil {
			d = id.Type.Text
			if d == "" && len(id.Type.Coding) > 0 {
				d = id.Type.Coding[0].Display
			}
		}
		s.token(id.System, id.Value, d)
	}
}

// code emits a plain code (status, gender) with no system.
func (s *sink) code(c string) {
	if c != "" {
		s.token("", c, "")
	}
}

func (s *sink) boolean(b *bool) {
	if b == nil {
		return
	}
	if *b {
		s.code("true")
	} else {
		s.code("false")
	}
}

// strs emits one normalised string row per non-empty value, skipping repeats within the parameter.
func (s *sink) strs(vals ...string) {
	seen := map[string]bool{}
	for _, v := range vals {
		n := NormalizeString(v)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		s.rows = append(s.rows, index.Row{Param: s.p.Code, Type: index.TypeString, Value: n})
	}
}

// refs emits reference rows for references that resolve locally to one of the parameter's target types.
func (s *sink) refs(rs ...*Reference) {
	for _, r := range rs {
		if r == nil {
			continue
		}
		to, ok := ParseReference(r.Reference)
		if !ok || (len(s.p.Targets) > 0 && !slices.Contains(s.p.Targets, to.Type)) {
			continue
		}
		s.rows = append(s.rows, index.Row{Param: s.p.Code, Type: index.TypeReference, RefType: to.Type, RefID: to.ID})
	}
}

func refList(rs []Reference) []*Reference {
	out := make([]*Reference, len(rs))
	for i := range rs {
		out[i] = &rs[i]
	}
	return out
}

// extCodings emits valueCoding (and valueCode, with implied system) of extensions with url.
func (s *sink) extCodings(exts []Extension, url, impliedSystem string) {
	for _, e := range extensionsByURL(exts, url) {
		if e.ValueCoding != nil {
			s.token(e.ValueCoding.System, e.ValueCoding.Code, e.ValueCoding.Display)
		}
		if e.ValueCode != nil {
			s.token(impliedSystem, *e.ValueCode, "")
		}
	}
}

func (s *sink) extIdentifiers(exts []Extension, url string) {
	for _, e := range extensionsByURL(exts, url) {
		if e.ValueIdentifier != nil {
			s.identifiers([]Identifier{*e.ValueIdentifier})
		}
	}
}

func addressParts(a *Address) []string {
	if a == nil {
		return nil
	}
	parts := append([]string{}, a.Line...)
	return append(parts, a.City, a.District, a.State, a.PostalCode, a.Country, a.Text)
}

func (s *sink) addresses(as []Address, part func(*Address) string) {
	for i := range as {
		if part == nil {
			s.strs(addressParts(&as[i])...)
		} else {
			s.strs(part(&as[i]))
		}
	}
}

func nameParts(n *HumanName) []string {
	parts := []string{n.Text, n.Family}
	parts = append(parts, n.Given...)
	parts = append(parts, n.Prefix...)
	return append(parts, n.Suffix...)
}

// extractorSet is the per-type extractor table, keyed by search-parameter code.
type extractorSet interface {
	has(code string) bool
	extract(code string, v View, s *sink)
}

type typed[T View] map[string]func(T, *sink)

func (t typed[T]) has(code string) bool { _, ok := t[code]; return ok }

func (t typed[T]) extract(code string, v View, s *sink) {
	if f, ok := t[code]; ok {
		f(v.(T), s)
	}
}

// commonExtractors cover the parameters every type shares (index's common list).
var commonExtractors = map[string]func(*DomainResource, *sink){
	"_tag": func(d *DomainResource, s *sink) {
		if d.Meta != nil {
			s.codings(d.Meta.Tag, "")
		}
	},
}

// extractors implement each registry parameter's Source; one entry per (type, code).
var extractors = map[string]extractorSet{
	index.HealthcareService: typed[*HealthcareService]{
		"active":           func(x *HealthcareService, s *sink) { s.boolean(x.Active) },
		"identifier":       func(x *HealthcareService, s *sink) { s.identifiers(x.Identifier) },
		"name":             func(x *HealthcareService, s *sink) { s.strs(x.Name) },
		"organization":     func(x *HealthcareService, s *sink) { s.refs(x.ProvidedBy) },
		"location":         func(x *HealthcareService, s *sink) { s.refs(refList(x.Location)...) },
		"endpoint":         func(x *HealthcareService, s *sink) { s.refs(refList(x.Endpoint)...) },
		"coverage-area":    func(x *HealthcareService, s *sink) { s.refs(refList(x.CoverageArea)...) },
		"specialty":        func(x *HealthcareService, s *sink) { s.concepts(x.Specialty) },
		"service-type":     func(x *HealthcareService, s *sink) { s.concepts(x.Type) },
		"service-category": func(x *HealthcareService, s *sink) { s.concepts(x.Category) },
		"characteristic":   func(x *HealthcareService, s *sink) { s.concepts(x.Characteristic) },
		"coverageAreaPostalCode": func(x *HealthcareService, s *sink) {
			for _, ca := range x.CoverageArea {
				for _, e := range extensionsByURL(ca.Extension, ExtCoveragePostalCode) {
					if e.ValueString != nil {
						s.strs(*e.ValueString)
					}
				}
			}
		},
		"holder-id":          func(x *HealthcareService, s *sink) { s.extCodings(x.Extension, ExtHolderID, SystemHolder) },
		"owner-telematik-id": func(x *HealthcareService, s *sink) { s.extIdentifiers(x.Extension, ExtOwnerTelematikID) },
	},
	index.PractitionerRole: typed[*PractitionerRole]{
		"active":             func(x *PractitionerRole, s *sink) { s.boolean(x.Active) },
		"identifier":         func(x *PractitionerRole, s *sink) { s.identifiers(x.Identifier) },
		"practitioner":       func(x *PractitionerRole, s *sink) { s.refs(x.Practitioner) },
		"organization":       func(x *PractitionerRole, s *sink) { s.refs(x.Organization) },
		"location":           func(x *PractitionerRole, s *sink) { s.refs(refList(x.Location)...) },
		"endpoint":           func(x *PractitionerRole, s *sink) { s.refs(refList(x.Endpoint)...) },
		"service":            func(x *PractitionerRole, s *sink) { s.refs(refList(x.HealthcareService)...) },
		"specialty":          func(x *PractitionerRole, s *sink) { s.concepts(x.Specialty) },
		"role":               func(x *PractitionerRole, s *sink) { s.concepts(x.Code) },
		"holder-id":          func(x *PractitionerRole, s *sink) { s.extCodings(x.Extension, ExtHolderID, SystemHolder) },
		"owner-telematik-id": func(x *PractitionerRole, s *sink) { s.extIdentifiers(x.Extension, ExtOwnerTelematikID) },
	},
	index.Practitioner: typed[*Practitioner]{
		"active":     func(x *Practitioner, s *sink) { s.boolean(x.Active) },
		"identifier": func(x *Practitioner, s *sink) { s.identifiers(x.Identifier) },
		"name": func(x *Practitioner, s *sink) {
			var parts []string
			for i := range x.Name {
				parts = append(parts, nameParts(&x.Name[i])...)
			}
			s.strs(parts...)
		},
		"family": func(x *Practitioner, s *sink) {
			for _, n := range x.Name {
				s.strs(n.Family)
			}
		},
		"given": func(x *Practitioner, s *sink) {
			for _, n := range x.Name {
				s.strs(n.Given...)
			}
		},
		"qualification": func(x *Practitioner, s *sink) {
			for _, q := range x.Qualification {
				s.concepts([]CodeableConcept{q.Code})
			}
		},
		"gender": func(x *Practitioner, s *sink) { s.code(x.Gender) },
	},
	index.Organization: typed[*Organization]{
		"active":     func(x *Organization, s *sink) { s.boolean(x.Active) },
		"identifier": func(x *Organization, s *sink) { s.identifiers(x.Identifier) },
		"name":       func(x *Organization, s *sink) { s.strs(append([]string{x.Name}, x.Alias...)...) },
		"alias":      func(x *Organization, s *sink) { s.strs(x.Alias...) },
		"type":       func(x *Organization, s *sink) { s.concepts(x.Type) },
		"type-display": func(x *Organization, s *sink) {
			for _, t := range x.Type {
				for _, c := range t.Coding {
					s.strs(c.Display)
				}
			}
		},
		"address":      func(x *Organization, s *sink) { s.addresses(x.Address, nil) },
		"address-city": func(x *Organization, s *sink) { s.addresses(x.Address, func(a *Address) string { return a.City }) },
		"address-postalcode": func(x *Organization, s *sink) {
			s.addresses(x.Address, func(a *Address) string { return a.PostalCode })
		},
		"address-state":   func(x *Organization, s *sink) { s.addresses(x.Address, func(a *Address) string { return a.State }) },
		"address-country": func(x *Organization, s *sink) { s.addresses(x.Address, func(a *Address) string { return a.Country }) },
		"partof":          func(x *Organization, s *sink) { s.refs(x.PartOf) },
		"organizationVisibility": func(x *Organization, s *sink) {
			s.extCodings(x.Extension, ExtOrganizationVisibility, "")
		},
		"ncpeh-country": func(x *Organization, s *sink) { s.extCodings(x.Extension, ExtNCPeHCountry, "") },
	},
	index.Location: typed[*Location]{
		"identifier":         func(x *Location, s *sink) { s.identifiers(x.Identifier) },
		"name":               func(x *Location, s *sink) { s.strs(append([]string{x.Name}, x.Alias...)...) },
		"address":            func(x *Location, s *sink) { s.strs(addressParts(x.Address)...) },
		"address-city":       func(x *Location, s *sink) { locAddr(x, s, func(a *Address) string { return a.City }) },
		"address-postalcode": func(x *Location, s *sink) { locAddr(x, s, func(a *Address) string { return a.PostalCode }) },
		"address-state":      func(x *Location, s *sink) { locAddr(x, s, func(a *Address) string { return a.State }) },
		"address-country":    func(x *Location, s *sink) { locAddr(x, s, func(a *Address) string { return a.Country }) },
		"near": func(x *Location, s *sink) {
			p := x.Position
			if p == nil || p.Latitude == nil || p.Longitude == nil {
				return
			}
			lat, lon := *p.Latitude, *p.Longitude
			if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
				return // Validate reports it; a bad point must not poison geo queries
			}
			s.rows = append(s.rows, index.Row{Param: s.p.Code, Type: index.TypeGeo, Lat: lat, Lon: lon})
		},
		"organization": func(x *Location, s *sink) { s.refs(x.ManagingOrganization) },
		"partof":       func(x *Location, s *sink) { s.refs(x.PartOf) },
		"status":       func(x *Location, s *sink) { s.code(x.Status) },
	},
	index.Endpoint: typed[*Endpoint]{
		"identifier": func(x *Endpoint, s *sink) { s.identifiers(x.Identifier) },
		"status":     func(x *Endpoint, s *sink) { s.code(x.Status) },
		"connection-type": func(x *Endpoint, s *sink) {
			if c := x.ConnectionType; c != nil {
				s.token(c.System, c.Code, c.Display)
			}
		},
		"payload-type": func(x *Endpoint, s *sink) { s.concepts(x.PayloadType) },
		"name":         func(x *Endpoint, s *sink) { s.strs(x.Name) },
		"address": func(x *Endpoint, s *sink) {
			if strings.TrimSpace(x.Address) == "" {
				return
			}
			s.rows = append(s.rows, index.Row{Param: s.p.Code, Type: index.TypeString, Value: NormalizeAddress(x.Address)})
		},
		"organization":       func(x *Endpoint, s *sink) { s.refs(x.ManagingOrganization) },
		"endpointVisibility": func(x *Endpoint, s *sink) { s.extCodings(x.Extension, ExtEndpointVisibility, "") },
		"owner-telematik-id": func(x *Endpoint, s *sink) { s.extIdentifiers(x.Extension, ExtOwnerTelematikID) },
	},
}

func locAddr(x *Location, s *sink, part func(*Address) string) {
	if x.Address != nil {
		s.strs(part(x.Address))
	}
}
