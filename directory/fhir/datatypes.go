package fhir

// The datatypes below model only the elements validation and index extraction read. Anything else in the
// JSON is ignored by the views and kept by the raw bytes.

// Meta is Resource.meta.
type Meta struct {
	VersionID   string   `json:"versionId,omitempty"`
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Source      string   `json:"source,omitempty"`
	Profile     []string `json:"profile,omitempty"`
	Tag         []Coding `json:"tag,omitempty"`
	Security    []Coding `json:"security,omitempty"`
}

// Coding is a code from a code system.
type Coding struct {
	Extension []Extension `json:"extension,omitempty"`
	System    string      `json:"system,omitempty"`
	Version   string      `json:"version,omitempty"`
	Code      string      `json:"code,omitempty"`
	Display   string      `json:"display,omitempty"`
}

// CodeableConcept is a set of codings plus free text.
type CodeableConcept struct {
	Extension []Extension `json:"extension,omitempty"`
	Coding    []Coding    `json:"coding,omitempty"`
	Text      string      `json:"text,omitempty"`
}

// Identifier is a business identifier such as a TelematikID.
type Identifier struct {
	Use    string           `json:"use,omitempty"`
	Type   *CodeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	Value  string           `json:"value,omitempty"`
	Period *Period          `json:"period,omitempty"`
}

// Reference points at another resource; see ParseReference for the forms the directory resolves.
type Reference struct {
	Extension  []Extension `json:"extension,omitempty"`
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// HumanName is a person's name.
type HumanName struct {
	Use    string   `json:"use,omitempty"`
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Suffix []string `json:"suffix,omitempty"`
	Period *Period  `json:"period,omitempty"`
}

// Address is a postal address.
type Address struct {
	Use        string   `json:"use,omitempty"`
	Type       string   `json:"type,omitempty"`
	Text       string   `json:"text,omitempty"`
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	District   string   `json:"district,omitempty"`
	State      string   `json:"state,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
	Country    string   `json:"country,omitempty"`
	Period     *Period  `json:"period,omitempty"`
}

// empty reports whether the address carries no text at all (a Location needs a real address).
func (a *Address) empty() bool {
	if a == nil {
		return true
	}
	for _, l := range a.Line {
		if l != "" {
			return false
		}
	}
	return a.Text == "" && a.City == "" && a.District == "" && a.State == "" && a.PostalCode == "" && a.Country == ""
}

// ContactPoint is a phone number, e-mail address etc.
type ContactPoint struct {
	System string  `json:"system,omitempty"`
	Value  string  `json:"value,omitempty"`
	Use    string  `json:"use,omitempty"`
	Rank   int     `json:"rank,omitempty"`
	Period *Period `json:"period,omitempty"`
}

// Period is a time range; the bounds stay strings because FHIR dateTimes have variable precision and the
// directory indexes none of them.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Quantity is a measured amount (ServiceCoverageArea radius).
type Quantity struct {
	Value      *float64 `json:"value,omitempty"`
	Comparator string   `json:"comparator,omitempty"`
	Unit       string   `json:"unit,omitempty"`
	System     string   `json:"system,omitempty"`
	Code       string   `json:"code,omitempty"`
}

// Narrative is Resource.text. Only its presence matters; the XHTML is never interpreted.
type Narrative struct {
	Status string `json:"status,omitempty"`
	Div    string `json:"div,omitempty"`
}

// Extension carries the value[x] types the VZD extensions use; other value types are ignored by the view
// (and kept in the raw JSON).
type Extension struct {
	URL             string      `json:"url,omitempty"`
	ValueCoding     *Coding     `json:"valueCoding,omitempty"`
	ValueIdentifier *Identifier `json:"valueIdentifier,omitempty"`
	ValueString     *string     `json:"valueString,omitempty"`
	ValueCode       *string     `json:"valueCode,omitempty"`
	ValueBoolean    *bool       `json:"valueBoolean,omitempty"`
	ValueInteger    *int64      `json:"valueInteger,omitempty"`
	ValuePeriod     *Period     `json:"valuePeriod,omitempty"`
	ValueQuantity   *Quantity   `json:"valueQuantity,omitempty"`
	Extension       []Extension `json:"extension,omitempty"`
}

// extensionsByURL returns the extensions with the given url, in document order.
func extensionsByURL(exts []Extension, url string) []Extension {
	var out []Extension
	for _, e := range exts {
		if e.URL == url {
			out = append(out, e)
		}
	}
	return out
}
