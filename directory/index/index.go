// Package index is the contract between the directory's three layers: package fhir extracts index Rows from
// resources, package store keeps them in one table per parameter type (token, string, reference, date,
// number, geo) and evaluates Query trees over them in SQL, and package search compiles FHIR search URLs into
// Query trees. It holds types only, no behaviour, so each layer can be built and tested on its own.
package index

import "time"

// Type is a FHIR search-parameter type, and at the same time the index table a Row lives in.
type Type string

// Parameter types kept in index tables.
const (
	TypeToken     Type = "token"     // System|Code, plus Display for :text
	TypeString    Type = "string"    // Value normalised: lower case, accents folded, whitespace collapsed
	TypeReference Type = "reference" // RefType/RefID of a local reference
	TypeDate      Type = "date"      // [Low, High] instant range
	TypeNumber    Type = "number"    // Number
	TypeGeo       Type = "geo"       // Lat, Lon (Location.position)
	TypeText      Type = "text"      // one row per normalised word of the _text document (param "_text")
)

// Row is one index entry of a resource for one search parameter. A resource has many rows; a repeating
// element yields one row per value.
type Row struct {
	Param string // search parameter code, e.g. "identifier", "name", "organization", "_tag", "_text"
	Type  Type

	// token
	System  string
	Code    string
	Display string // coding display / text, for the :text modifier (normalised like strings)

	// string and text
	Value string

	// reference (local, resolved: "Organization/123" → RefType "Organization", RefID "123")
	RefType string
	RefID   string

	// date
	Low, High time.Time

	// number
	Number float64

	// geo
	Lat, Lon float64
}

// Resource is what the store keeps: the JSON bytes as received (source of truth, served as-is), the values
// the server manages, and the index rows extracted from it.
type Resource struct {
	Type        string // "Practitioner", "PractitionerRole", "Organization", "HealthcareService", "Location", "Endpoint"
	ID          string
	VersionID   int64 // assigned by the store on write, starting at 1
	LastUpdated time.Time
	JSON        []byte
	Rows        []Row
}

// Ref names a resource.
type Ref struct {
	Type string
	ID   string
}

// Cond is a condition on resources of one type. Conditions compose with And / Or.
type Cond interface{ isCond() }

// And matches when every condition matches (an empty And matches everything).
type And []Cond

// Or matches when any condition matches (an empty Or matches nothing).
type Or []Cond

// Not matches when the condition does not match.
type Not struct{ Cond Cond }

// IDs matches resources whose id is one of IDs (_id).
type IDs struct{ IDs []string }

// Token matches token rows of Param. Empty System with AnySystem matches any system (FHIR `code`), empty
// System without AnySystem matches rows with no system (FHIR `|code`). Empty Code with a System matches any
// code of that system (`system|`). Text, when set, matches instead the normalised Display by prefix
// (FHIR :text), ignoring System and Code.
type Token struct {
	Param     string
	System    string
	Code      string
	AnySystem bool
	Text      string
}

// StringMode is how a String condition compares.
type StringMode int

// String comparison modes (FHIR default is prefix, case- and accent-insensitive).
const (
	StringPrefix   StringMode = iota // default
	StringExact                      // :exact (compares the normalised value; callers normalise the input)
	StringContains                   // :contains
)

// String matches string rows of Param. Value is already normalised by the caller (same normalisation as
// the index).
type String struct {
	Param string
	Value string
	Mode  StringMode
}

// Reference matches reference rows of Param pointing at Type/ID (Type may be empty: any type).
type Reference struct {
	Param string
	Type  string
	ID    string
}

// DateCmp is a FHIR date prefix.
type DateCmp string

// Date prefixes.
const (
	DateEq DateCmp = "eq"
	DateLt DateCmp = "lt"
	DateLe DateCmp = "le"
	DateGt DateCmp = "gt"
	DateGe DateCmp = "ge"
)

// Date matches date rows of Param against [Low, High] per Cmp (FHIR R4 §3.1.1.4.2 range semantics).
type Date struct {
	Param     string
	Cmp       DateCmp
	Low, High time.Time
}

// Near matches geo rows of Param within Km kilometres (great-circle) of Lat/Lon.
type Near struct {
	Param    string
	Lat, Lon float64
	Km       float64
}

// Text matches when every word is a prefix of some word of the resource's _text rows (VZD simple mode:
// AND of prefix matches). Words are already normalised.
type Text struct {
	Words []string
}

// Chain matches resources whose reference parameter Param points at a resource of TargetType matching
// Where (FHIR `organization.name=…`). The store resolves it with a join over the reference table.
type Chain struct {
	Param      string
	TargetType string
	Where      Cond
}

// Has matches resources that are referenced by a resource of SourceType through SourceParam, where the
// source matches Where (FHIR `_has:HealthcareService:endpoint:identifier=…`).
type Has struct {
	SourceType  string
	SourceParam string
	Where       Cond
}

func (And) isCond()       {}
func (Or) isCond()        {}
func (Not) isCond()       {}
func (IDs) isCond()       {}
func (Token) isCond()     {}
func (String) isCond()    {}
func (Reference) isCond() {}
func (Date) isCond()      {}
func (Near) isCond()      {}
func (Text) isCond()      {}
func (Chain) isCond()     {}
func (Has) isCond()       {}

// Query selects resources of one type. Results are ordered by (Type, ID) so paging is stable.
type Query struct {
	Type  string
	Where Cond // nil matches everything
	// Limit is the page size (0 = no rows, only the total when Total is set); Offset skips matches.
	Limit  int
	Offset int
	// Total asks for the number of all matches, independent of Limit/Offset.
	Total bool
}

// Result is a page of matches.
type Result struct {
	IDs   []string
	Total int // only when Query.Total was set; otherwise -1
}
