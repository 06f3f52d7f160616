package fhir

import (
	"bytes"
	"strconv"
	"time"
)

// SearchMode is Bundle.entry.search.mode.
type SearchMode string

// Search modes of searchset entries.
const (
	ModeMatch   SearchMode = "match"
	ModeInclude SearchMode = "include"
	ModeOutcome SearchMode = "outcome"
)

// Entry is one searchset entry. Resource is the stored JSON, written into the Bundle byte for byte.
type Entry struct {
	FullURL  string
	Resource []byte
	Mode     SearchMode
}

// Filtered is the results-filtered-ex extension on Bundle.total: how many matches a visibility rule removed
// (e.g. hide-versicherte for insured users) and why.
type Filtered struct {
	Count  int
	Reason string // e.g. "Reason: hideVersicherte"
}

// SearchSet is a searchset Bundle to be rendered with JSON.
type SearchSet struct {
	ID          string    // Bundle.id; omitted when empty
	LastUpdated time.Time // Bundle.meta.lastUpdated; omitted when zero
	// Total is Bundle.total; negative omits it (as index.Result does when no total was asked for).
	Total    int
	Filtered *Filtered // results-filtered-ex on total; only written with a total
	SelfURL  string
	NextURL  string
	// Subsetted marks a _summary=count answer: meta.tag SUBSETTED (v3-ObservationValue), like HAPI.
	Subsetted bool
	Entries   []Entry
}

// JSON renders the Bundle. It is assembled by hand rather than through encoding/json so that each entry's
// resource bytes are copied as stored: json.RawMessage would be re-compacted and HTML-escaped. The entry
// bytes must be valid JSON objects (Parse guarantees this for stored resources).
func (b SearchSet) JSON() []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"resourceType":"Bundle"`)
	if b.ID != "" {
		buf.WriteString(`,"id":`)
		buf.Write(marshal(b.ID))
	}
	if !b.LastUpdated.IsZero() || b.Subsetted {
		meta := struct {
			LastUpdated string   `json:"lastUpdated,omitempty"`
			Tag         []Coding `json:"tag,omitempty"`
		}{}
		if !b.LastUpdated.IsZero() {
			meta.LastUpdated = b.LastUpdated.Format(time.RFC3339Nano)
		}
		if b.Subsetted {
			meta.Tag = []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", Code: "SUBSETTED", Display: "Resource encoded in summary mode"}}
		}
		buf.WriteString(`,"meta":`)
		buf.Write(marshal(meta))
	}
	buf.WriteString(`,"type":"searchset"`)
	if b.Total >= 0 {
		buf.WriteString(`,"total":`)
		buf.WriteString(strconv.Itoa(b.Total))
		if f := b.Filtered; f != nil {
			count, reason := int64(f.Count), f.Reason
			ext := Extension{URL: ExtResultsFiltered, Extension: []Extension{{URL: "count", ValueInteger: &count}}}
			if reason != "" {
				ext.Extension = append(ext.Extension, Extension{URL: "reason", ValueString: &reason})
			}
			buf.WriteString(`,"_total":`)
			buf.Write(marshal(struct {
				Extension []Extension `json:"extension"`
			}{[]Extension{ext}}))
		}
	}
	type link struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	}
	var links []link
	if b.SelfURL != "" {
		links = append(links, link{"self", b.SelfURL})
	}
	if b.NextURL != "" {
		links = append(links, link{"next", b.NextURL})
	}
	if len(links) > 0 {
		buf.WriteString(`,"link":`)
		buf.Write(marshal(links))
	}
	if len(b.Entries) > 0 {
		buf.WriteString(`,"entry":[`)
		for i, e := range b.Entries {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteByte('{')
			if e.FullURL != "" {
				buf.WriteString(`"fullUrl":`)
				buf.Write(marshal(e.FullURL))
				buf.WriteByte(',')
			}
			buf.WriteString(`"resource":`)
			buf.Write(bytes.TrimSpace(e.Resource))
			mode := e.Mode
			if mode == "" {
				mode = ModeMatch
			}
			buf.WriteString(`,"search":{"mode":`)
			buf.Write(marshal(string(mode)))
			buf.WriteString(`}}`)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return buf.Bytes()
}
