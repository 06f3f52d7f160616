package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes through everything a write runs: Parse, Validate (both modes),
// Normalize, Extract, TextWords and the Bundle writer. None may panic; parse failures must be *ParseError;
// the hand-written scanner must agree with encoding/json on what is valid JSON;
// Normalize must leave a resource that parses again; a Bundle around the stored bytes must be valid JSON.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Endpoint","status":"active","connectionType":{"code":"tim"},"address":"@a:b.de","name":"n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %T is not *ParseError", err)
			}
			if strings.HasPrefix(pe.Issue.Diagnostics, "resource is not valid JSON") && json.Valid(data) {
				t.Fatalf("scanner refused valid JSON: %s", pe.Issue.Diagnostics)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatal("scanner accepted invalid JSON")
		}
		if !bytes.Equal(r.JSON, data) {
			t.Fatal("Parse changed the bytes")
		}
		_ = Validate(r, ValidateOptions{})
		_ = Validate(r, ValidateOptions{Legacy: true})
		_ = Extract(r)
		_ = Linked(r)
		_ = TextWords(r, []*Resource{r})
		if changed, err := Normalize(r); err != nil {
			t.Fatalf("Normalize: %v", err)
		} else if changed {
			again, err := Parse(r.JSON)
			if err != nil {
				t.Fatalf("normalised JSON does not parse: %v\n%s", err, r.JSON)
			}
			if _, err := NormalizeMXID(again.View.(*Endpoint).Address); err != nil {
				t.Fatalf("normalised address is not an MXID: %v", err)
			}
		}
		if b := (SearchSet{Total: 1, Entries: []Entry{{Resource: r.JSON}}}).JSON(); !json.Valid(b) {
			t.Fatalf("Bundle is not valid JSON: %s", b)
		}
	})
}
