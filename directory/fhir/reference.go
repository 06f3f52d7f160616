package fhir

import (
	"strings"

	"github.com/timstack/timstack/directory/index"
)

// ParseReference resolves a Reference.reference value to the resource it names. Accepted: a relative
// "Type/id", the same with a version suffix "Type/id/_history/n" (the version is ignored: the directory
// indexes current versions), and an absolute URL ending in "/Type/id" (the server base is not compared; the
// directory treats such references as local, which is how HAPI-style exports from the VZD write them).
// Contained ("#id"), urn:uuid and logical references do not resolve.
func ParseReference(ref string) (index.Ref, bool) {
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") {
		return index.Ref{}, false
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return index.Ref{}, false
	}
	if len(parts) > 2 && !strings.HasPrefix(ref, "https://") && !strings.HasPrefix(ref, "http://") {
		return index.Ref{}, false
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if !validTypeName(typ) || !ValidID(id) {
		return index.Ref{}, false
	}
	return index.Ref{Type: typ, ID: id}, true
}

// ValidID reports whether id is a FHIR id: 1–64 characters of A–Z, a–z, 0–9, "-" and ".".
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func validTypeName(t string) bool {
	if t == "" || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for i := 1; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
