package index

import "sort"

// Param describes one search parameter of one resource type. The registry below is the single list both
// the extractor (package fhir: which rows a resource yields) and the query compiler (package search: which
// URL parameters are accepted) work from; a test in each package keeps them in step.
type Param struct {
	Code    string
	Type    Type
	Targets []string // reference parameters: resource types the reference may point to
	// Single marks a reference parameter whose element has cardinality 0..1: chains on it may be
	// combined into one (organization.active=true&organization.name=X then mean the same organisation),
	// which lets the store evaluate the selective condition first.
	Single bool
	// Source says where the values come from (FHIR path in prose; the extractor implements it).
	Source string
}

// Resource types the directory serves.
const (
	Practitioner      = "Practitioner"
	PractitionerRole  = "PractitionerRole"
	Organization      = "Organization"
	HealthcareService = "HealthcareService"
	Location          = "Location"
	Endpoint          = "Endpoint"
)

// ResourceTypes lists the served types.
var ResourceTypes = []string{Practitioner, PractitionerRole, Organization, HealthcareService, Location, Endpoint}

// common parameters every type has.
var common = []Param{
	{Code: "_id", Type: TypeToken, Source: "Resource.id (matched on the resource id, no index rows)"},
	{Code: "_tag", Type: TypeToken, Source: "Resource.meta.tag"},
	{Code: "_lastUpdated", Type: TypeDate, Source: "Resource.meta.lastUpdated (server-managed)"},
}

