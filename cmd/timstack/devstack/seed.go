package devstack

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/timstack/timstack/directory"
)

// Organization is a directory entry the stack seeds, as gematik's LDAP synchronisation would: an active
// Organization with its HealthcareService, and the practitioners working there with their TI-Messenger
// endpoints. Onboarding at the registration service needs the active Organization (the provider API
// refuses a domain for an unknown Telematik-ID).
type Organization struct {
	TelematikID   string         `yaml:"telematik_id"`
	Name          string         `yaml:"name"`
	City          string         `yaml:"city"`
	Practitioners []Practitioner `yaml:"practitioners"`
}

// Practitioner is a person in the directory.
type Practitioner struct {
	TelematikID string `yaml:"telematik_id"`
	Given       string `yaml:"given"`
	Family      string `yaml:"family"`
	// MXID, when set, is published as the practitioner's TI-Messenger endpoint (matrix:u/…).
	MXID string `yaml:"mxid"`
}

const (
	originSystem   = "https://gematik.de/fhir/directory/CodeSystem/Origin"
	telematikIDSys = "https://gematik.de/fhir/sid/telematik-id"
	connTypeSystem = "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType"
	payloadSystem  = "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryPayloadType"
)

// seedDirectory writes the configured organisations (idempotent: resource ids derive from Telematik-IDs).
func (s *Stack) seedDirectory(ctx context.Context, c *central) error {
	var docs [][]byte
	add := func(v map[string]any) error {
		v["meta"] = map[string]any{"tag": []any{map[string]any{"system": originSystem, "code": "ldap"}}}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		docs = append(docs, b)
		return nil
	}
	ident := func(tid string) []any { return []any{map[string]any{"system": telematikIDSys, "value": tid}} }
	for _, o := range s.cfg.Organizations {
		oid := resourceID("org", o.TelematikID)
		if err := add(map[string]any{"resourceType": "Organization", "id": oid, "active": true,
			"identifier": ident(o.TelematikID), "name": o.Name}); err != nil {
			return err
		}
		locID := resourceID("loc", o.TelematikID)
		if err := add(map[string]any{"resourceType": "Location", "id": locID,
			"address": map[string]any{"city": o.City, "country": "DE"}}); err != nil {
			return err
		}
		if err := add(map[string]any{"resourceType": "HealthcareService", "id": resourceID("hcs", o.TelematikID),
			"providedBy": map[string]any{"reference": "Organization/" + oid}, "name": o.Name,
			"location": []any{map[string]any{"reference": "Location/" + locID}}}); err != nil {
			return err
		}
		for _, p := range o.Practitioners {
			pid := resourceID("prac", p.TelematikID)
			if err := add(map[string]any{"resourceType": "Practitioner", "id": pid, "active": true,
				"identifier": ident(p.TelematikID),
				"name":       []any{map[string]any{"text": p.Given + " " + p.Family, "family": p.Family, "given": []string{p.Given}}}}); err != nil {
				return err
			}
			role := map[string]any{"resourceType": "PractitionerRole", "id": resourceID("role", p.TelematikID),
				"practitioner": map[string]any{"reference": "Practitioner/" + pid},
				"location":     []any{map[string]any{"reference": "Location/" + locID}}}
			if p.MXID != "" {
				eid := resourceID("ep", p.TelematikID)
				if err := add(map[string]any{"resourceType": "Endpoint", "id": eid, "status": "active",
					"connectionType": map[string]any{"system": connTypeSystem, "code": "tim"},
					"name":           "TI-Messenger " + p.Given + " " + p.Family,
					"payloadType":    []any{map[string]any{"coding": []any{map[string]any{"system": payloadSystem, "code": "tim-chat"}}}},
					"address":        p.MXID}); err != nil {
					return err
				}
				role["endpoint"] = []any{map[string]any{"reference": "Endpoint/" + eid}}
			}
			if err := add(role); err != nil {
				return err
			}
		}
	}
	if len(docs) == 0 {
		return nil
	}
	_, err := (&directory.Writer{Store: c.dirStore}).Put(ctx, docs)
	return err
}

// resourceID makes a FHIR id ([A-Za-z0-9-.]{1,64}) from a Telematik-ID.
func resourceID(prefix, telematikID string) string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, telematikID)
	id = prefix + "-" + id
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}
