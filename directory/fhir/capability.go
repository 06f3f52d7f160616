package fhir

import (
	"time"

	"github.com/timstack/timstack/directory/index"
)

// CapabilityOptions are the server-specific parts of the CapabilityStatement.
type CapabilityOptions struct {
	SoftwareName    string
	SoftwareVersion string
	// BaseURL is implementation.url, the FHIR base the statement describes (e.g. https://host/search).
	BaseURL     string
	Description string
	// Date is CapabilityStatement.date; a fixed build or start time keeps the answer cacheable.
	Date time.Time
	// Includes and RevIncludes list, per resource type, the _include / _revinclude values the search
	// layer accepts (e.g. "PractitionerRole:practitioner"); they come from package search.
	Includes    map[string][]string
	RevIncludes map[string][]string
}

// profiles are the gematik profiles per served type.
var profiles = map[string]string{
	index.Practitioner:      "https://gematik.de/fhir/directory/StructureDefinition/PractitionerDirectory",
	index.PractitionerRole:  "https://gematik.de/fhir/directory/StructureDefinition/PractitionerRoleDirectory",
	index.Organization:      "https://gematik.de/fhir/directory/StructureDefinition/OrganizationDirectory",
	index.HealthcareService: "https://gematik.de/fhir/directory/StructureDefinition/HealthcareServiceDirectory",
	index.Location:          "https://gematik.de/fhir/directory/StructureDefinition/LocationDirectory",
	index.Endpoint:          "https://gematik.de/fhir/directory/StructureDefinition/EndpointDirectory",
}

// searchParamType maps an index type to the FHIR SearchParameter type: geo (near) is "special" in R4 and
// the _text word table is a string parameter.
func searchParamType(t index.Type) string {
	switch t {
	case index.TypeGeo:
		return "special"
	case index.TypeText:
		return "string"
	}
	return string(t)
}

// CapabilityStatement renders the /metadata answer, generated from the search-parameter registry so that it
// lists exactly the parameters the server accepts: read and search-type on each of the six types.
func CapabilityStatement(opts CapabilityOptions) []byte {
	type code struct {
		Code string `json:"code"`
	}
	type param struct {
		Name          string `json:"name"`
		Type          string `json:"type"`
		Documentation string `json:"documentation,omitempty"`
	}
	type resource struct {
		Type             string   `json:"type"`
		Profile          string   `json:"profile,omitempty"`
		Interaction      []code   `json:"interaction"`
		SearchInclude    []string `json:"searchInclude,omitempty"`
		SearchRevInclude []string `json:"searchRevInclude,omitempty"`
		SearchParam      []param  `json:"searchParam"`
	}
	type rest struct {
		Mode     string     `json:"mode"`
		Resource []resource `json:"resource"`
	}
	type software struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	type implementation struct {
		Description string `json:"description"`
		URL         string `json:"url,omitempty"`
	}
	cs := struct {
		ResourceType   string          `json:"resourceType"`
		Status         string          `json:"status"`
		Date           string          `json:"date"`
		Kind           string          `json:"kind"`
		Software       *software       `json:"software,omitempty"`
		Implementation *implementation `json:"implementation,omitempty"`
		FHIRVersion    string          `json:"fhirVersion"`
		Format         []string        `json:"format"`
		Rest           []rest          `json:"rest"`
	}{
		ResourceType: "CapabilityStatement",
		Status:       "active",
		Date:         opts.Date.UTC().Format(time.RFC3339),
		Kind:         "instance",
		FHIRVersion:  "4.0.1",
		Format:       []string{"application/fhir+json", "json"},
	}
	if opts.SoftwareName != "" {
		cs.Software = &software{Name: opts.SoftwareName, Version: opts.SoftwareVersion}
	}
	if opts.BaseURL != "" || opts.Description != "" {
		d := opts.Description
		if d == "" {
			d = "VZD FHIR directory"
		}
		cs.Implementation = &implementation{Description: d, URL: opts.BaseURL}
	}
	r := rest{Mode: "server"}
	for _, t := range index.ResourceTypes {
		res := resource{
			Type:             t,
			Profile:          profiles[t],
			Interaction:      []code{{"read"}, {"search-type"}},
			SearchInclude:    opts.Includes[t],
			SearchRevInclude: opts.RevIncludes[t],
		}
		for _, p := range index.Params(t) {
			res.SearchParam = append(res.SearchParam, param{Name: p.Code, Type: searchParamType(p.Type), Documentation: p.Source})
		}
		r.Resource = append(r.Resource, res)
	}
	cs.Rest = []rest{r}
	return marshal(cs)
}
