package fhir

import (
	"encoding/json"
	"errors"

	"github.com/timstack/timstack/directory/index"
)

// The VZD's _text on HealthcareService and PractitionerRole searches one denormalised document per
// resource that holds values of the resources it links to (spec §3.2). The document therefore changes when
// a linked resource changes, which Extract cannot see. The contract with the store/import layer:
//
//  1. On every write of a HealthcareService or PractitionerRole, load the resources Linked(r) names (those
//     that exist) and store TextRows(r, linked) next to Extract(r).
//  2. On every write or delete of an Organization, Practitioner or Location, find the HealthcareServices and
//     PractitionerRoles whose reference rows (organization, practitioner, location) point at it and
//     recompute their _text rows the same way.
//
// Missing linked resources simply contribute no words.

// Linked returns the references whose targets feed r's _text: a HealthcareService's providedBy
// Organization and its Locations, a PractitionerRole's Practitioner and its Locations. Other types have no
// linked text. References that do not resolve locally are left out.
func Linked(r *Resource) []index.Ref {
	if r == nil {
		return nil
	}
	var out []index.Ref
	add := func(ref *Reference, target string) {
		if ref == nil {
			return
		}
		if to, ok := ParseReference(ref.Reference); ok && to.Type == target {
			out = append(out, to)
		}
	}
	switch x := r.View.(type) {
	case *HealthcareService:
		add(x.ProvidedBy, index.Organization)
		for i := range x.Location {
			add(&x.Location[i], index.Location)
		}
	case *PractitionerRole:
		add(x.Practitioner, index.Practitioner)
		for i := range x.Location {
			add(&x.Location[i], index.Location)
		}
	}
	return out
}

// TextWords returns the _text words of r given the linked resources (see Linked; resources r does not
// reference are ignored, so callers may pass a superset, in any order). Words are split and normalised by SplitWords;
// identifier values are also kept whole ("1-2arvtst-ap000052" besides "1", "2arvtst", "ap000052") so a
// quoted TelematikID matches as one word. Each word appears once, in first-seen order. Types other than
// HealthcareService and PractitionerRole have no _text document.
//
// HealthcareService: its name, specialty and type displays, its TelematikID/BSNR/KZVA/IKNR values; its
// Organization's name, alias, type display and code and those identifier values; its Locations' address
// lines, city and postal code. PractitionerRole: its Practitioner's name parts, qualification displays and
// TelematikID; its Locations' lines, city and postal code.
func TextWords(r *Resource, linked []*Resource) []string {
	if r == nil {
		return nil
	}
	byRef := map[index.Ref]*Resource{}
	for _, l := range linked {
		if l != nil && l.View != nil {
			byRef[index.Ref{Type: l.ResourceType, ID: l.ID}] = l
		}
	}
	w := &words{seen: map[string]bool{}}
	// Linked resources are visited in reference order, whatever order the caller passed them in, so the
	// word list is deterministic.
	forLinked := func(fn func(View)) {
		for _, ref := range Linked(r) {
			if l := byRef[ref]; l != nil {
				fn(l.View)
			}
		}
	}
	switch x := r.View.(type) {
	case *HealthcareService:
		w.add(x.Name)
		w.conceptDisplays(x.Specialty)
		w.conceptDisplays(x.Type)
		w.identifiers(x.Identifier)
		forLinked(func(v View) {
			switch l := v.(type) {
			case *Organization:
				w.add(l.Name)
				w.add(l.Alias...)
				for _, t := range l.Type {
					for _, c := range t.Coding {
						w.add(c.Display, c.Code)
					}
					w.add(t.Text)
				}
				w.identifiers(l.Identifier)
			case *Location:
				w.location(l)
			}
		})
	case *PractitionerRole:
		forLinked(func(v View) {
			switch l := v.(type) {
			case *Practitioner:
				for i := range l.Name {
					w.add(nameParts(&l.Name[i])...)
				}
				for _, q := range l.Qualification {
					w.conceptDisplays([]CodeableConcept{q.Code})
				}
				for _, id := range l.Identifier {
					if id.System == SystemTelematikID {
						w.whole(id.Value)
					}
				}
			case *Location:
				w.location(l)
			}
		})
	default:
		return nil
	}
	return w.list
}

