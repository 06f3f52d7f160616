package fhir

import (
	"path/filepath"
	"testing"
)

// BenchmarkWritePath measures Parse + Validate + Extract of a pharmacy HealthcareService (the largest
// gematik example, ~4 KB), the per-resource cost of a bulk import.
func BenchmarkWritePath(b *testing.B) {
	data := readFileB(b, filepath.Join(vzdDir, "fhir", "HealthcareService-PharmacyHealthCareServiceExample.json"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = Validate(r, ValidateOptions{})
		_ = Extract(r)
	}
}

func readFileB(b *testing.B, path string) []byte {
	b.Helper()
	data, err := readFileErr(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
