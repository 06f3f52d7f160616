package search

import (
	"encoding/json"
	"fmt"

	"github.com/timstack/timstack/directory/fhir"
	"github.com/timstack/timstack/directory/index"
)

// FilteredReason is the results-filtered-ex reason of matches removed for insured users, as in gematik's
// example Bundle-FilteredSearchSetBundle.
const FilteredReason = "Reason: hideVersicherte"

// BundleJSON encodes the page as a FHIR searchset Bundle through the fhir package's one Bundle writer, HAPI
// style like the VZD (spec §1.2): fullUrl is fullURLBase/Type/id, entries carry search.mode, the stored
// resource bytes go out as they are, a _summary=count page has no entries but the SUBSETTED tag, and
// matches removed for insured users are counted in Bundle.total's results-filtered-ex extension (spec
// §3.4). It fails only if a stored resource is not a JSON object.
func (p *Page) BundleJSON(fullURLBase string) ([]byte, error) {
	set := fhir.SearchSet{Total: p.Total, SelfURL: p.Self, NextURL: p.Next, Subsetted: p.SummaryCount}
	if p.Filtered > 0 {
		set.Filtered = &fhir.Filtered{Count: p.Filtered, Reason: FilteredReason}
	}
	add := func(mode fhir.SearchMode, list []index.Resource) error {
		for _, r := range list {
			if !json.Valid(r.JSON) || len(r.JSON) == 0 || r.JSON[0] != '{' {
				return fmt.Errorf("encode bundle: stored %s/%s is not a JSON object", r.Type, r.ID)
			}
			set.Entries = append(set.Entries, fhir.Entry{FullURL: fullURLBase + "/" + r.Type + "/" + r.ID, Resource: r.JSON, Mode: mode})
		}
		return nil
	}
	if err := add(fhir.ModeMatch, p.Matches); err != nil {
		return nil, err
	}
	if err := add(fhir.ModeInclude, p.Included); err != nil {
		return nil, err
	}
	return set.JSON(), nil
}
