package dirfacts

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseOrganizationTypes: whatever the directory answers, parsing neither panics nor returns codes
// that are unsorted, duplicated, empty, over-long, or able to pass for a gematik code without being one.
func FuzzParseOrganizationTypes(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","total":0}`), practiceTID)
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"http://vzd/search/Organization/p","resource":`+
		orgJSON("p", practiceTID, [2]string{ProfessionOIDSystem, codeArzt}, [2]string{"urn:x", "y"}, [2]string{"", "z"})+
		`,"search":{"mode":"match"}}]}`), practiceTID)
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"OperationOutcome"}},{"resource":null}]}`), "x")
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Organization","type":[{"coding":[{"code":1}]}]}}]}`), "x")
	f.Fuzz(func(t *testing.T, body []byte, tid string) {
		codes, err := parseOrganizationTypes(body, tid)
		if err != nil {
			if codes != nil {
				t.Fatal("codes returned with an error")
			}
			return
		}
		if codes == nil {
			t.Fatal("nil codes without an error")
		}
		if !slices.IsSorted(codes) || len(slices.Compact(slices.Clone(codes))) != len(codes) {
			t.Fatalf("codes not sorted and unique: %q", codes)
		}
		for _, c := range codes {
			if c == "" || len(c) > 2*maxCodeLen+1 {
				t.Fatalf("bad code %q", c)
			}
		}
	})
}

// FuzzParseToken: a token taken from the file is always fit for an Authorization header.
func FuzzParseToken(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.sig\n"))
	f.Add([]byte(`{"access_token":"abc","token_type":"Bearer","expires_in":86400}`))
	f.Add([]byte(`{"access_token":"a b"}`))
	f.Add([]byte("  \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseToken(data)
		if err != nil {
			return
		}
		if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			t.Fatalf("unfit token %q", tok)
		}
	})
}
