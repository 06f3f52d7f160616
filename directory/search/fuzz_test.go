package search

import (
	"errors"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory/index"
)

// FuzzParse feeds "Type?query" strings (the seed corpus holds the typical client queries of spec §3.5) and
// checks that parsing never panics, refuses only with *Error, stays inside the limits, and that the
// parameters kept for links parse again (a next link must never be refused).
func FuzzParse(f *testing.F) {
	f.Add("PractitionerRole?practitioner.active=true&practitioner.name=Timjamin")
	f.Fuzz(func(t *testing.T, in string) {
		typ, q, _ := strings.Cut(in, "?")
		for _, opts := range []Options{{}, {Mandatory: true, Insured: true}} {
			req, err := ParseQuery(typ, q, opts)
			if err != nil {
				var se *Error
				if !errors.As(err, &se) || se.Code == "" || req != nil {
					t.Fatalf("ParseQuery(%q) = %v, %v; want nil and *Error", in, req, err)
				}
				continue
			}
			if req.Count < 0 || req.Count > MaxCount || req.Offset < 0 || req.Offset >= MaxResults {
				t.Fatalf("ParseQuery(%q): count %d offset %d outside the limits", in, req.Count, req.Offset)
			}
			if _, ok := req.Where.(index.And); !ok {
				t.Fatalf("ParseQuery(%q): Where is %T, want index.And", in, req.Where)
			}
			// the links carry Self encoded, and come back through ParseQuery
			again, err := ParseQuery(typ, req.Self.Encode(), opts)
			if err != nil {
				t.Fatalf("ParseQuery(Self of %q) = %v; links would be refused", in, err)
			}
			if again.SummaryCount != req.SummaryCount || len(again.Includes) != len(req.Includes) {
				t.Fatalf("ParseQuery(Self of %q) changed the request shape", in)
			}
		}
	})
}
