// Package directory is the FHIR R4 VZD directory: gematik's VZD-FHIR-Directory interfaces (search, owner and
// provider APIs, the signed federation list, /tim-authenticate) over PostgreSQL or an embedded SQLite store.
//
// Subpackages: index (the contract between the layers: index rows, query trees, the search-parameter
// registry), fhir (the FHIR R4 subset, validation and index extraction), store (PostgreSQL and SQLite), search
// (FHIR search URLs to query trees and Bundles).
package directory
