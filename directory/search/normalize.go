package search

import "github.com/timstack/timstack/directory/fhir"

// normalize is the string normalisation of the index (index.TypeString, index.TypeText, token :text).
// Query values must be normalised exactly like indexed values or prefix matching breaks, so it is the fhir
// package's, which the extractor uses.
func normalize(s string) string { return fhir.NormalizeString(s) }