var registry = map[string][]Param{
	HealthcareService: {
		{Code: "active", Type: TypeToken, Source: "HealthcareService.active"},
		{Code: "identifier", Type: TypeToken, Source: "HealthcareService.identifier"},
		{Code: "name", Type: TypeString, Source: "HealthcareService.name"},
		{Code: "organization", Type: TypeReference, Single: true, Targets: []string{Organization}, Source: "HealthcareService.providedBy"},
		{Code: "location", Type: TypeReference, Targets: []string{Location}, Source: "HealthcareService.location"},
		{Code: "endpoint", Type: TypeReference, Targets: []string{Endpoint}, Source: "HealthcareService.endpoint"},
		{Code: "coverage-area", Type: TypeReference, Targets: []string{Location}, Source: "HealthcareService.coverageArea"},
		{Code: "specialty", Type: TypeToken, Source: "HealthcareService.specialty"},
		{Code: "service-type", Type: TypeToken, Source: "HealthcareService.type"},
		{Code: "service-category", Type: TypeToken, Source: "HealthcareService.category"},
		{Code: "characteristic", Type: TypeToken, Source: "HealthcareService.characteristic"},
		{Code: "coverageAreaPostalCode", Type: TypeString, Source: "HealthcareService.coverageArea.extension(ServiceCoveragePostalCode).valueString"},
		{Code: "holder-id", Type: TypeToken, Source: "HealthcareService.extension(holder-id-ex).valueCoding"},
		{Code: "owner-telematik-id", Type: TypeToken, Source: "HealthcareService.extension(OwnerTelematikIdEx).valueIdentifier"},
		{Code: "_text", Type: TypeText, Source: "denormalised words of the service, its Organization (name, type display/code, identifiers), its Locations (line, city, postalCode) and its TelematikID/BSNR/KZVA/IKNR values"},
	},
	PractitionerRole: {
		{Code: "active", Type: TypeToken, Source: "PractitionerRole.active"},
		{Code: "identifier", Type: TypeToken, Source: "PractitionerRole.identifier"},
		{Code: "practitioner", Type: TypeReference, Single: true, Targets: []string{Practitioner}, Source: "PractitionerRole.practitioner"},
		{Code: "organization", Type: TypeReference, Single: true, Targets: []string{Organization}, Source: "PractitionerRole.organization"},
		{Code: "location", Type: TypeReference, Targets: []string{Location}, Source: "PractitionerRole.location"},
		{Code: "endpoint", Type: TypeReference, Targets: []string{Endpoint}, Source: "PractitionerRole.endpoint"},
		{Code: "service", Type: TypeReference, Targets: []string{HealthcareService}, Source: "PractitionerRole.healthcareService"},
		{Code: "specialty", Type: TypeToken, Source: "PractitionerRole.specialty"},
		{Code: "role", Type: TypeToken, Source: "PractitionerRole.code"},
		{Code: "holder-id", Type: TypeToken, Source: "PractitionerRole.extension(holder-id-ex).valueCoding"},
		{Code: "owner-telematik-id", Type: TypeToken, Source: "PractitionerRole.extension(OwnerTelematikIdEx).valueIdentifier"},
		{Code: "_text", Type: TypeText, Source: "denormalised words of the role, its Practitioner (name, qualification display, TelematikID) and its Locations (line, city, postalCode)"},
	},
	Practitioner: {
		{Code: "active", Type: TypeToken, Source: "Practitioner.active"},
		{Code: "identifier", Type: TypeToken, Source: "Practitioner.identifier"},
		{Code: "name", Type: TypeString, Source: "Practitioner.name (text, family, given, prefix, suffix)"},
		{Code: "family", Type: TypeString, Source: "Practitioner.name.family"},
		{Code: "given", Type: TypeString, Source: "Practitioner.name.given"},
		{Code: "qualification", Type: TypeToken, Source: "Practitioner.qualification.code (code and display)"},
		{Code: "gender", Type: TypeToken, Source: "Practitioner.gender"},
	},
	Organization: {
		{Code: "active", Type: TypeToken, Source: "Organization.active"},
		{Code: "identifier", Type: TypeToken, Source: "Organization.identifier"},
		{Code: "name", Type: TypeString, Source: "Organization.name | Organization.alias"},
		{Code: "alias", Type: TypeString, Source: "Organization.alias"},
		{Code: "type", Type: TypeToken, Source: "Organization.type"},
		{Code: "type-display", Type: TypeString, Source: "Organization.type.coding.display"},
		{Code: "address", Type: TypeString, Source: "Organization.address (all parts)"},
		{Code: "address-city", Type: TypeString, Source: "Organization.address.city"},
		{Code: "address-postalcode", Type: TypeString, Source: "Organization.address.postalCode"},
		{Code: "address-state", Type: TypeString, Source: "Organization.address.state"},
		{Code: "address-country", Type: TypeString, Source: "Organization.address.country"},
		{Code: "partof", Type: TypeReference, Single: true, Targets: []string{Organization}, Source: "Organization.partOf"},
		{Code: "organizationVisibility", Type: TypeToken, Source: "Organization.extension(OrganizationVisibility).valueCoding"},
		{Code: "ncpeh-country", Type: TypeToken, Source: "Organization.extension(ncpeh-country-extension).valueCoding"},
	},
	Location: {
		{Code: "identifier", Type: TypeToken, Source: "Location.identifier"},
		{Code: "name", Type: TypeString, Source: "Location.name | Location.alias"},
		{Code: "address", Type: TypeString, Source: "Location.address (all parts)"},
		{Code: "address-city", Type: TypeString, Source: "Location.address.city"},
		{Code: "address-postalcode", Type: TypeString, Source: "Location.address.postalCode"},
		{Code: "address-state", Type: TypeString, Source: "Location.address.state"},
		{Code: "address-country", Type: TypeString, Source: "Location.address.country"},
		{Code: "near", Type: TypeGeo, Source: "Location.position"},
		{Code: "organization", Type: TypeReference, Single: true, Targets: []string{Organization}, Source: "Location.managingOrganization"},
		{Code: "partof", Type: TypeReference, Single: true, Targets: []string{Location}, Source: "Location.partOf"},
		{Code: "status", Type: TypeToken, Source: "Location.status"},
	},
	Endpoint: {
		{Code: "identifier", Type: TypeToken, Source: "Endpoint.identifier"},
		{Code: "status", Type: TypeToken, Source: "Endpoint.status"},
		{Code: "connection-type", Type: TypeToken, Source: "Endpoint.connectionType"},
		{Code: "payload-type", Type: TypeToken, Source: "Endpoint.payloadType (codings, display and text)"},
		{Code: "name", Type: TypeString, Source: "Endpoint.name"},
		{Code: "address", Type: TypeString, Source: "Endpoint.address (MXIDs normalised to matrix:u/localpart:server, lower case)"},
		{Code: "organization", Type: TypeReference, Single: true, Targets: []string{Organization}, Source: "Endpoint.managingOrganization"},
		{Code: "endpointVisibility", Type: TypeToken, Source: "Endpoint.extension(EndpointVisibility).valueCoding"},
		{Code: "owner-telematik-id", Type: TypeToken, Source: "Endpoint.extension(OwnerTelematikIdEx).valueIdentifier"},
	},
}

// aliases are alternative codes accepted in queries: gematik's uplifted refchains are declared as
// connectionType/payloadType while the docs query payload-type; both work.
var aliases = map[string]map[string]string{
	Endpoint: {"connectionType": "connection-type", "payloadType": "payload-type"},
}

// Lookup returns the parameter of resourceType named code (aliases resolved to their canonical code).
func Lookup(resourceType, code string) (Param, bool) {
	if canon, ok := aliases[resourceType][code]; ok {
		code = canon
	}
	for _, p := range common {
		if p.Code == code {
			if _, known := registry[resourceType]; known {
				return p, true
			}
		}
	}
	for _, p := range registry[resourceType] {
		if p.Code == code {
			return p, true
		}
	}
	return Param{}, false
}

// Params returns every parameter of resourceType (common ones first), sorted by code after those.
func Params(resourceType string) []Param {
	if _, ok := registry[resourceType]; !ok {
		return nil
	}
	own := append([]Param(nil), registry[resourceType]...)
	sort.Slice(own, func(i, j int) bool { return own[i].Code < own[j].Code })
	return append(append([]Param(nil), common...), own...)
}

// SingleValued reports whether the reference parameter code of resourceType points at most at one target.
func SingleValued(resourceType, code string) bool {
	p, ok := Lookup(resourceType, code)
	return ok && p.Type == TypeReference && p.Single
}