// TextRows wraps TextWords as index rows of the _text parameter.
func TextRows(r *Resource, linked []*Resource) []index.Row {
	ws := TextWords(r, linked)
	rows := make([]index.Row, 0, len(ws))
	for _, word := range ws {
		rows = append(rows, index.Row{Param: "_text", Type: index.TypeText, Value: word})
	}
	return rows
}

type words struct {
	seen map[string]bool
	list []string
}

func (w *words) push(word string) {
	if word != "" && !w.seen[word] {
		w.seen[word] = true
		w.list = append(w.list, word)
	}
}

func (w *words) add(texts ...string) {
	for _, t := range texts {
		for _, word := range SplitWords(t) {
			w.push(word)
		}
	}
}

// whole adds an identifier value split into words and as one normalised word.
func (w *words) whole(value string) {
	w.add(value)
	w.push(NormalizeString(value))
}

func (w *words) identifiers(ids []Identifier) {
	for _, id := range ids {
		if textIdentifierSystems[id.System] {
			w.whole(id.Value)
		}
	}
}

func (w *words) conceptDisplays(ccs []CodeableConcept) {
	for _, cc := range ccs {
		for _, c := range cc.Coding {
			w.add(c.Display)
		}
		w.add(cc.Text)
	}
}

func (w *words) location(l *Location) {
	if a := l.Address; a != nil {
		w.add(a.Line...)
		w.add(a.City, a.PostalCode)
	}
}

// ParseLinked reads, from a resource the store holds, only what TextWords takes from it when it is linked
// by another resource: a Practitioner's names, qualifications and identifiers, a Location's address, an
// Organization's name, aliases, types and identifiers (other types are read whole, by Parse). It is for
// bytes that Parse accepted when they were stored: it checks no more than encoding/json does and skips
// the rest of the resource, which made reading the linked resources of an import's roles and services
// about twice as cheap. The View holds nothing else, so it is no input for Extract or Validate.
func ParseLinked(resourceType string, data []byte) (*Resource, error) {
	r := &Resource{ResourceType: resourceType, JSON: data}
	var err error
	switch resourceType {
	case index.Practitioner:
		var v struct {
			ID            string       `json:"id"`
			Identifier    []Identifier `json:"identifier"`
			Name          []HumanName  `json:"name"`
			Qualification []struct {
				Code CodeableConcept `json:"code"`
			} `json:"qualification"`
		}
		err = json.Unmarshal(data, &v)
		p := &Practitioner{DomainResource: DomainResource{ID: v.ID}, Identifier: v.Identifier, Name: v.Name}
		for _, q := range v.Qualification {
			p.Qualification = append(p.Qualification, Qualification{Code: q.Code})
		}
		r.View = p
	case index.Location:
		var v struct {
			ID      string   `json:"id"`
			Address *Address `json:"address"`
		}
		err = json.Unmarshal(data, &v)
		r.View = &Location{DomainResource: DomainResource{ID: v.ID}, Address: v.Address}
	case index.Organization:
		var v struct {
			ID         string            `json:"id"`
			Identifier []Identifier      `json:"identifier"`
			Type       []CodeableConcept `json:"type"`
			Name       string            `json:"name"`
			Alias      []string          `json:"alias"`
		}
		err = json.Unmarshal(data, &v)
		r.View = &Organization{DomainResource: DomainResource{ID: v.ID}, Identifier: v.Identifier, Type: v.Type, Name: v.Name, Alias: v.Alias}
	default:
		return Parse(data)
	}
	// An element of the wrong JSON type leaves its field empty, as in Parse (which Validate then refuses
	// on a write); anything else means the bytes are not JSON.
	var te *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &te) {
		return nil, &ParseError{Issue: NewIssue(CodeStructure, resourceType, "stored resource is not JSON"), Err: err}
	}
	r.ID = r.View.Base().ID
	return r, nil
}
