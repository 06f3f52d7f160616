package fhir_test

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/directory/fhir"
	"github.com/timstack/timstack/directory/generate"
	"github.com/timstack/timstack/directory/index"
)

// ParseLinked reads only what a linked resource gives the _text of the resources linking to it; every
// role and service of a generated data set gets the same words from it as from the whole resource.
func TestParseLinkedGivesTheWordsOfParse(t *testing.T) {
	var buf bytes.Buffer
	if _, err := generate.Generate(&buf, generate.Options{Seed: 3, Scale: 0.001}); err != nil {
		t.Fatal(err)
	}
	whole := map[index.Ref]*fhir.Resource{}
	slim := map[index.Ref]*fhir.Resource{}
	var roots []*fhir.Resource
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		doc := append([]byte(nil), sc.Bytes()...)
		r, err := fhir.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		ref := index.Ref{Type: r.ResourceType, ID: r.ID}
		whole[ref] = r
		if s, err := fhir.ParseLinked(r.ResourceType, doc); err != nil {
			t.Fatalf("ParseLinked %s/%s: %v", r.ResourceType, r.ID, err)
		} else {
			slim[ref] = s
		}
		if r.ResourceType == index.PractitionerRole || r.ResourceType == index.HealthcareService {
			roots = append(roots, r)
		}
	}
	if len(roots) < 100 {
		t.Fatalf("only %d roles and services generated", len(roots))
	}
	for _, root := range roots {
		var fromWhole, fromSlim []*fhir.Resource
		for _, ref := range fhir.Linked(root) {
			fromWhole = append(fromWhole, whole[ref])
			fromSlim = append(fromSlim, slim[ref])
		}
		want := fhir.TextWords(root, fromWhole)
		if diff := cmp.Diff(want, fhir.TextWords(root, fromSlim)); diff != "" {
			t.Fatalf("%s/%s: words from ParseLinked differ (-Parse +ParseLinked):\n%s", root.ResourceType, root.ID, diff)
		}
	}
}

func TestParseLinkedRefusesWhatIsNotJSON(t *testing.T) {
	for _, typ := range []string{index.Practitioner, index.Location, index.Organization, index.Endpoint} {
		if _, err := fhir.ParseLinked(typ, []byte(`{"resourceType":"`+typ+`","id":`)); err == nil {
			t.Errorf("ParseLinked(%s) of cut-off JSON succeeded", typ)
		}
	}
}
