package generate_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory/generate"
)

func TestParseScale(t *testing.T) {
	for in, want := range map[string]float64{"full": 1, "tenth": 0.1, "Fiftieth": 0.02, "0.001": 0.001, " 2 ": 2} {
		got, err := generate.ParseScale(in)
		if err != nil || got != want {
			t.Errorf("ParseScale(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "half", "0", "-1", "NaN", "Inf", "1e9"} {
		if _, err := generate.ParseScale(in); err == nil {
			t.Errorf("ParseScale(%q) accepted", in)
		}
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		scale float64
		want  generate.Counts
		total int
	}{
		{1, generate.Counts{500000, 500000, 200000, 200000, 700000, 50000}, 2150000},
		{0.1, generate.Counts{50000, 50000, 20000, 20000, 70000, 5000}, 215000},
		{0.02, generate.Counts{10000, 10000, 4000, 4000, 14000, 1000}, 43000},
	} {
		got := generate.Plan(tc.scale)
		if got != tc.want || got.Total() != tc.total {
			t.Errorf("Plan(%v) = %+v (total %d); want %+v (%d)", tc.scale, got, got.Total(), tc.want, tc.total)
		}
	}
}

func digest(t testing.TB, opts generate.Options) [32]byte {
	h := sha256.New()
	if _, err := generate.Generate(h, opts); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestDeterministic(t *testing.T) {
	a := digest(t, generate.Options{Seed: 7, Scale: 0.002})
	if b := digest(t, generate.Options{Seed: 7, Scale: 0.002, BaseTime: generate.DefaultBaseTime}); a != b {
		t.Fatal("same seed and scale gave different output")
	}
	if c := digest(t, generate.Options{Seed: 8, Scale: 0.002}); a == c {
		t.Fatal("different seeds gave the same output")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n += len(p); f.n > 3<<20 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	if _, err := generate.Generate(&failWriter{}, generate.Options{Seed: 1, Scale: 0.01}); err == nil {
		t.Fatal("write error not reported")
	}
	if _, err := generate.Generate(io.Discard, generate.Options{Seed: 1}); err == nil {
		t.Fatal("zero scale accepted")
	}
}

// dataset is the scale-0.01 output (21,500 resources), generated once for the distribution tests.
var dataset = sync.OnceValues(func() (generated, error) {
	var buf bytes.Buffer
	c, err := generate.Generate(&buf, generate.Options{Seed: 42, Scale: 0.01})
	return generated{buf.Bytes(), c}, err
})

type generated struct {
	data   []byte
	counts generate.Counts
}

type mapping struct {
	re   *regexp.Regexp
	typ  string
	code string
}

// loadMapping reads gematik's Telematik-ID prefix table; the first matching pattern wins.
func loadMapping(t *testing.T) []mapping {
	raw, err := os.ReadFile("../../testdata/gematik/vzd/schema/TelematikID.mapping.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Mapping []struct{ Pattern, FhirResourceType, Code string }
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []mapping
	for _, m := range doc.Mapping {
		out = append(out, mapping{regexp.MustCompile(m.Pattern), m.FhirResourceType, m.Code})
	}
	return out
}

func classify(ms []mapping, tid string) (string, string) {
	for _, m := range ms {
		if m.re.MatchString(tid) {
			return m.typ, m.code
		}
	}
	return "", ""
}

// wantCodes lists, per profession OID, the mapping-file kinds a Telematik-ID for it may classify as.
var wantCodes = map[string][]string{
	"1.2.276.0.76.4.30": {"Arzt"}, "1.2.276.0.76.4.31": {"Zahnarzt"}, "1.2.276.0.76.4.32": {"Apotheker"},
	"1.2.276.0.76.4.33": {"Apothekerassistent"}, "1.2.276.0.76.4.34": {"Pharmazieingenieur"},
	"1.2.276.0.76.4.45": {"Psychotherapeut"}, "1.2.276.0.76.4.46": {"Psychotherapeut"},
	"1.2.276.0.76.4.47": {"Psychotherapeut"}, "1.2.276.0.76.4.232": {"Krankenpfleger"},
	"1.2.276.0.76.4.233": {"Altenpfleger"}, "1.2.276.0.76.4.234": {"Pfleger"}, "1.2.276.0.76.4.235": {"Hebamme"},
	"1.2.276.0.76.4.236": {"Physiotherapeut"},

	"1.2.276.0.76.4.50": {"Arztpaxis", "Private_Arztpraxis"}, "1.2.276.0.76.4.51": {"Zahnarztpraxis", "Private_Zahnarztpraxis"},
	"1.2.276.0.76.4.52": {"Arztpaxis", "Private_Psychotherapeutenpraxis"}, "1.2.276.0.76.4.53": {"Krankenhaus"},
	"1.2.276.0.76.4.54": {"Apotheke"}, "1.2.276.0.76.4.59": {"Krankenkasse", "Krankenversicherung"},
	"1.2.276.0.76.4.245": {"Pflege"}, "1.2.276.0.76.4.246": {"Geburtshilfe"}, "1.2.276.0.76.4.247": {"Physiotherapie"},
	"1.2.276.0.76.4.255": {"Gesundheitsamt"}, "1.2.276.0.76.4.256": {"Arbeitsmedizin"}, "1.2.276.0.76.4.282": {"DiGA"},
}

type coding struct{ System, Code, Display string }

type resource struct {
	ResourceType string
	ID           string
	Active       *bool
	Meta         struct {
		Tag     []coding
		Profile []string
	}
	Identifier []struct{ System, Value string }
	Extension  []struct {
		URL             string
		ValueCoding     *coding
		ValueCode       string
		ValueIdentifier *struct{ System, Value string }
	}
	Qualification []struct{ Code struct{ Coding []coding } }
	Type          []struct{ Coding []coding }
	Name          json.RawMessage
	Address       json.RawMessage // Location: object, Endpoint: string
	Position      *struct{ Latitude, Longitude float64 }
}

type address struct {
	Line                             []string
	City, State, PostalCode, Country string
}

// refs collects every "reference" value in a decoded JSON tree.
func refs(v any, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				out = append(out, s)
			} else {
				out = refs(e, out)
			}
		}
	case []any:
		for _, e := range x {
			out = refs(e, out)
		}
	}
	return out
}

func telematikID(r *resource) string {
	for _, id := range r.Identifier {
		if id.System == "https://gematik.de/fhir/sid/telematik-id" {
			return id.Value
		}
	}
	return ""
}

func origin(r *resource) string {
	for _, t := range r.Meta.Tag {
		if t.System == "https://gematik.de/fhir/directory/CodeSystem/Origin" {
			return t.Code
		}
	}
	return ""
}

func TestDataset(t *testing.T) {
	gen, err := dataset()
	if err != nil {
		t.Fatal(err)
	}
	data, counts := gen.data, gen.counts
	if want := generate.Plan(0.01); counts != want {
		t.Fatalf("counts %+v, plan %+v", counts, want)
	}
	ms := loadMapping(t)
	cities := map[string]*generate.City{}
	for _, c := range generate.Cities {
		cities[c.Name] = c
	}
	idRE := regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	mxRE := regexp.MustCompile(`^matrix:u/[a-z0-9._=/-]+:[a-z0-9.-]+\.[a-z]+$`)

	seen := map[string]bool{}
	perType := map[string]int{}
	oids := map[string]int{}
	addrs := map[string]bool{}
	epRefs := map[string]int{}
	var inactive, entities, hide, ownerCreated, hsPr int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var tree any
		if err := json.Unmarshal(sc.Bytes(), &tree); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		var r resource
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		key := r.ResourceType + "/" + r.ID
		if r.ResourceType == "" || !idRE.MatchString(r.ID) {
			t.Fatalf("line %d: bad resourceType/id %q", line, key)
		}
		if seen[key] {
			t.Fatalf("line %d: duplicate %s", line, key)
		}
		for _, ref := range refs(tree, nil) {
			if !seen[ref] {
				t.Fatalf("%s references %s, not generated before it", key, ref)
			}
			if strings.HasPrefix(ref, "Endpoint/") {
				epRefs[ref]++
			}
		}
		seen[key] = true
		perType[r.ResourceType]++
		if len(r.Meta.Profile) != 1 || !strings.HasPrefix(r.Meta.Profile[0], "https://gematik.de/fhir/directory/StructureDefinition/") {
			t.Fatalf("%s: profile %v", key, r.Meta.Profile)
		}
		org := origin(&r)
		if org != "ldap" && org != "owner" {
			t.Fatalf("%s: Origin %q", key, org)
		}

		switch r.ResourceType {
		case "Practitioner", "Organization":
			entities++
			if r.Active == nil {
				t.Fatalf("%s: no active", key)
			}
			if !*r.Active {
				inactive++
			}
			var codes []coding
			if r.ResourceType == "Practitioner" {
				codes = r.Qualification[0].Code.Coding
			} else {
				codes = r.Type[0].Coding
			}
			oid := codes[0].Code
			oids[r.ResourceType+" "+oid]++
			if _, name := certs.ClassifyProfessionOID(oid); name == "" || name != codes[0].Display {
				t.Fatalf("%s: OID %s display %q, table %q", key, oid, codes[0].Display, name)
			}
			typ, code := classify(ms, telematikID(&r))
			if typ != r.ResourceType || !contains(wantCodes[oid], code) {
				t.Fatalf("%s: Telematik-ID %s classifies as %s/%s, want %s %v", key, telematikID(&r), typ, code, r.ResourceType, wantCodes[oid])
			}
		case "HealthcareService", "PractitionerRole":
			hsPr++
			if org == "owner" {
				ownerCreated++
			}
			want := "Organization"
			if r.ResourceType == "PractitionerRole" {
				want = "Practitioner"
			}
			tid := telematikID(&r)
			for _, e := range r.Extension {
				if e.ValueIdentifier != nil {
					tid = e.ValueIdentifier.Value
				}
			}
			if tid == "" && r.ResourceType == "PractitionerRole" {
				break // synced roles carry no identifier (Strict profile); the Practitioner has it
			}
			if typ, _ := classify(ms, tid); tid == "" || typ != want {
				t.Fatalf("%s: Telematik-ID %q classifies as %s, want %s", key, tid, typ, want)
			}
		case "Location":
			var a address
			if err := json.Unmarshal(r.Address, &a); err != nil {
				t.Fatalf("%s: address: %v", key, err)
			}
			c := cities[a.City]
			if c == nil || !contains(c.Postcodes, a.PostalCode) || a.State != c.State() || a.Country != "DE" || len(a.Line) != 1 {
				t.Fatalf("%s: address %+v not from the place table", key, a)
			}
			p := r.Position
			if p == nil || p.Latitude < 47.2 || p.Latitude > 55.1 || p.Longitude < 5.8 || p.Longitude > 15.1 {
				t.Fatalf("%s: position %+v outside Germany", key, p)
			}
			dy := (p.Latitude - c.Lat) * 111.2
			dx := (p.Longitude - c.Lon) * 111.2 * math.Cos(c.Lat*math.Pi/180)
			if math.Hypot(dx, dy) > c.RadiusKm+0.01 {
				t.Fatalf("%s: position %+v %.1f km from %s", key, p, math.Hypot(dx, dy), c.Name)
			}
		case "Endpoint":
			if org != "owner" {
				t.Fatalf("%s: endpoints are owner-created, Origin %q", key, org)
			}
			var mxid string
			if err := json.Unmarshal(r.Address, &mxid); err != nil || !mxRE.MatchString(mxid) || addrs[mxid] {
				t.Fatalf("%s: address %s malformed or duplicate", key, r.Address)
			}
			addrs[mxid] = true
			for _, e := range r.Extension {
				if e.URL == "https://gematik.de/fhir/directory/StructureDefinition/EndpointVisibility" &&
					e.ValueCoding.System == "https://gematik.de/fhir/directory/CodeSystem/EndpointVisibilityCS" &&
					e.ValueCoding.Code == "hide-versicherte" {
					hide++
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	got := generate.Counts{perType["Practitioner"], perType["PractitionerRole"], perType["Organization"],
		perType["HealthcareService"], perType["Location"], perType["Endpoint"]}
	if got != counts {
		t.Fatalf("lines per type %+v, Generate reported %+v", got, counts)
	}
	if len(epRefs) != counts.Endpoint {
		t.Errorf("%d endpoints referenced, %d generated", len(epRefs), counts.Endpoint)
	}
	for ref, n := range epRefs {
		if n != 1 {
			t.Errorf("%s referenced %d times", ref, n)
		}
	}
	share := func(name string, n, of int, lo, hi float64) {
		f := float64(n) / float64(of)
		t.Logf("%s: %d of %d (%.2f %%)", name, n, of, 100*f)
		if f < lo || f > hi {
			t.Errorf("%s share %.4f outside [%v, %v]", name, f, lo, hi)
		}
	}
	share("TIM endpoints", counts.Endpoint, entities, 0.05, 0.10)
	share("inactive", inactive, entities, 0.02, 0.05)
	share("hide-versicherte endpoints", hide, counts.Endpoint, 0.005, 0.2)
	share("owner-created roles/services", ownerCreated, hsPr, 0.005, 0.05)
	top, topN := "", 0
	for k, n := range oids {
		if strings.HasPrefix(k, "Practitioner ") && n > topN {
			top, topN = k, n
		}
	}
	if top != "Practitioner 1.2.276.0.76.4.30" {
		t.Errorf("most common practitioner OID %s, want Arzt", top)
	}
	if oids["Organization 1.2.276.0.76.4.50"] < oids["Organization 1.2.276.0.76.4.51"] ||
		oids["Organization 1.2.276.0.76.4.51"] < oids["Organization 1.2.276.0.76.4.54"] {
		t.Errorf("organisation OIDs out of proportion: %v", oids)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestPlaceTable keeps the hand-written place table sane: five-digit postcodes whose leading digit
// matches the town's postal zone, centres inside Germany.
func TestPlaceTable(t *testing.T) {
	codeRE := regexp.MustCompile(`^[0-9]{5}$`)
	names := map[string]bool{}
	for _, c := range generate.Cities {
		if names[c.Name] || c.Weight <= 0 || c.RadiusKm <= 0 || len(c.Postcodes) == 0 || c.State() == "" {
			t.Errorf("bad city row %+v", c)
		}
		names[c.Name] = true
		if c.Lat < 47.3 || c.Lat > 55 || c.Lon < 5.9 || c.Lon > 15 {
			t.Errorf("%s centre outside Germany", c.Name)
		}
		for _, p := range c.Postcodes {
			if !codeRE.MatchString(p) || p[0] != c.Postcodes[0][0] {
				t.Errorf("%s: postcode %q", c.Name, p)
			}
		}
	}
	if len(generate.Cities) < 60 {
		t.Errorf("%d cities", len(generate.Cities))
	}
}

// BenchmarkGenerate reports throughput in resources per second at scale 0.01 (21,500 resources).
func BenchmarkGenerate(b *testing.B) {
	var n int
	var bytesOut countWriter
	for b.Loop() {
		c, err := generate.Generate(&bytesOut, generate.Options{Seed: 1, Scale: 0.01})
		if err != nil {
			b.Fatal(err)
		}
		n += c.Total()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(bytesOut)/float64(n), "B/resource")
	b.SetBytes(int64(bytesOut) / int64(b.N))
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
