// Package fhir is the hand-written FHIR R4 subset the directory needs: strict parsing of the six VZD resource
// types into small typed views, gematik's profile rules as write validation, extraction of search-index rows
// (package index), and the JSON the API answers with (OperationOutcome, searchset Bundle,
// CapabilityStatement).
//
// The raw JSON bytes of a resource are the source of truth: they are stored and served exactly as received,
// so unknown elements, primitive extensions (`_field`) and narrative survive without this package modelling
// them. The typed views only cover what validation and indexing read. No FHIR library is involved
// (spec §7.2).
//
// The write path, for the owner API, sync and import alike:
//
//	r, err := fhir.Parse(body)                  // *ParseError: answer OperationOutcome([]Issue{pe.Issue})
//	issues := fhir.Validate(r, fhir.ValidateOptions{})
//	if fhir.HasErrors(issues) { … OperationOutcome(issues) … }
//	fhir.Normalize(r)                           // legacy @localpart:server → matrix:u/…, in r.JSON
//	rows := fhir.Extract(r)                     // plus fhir.TextRows(r, linked) for _text, see Linked
//
// Search uses the same normalisations on query values: NormalizeString for string parameters,
// NormalizeAddress for Endpoint address, SplitWords for _text.
package fhir
