// Package directory will own the FHIR R4 VZD directory: resources, validation, search, PostgreSQL and
// SQLite stores, the search/owner/provider HTTP APIs and federation-list signing (certs.SignFederationList).
//
// It is empty until the directory issue lands; the folder exists so the layout holds from the start.
package directory
