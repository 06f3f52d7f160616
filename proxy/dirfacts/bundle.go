package dirfacts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// FHIR identifier and code systems the lookup relies on.
const (
	// TelematikIDSystem is the identifier system of the Telematik-ID.
	TelematikIDSystem = "https://gematik.de/fhir/sid/telematik-id"
	// ProfessionOIDSystem is the code system of organisation types (gemSpec_OID professionOID).
	ProfessionOIDSystem = "https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID"
	// ProviderTypeSystem is the code system of provider types (tim-provider, kim-provider, tsp, idp).
	ProviderTypeSystem = "https://gematik.de/fhir/directory/CodeSystem/OrganizationProviderType"
)

// maxCodeLen bounds one code; directory codes are OIDs and short tokens.
const maxCodeLen = 256

// The types below name only what the lookup reads; everything else in the bundle is skipped by the
// decoder, but what is named must have its FHIR shape or the whole answer is refused.
type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Entry        []bundleEntry `json:"entry"`
}

type bundleEntry struct {
	Resource json.RawMessage `json:"resource"`
}

type resourceHead struct {
	ResourceType string `json:"resourceType"`
}

type organization struct {
	Identifier []identifier      `json:"identifier"`
	Type       []codeableConcept `json:"type"`
}

type identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
}

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// parseOrganizationTypes reads a FHIR searchset Bundle and returns the sorted, unique type codes of the
// Organizations in it that carry telematikID. Organizations without that identifier are ignored: a
// directory that ignored the search parameter must not lend another organisation's types to the peer.
//
// Codes of the gematik systems (ProfessionOIDSystem, ProviderTypeSystem) are returned bare, as operator
// modules list them; a code of any other system, or of none, is returned in FHIR token form
// "system|code", so that it can never pass for a professionOID while still counting as a fact (the
// organisation has a type, just not a known one).
func parseOrganizationTypes(body []byte, telematikID string) ([]string, error) {
	var b bundle
	if err := decodeStrict(body, &b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if b.ResourceType != "Bundle" {
		return nil, fmt.Errorf("bundle: resourceType is %q, want Bundle", b.ResourceType)
	}
	if b.Type != "searchset" {
		return nil, fmt.Errorf("bundle: type is %q, want searchset", b.Type)
	}
	codes := []string{}
	for i, e := range b.Entry {
		if len(e.Resource) == 0 {
			return nil, fmt.Errorf("bundle: entry %d has no resource", i)
		}
		var head resourceHead
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return nil, fmt.Errorf("bundle: entry %d: %w", i, err)
		}
		// HAPI adds OperationOutcome entries (search.mode outcome); includes are not asked for.
		if head.ResourceType != "Organization" {
			continue
		}
		var org organization
		if err := json.Unmarshal(e.Resource, &org); err != nil {
			return nil, fmt.Errorf("bundle: entry %d: Organization: %w", i, err)
		}
		if !slices.Contains(org.Identifier, identifier{System: TelematikIDSystem, Value: telematikID}) {
			continue
		}
		for _, t := range org.Type {
			for _, c := range t.Coding {
				if c.Code == "" {
					continue
				}
				if len(c.Code) > maxCodeLen || len(c.System) > maxCodeLen {
					return nil, fmt.Errorf("bundle: entry %d: type code longer than %d bytes", i, maxCodeLen)
				}
				switch c.System {
				case ProfessionOIDSystem, ProviderTypeSystem:
					codes = append(codes, c.Code)
				default:
					codes = append(codes, c.System+"|"+c.Code)
				}
			}
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes), nil
}

// decodeStrict decodes exactly one JSON value: trailing data is an error, not something to ignore.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
