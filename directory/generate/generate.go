// Package generate produces synthetic German directory data for the VZD-FHIR-Directory: Practitioners,
// PractitionerRoles, Organizations, HealthcareServices, Locations and TI-Messenger Endpoints shaped like
// gematik's Strict profiles, deterministic per seed, for tests, load tests and benchmarks.
//
// The composition follows the LDAP→FHIR sync rule (gemSpec_VZD_FHIR_Directory): every HBA holder becomes
// Practitioner + PractitionerRole + Location, every SMC-B holder Organization + HealthcareService +
// Location. A share of both gets an owner-created TIM Endpoint. Sizes follow the benchmark sizing of the
// directory notes: full scale is 500k practitioners and 200k organisations, 2.15M resources (about 1.5 GB of
// compact NDJSON, ~690 bytes per resource; the notes' ~3 GB estimate assumed pretty-printed resources).
//
// Generation streams: each resource is derived from its index through its own random stream, so the
// generator writes one pass per resource type in dependency order and holds only a bitset of which
// entities have endpoints (under 100 KB at full scale).
package generate

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Options configures a run. The same Seed, Scale and BaseTime give the same bytes.
type Options struct {
	Seed  int64
	Scale float64 // 1 = full (see Plan); must be > 0
	// BaseTime is the newest meta.lastUpdated; resources are spread over the two years before it. Zero
	// means DefaultBaseTime, so output does not depend on the clock.
	BaseTime time.Time
}

// DefaultBaseTime is the BaseTime used when Options.BaseTime is zero.
var DefaultBaseTime = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

// Full-scale sizes (directory notes §6).
const (
	FullPractitioners  = 500_000
	FullOrganizations  = 200_000
	FullEndpoints      = 50_000
	inactiveShare      = 0.035 // Practitioner/Organization.active=false: card revoked or expired
	ownerShare         = 0.02  // PractitionerRoles/HealthcareServices created by the owner, not by sync
	hidePractitioner   = 0.05  // endpointVisibility hide-versicherte on practitioners' endpoints
	hideOrganization   = 0.03  // … on organisations' endpoints
	endpointOffShare   = 0.03  // Endpoint.status off
	hexLocalpartShare  = 0.25  // pseudonymous 64-hex localparts instead of name-derived ones
	lastUpdatedSpanSec = 2 * 365 * 24 * 3600
)

// ParseScale accepts the named scales full (1), tenth (0.1), fiftieth (0.02, the CI set) or a positive
// decimal factor such as 0.001.
func ParseScale(s string) (float64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "full":
		return 1, nil
	case "tenth":
		return 0.1, nil
	case "fiftieth":
		return 0.02, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("generate: scale %q: want full, tenth, fiftieth or a positive number", s)
	}
	if err := checkScale(f); err != nil {
		return 0, err
	}
	return f, nil
}

func checkScale(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 100 {
		return fmt.Errorf("generate: scale %v out of range (0, 100]", f)
	}
	return nil
}

// Counts is the number of resources per type.
type Counts struct {
	Practitioner, PractitionerRole, Organization, HealthcareService, Location, Endpoint int
}

// Total is the number of resources.
func (c Counts) Total() int {
	return c.Practitioner + c.PractitionerRole + c.Organization + c.HealthcareService + c.Location + c.Endpoint
}

// Plan gives the resource counts Generate writes for a scale: one PractitionerRole per Practitioner, one
// HealthcareService per Organization, one Location per either (the sync rule) and a fixed endpoint count
// (50k of 700k entities at full scale, ~7 %).
func Plan(scale float64) Counts {
	p := int(math.Round(FullPractitioners * scale))
	o := int(math.Round(FullOrganizations * scale))
	e := min(int(math.Round(FullEndpoints*scale)), p+o)
	return Counts{Practitioner: p, PractitionerRole: p, Organization: o, HealthcareService: o, Location: p + o, Endpoint: e}
}

// Generate writes Plan(opts.Scale) resources to w as NDJSON, one resource per line, in dependency order:
// Organizations, Locations (organisations' first, they reference their Organization), Endpoints,
// Practitioners, PractitionerRoles, HealthcareServices. Every reference points to a line written before.
// Ids are org-NNNNNN, loc-, ep-, pr-, prr-, hs-, numbered from 1.
func Generate(w io.Writer, opts Options) (Counts, error) {
	if err := checkScale(opts.Scale); err != nil {
		return Counts{}, err
	}
	g := newGen(opts)
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := g.run(bw); err != nil {
		return g.n, err
	}
	if err := bw.Flush(); err != nil {
		return g.n, err
	}
	return g.n, nil
}

// gen is one run's state: the plan, the endpoint bitset, the line buffer and the running counts.
type gen struct {
	seed   int64
	plan   Counts
	base   int64
	sel    []uint64 // entity j has an endpoint; j = org index, then Organization+practitioner index
	orgEps int      // endpoints among organisations (practitioners' endpoint ids start after them)
	n      Counts
	o      out
	w      *bufio.Writer
}

func newGen(opts Options) *gen {
	base := opts.BaseTime
	if base.IsZero() {
		base = DefaultBaseTime
	}
	g := &gen{seed: opts.Seed, plan: Plan(opts.Scale), base: base.Unix()}
	g.o.b = make([]byte, 0, 4096)
	// Selection sampling (Knuth's algorithm S): exactly plan.Endpoint of the entities, uniformly.
	n := g.plan.Organization + g.plan.Practitioner
	g.sel = make([]uint64, (n+63)/64)
	r := newRNG(g.seed, streamSelect, 0)
	need := g.plan.Endpoint
	for j := 0; j < n && need > 0; j++ {
		if r.intn(n-j) < need {
			g.sel[j/64] |= 1 << (j % 64)
			need--
		}
	}
	for j := 0; j < g.plan.Organization; j++ {
		if g.hasEP(j) {
			g.orgEps++
		}
	}
	return g
}

func (g *gen) hasEP(j int) bool { return g.sel[j/64]&(1<<(j%64)) != 0 }

// emit ends the current line and hands it to the writer.
func (g *gen) emit(counter *int) error {
	g.o.b = append(g.o.b, '}', '\n')
	_, err := g.w.Write(g.o.b) // bufio reports short writes as errors
	g.o.b = g.o.b[:0]
	if err != nil {
		return err
	}
	*counter++
	return nil
}

func (g *gen) run(w *bufio.Writer) error {
	g.w = w
	P, O := g.plan.Practitioner, g.plan.Organization
	for i := range O {
		if err := g.writeOrganization(g.org(i)); err != nil {
			return err
		}
	}
	for i := range O {
		if err := g.writeOrgLocation(g.org(i)); err != nil {
			return err
		}
	}
	for i := range P {
		if err := g.writePersonLocation(g.person(i)); err != nil {
			return err
		}
	}
	ep := 0
	for j := range O + P {
		if !g.hasEP(j) {
			continue
		}
		ep++
		var e endpoint
		if j < O {
			e = g.orgEndpoint(g.org(j), j)
		} else {
			e = g.personEndpoint(g.person(j-O), j)
		}
		if err := g.writeEndpoint(ep, e); err != nil {
			return err
		}
	}
	for i := range P {
		if err := g.writePractitioner(g.person(i)); err != nil {
			return err
		}
	}
	ep = g.orgEps
	for i := range P {
		epID := 0
		if g.hasEP(O + i) {
			ep++
			epID = ep
		}
		if err := g.writePractitionerRole(g.person(i), epID); err != nil {
			return err
		}
	}
	ep = 0
	for i := range O {
		epID := 0
		if g.hasEP(i) {
			ep++
			epID = ep
		}
		if err := g.writeHealthcareService(g.org(i), epID); err != nil {
			return err
		}
	}
	return nil
}

// place is a postal address with a position near the town centre.
type place struct {
	city     *City
	postcode string
	line     string
	lat, lon float64
}

func drawPlace(r *rng) place {
	c := Cities[pick(r, cityCum)]
	p := place{city: c, postcode: r.str(c.Postcodes)}
	// House numbers: small ones are far more common.
	num := 1 + r.intn(1+r.intn(160))
	p.line = r.str(streets) + " " + strconv.Itoa(num)
	if r.chance(0.06) {
		p.line += string(rune('a' + r.intn(3)))
	}
	// Uniform in a disc of RadiusKm by rejection (no trigonometry: the same bits on every platform).
	var dx, dy float64
	for {
		dx, dy = 2*r.float()-1, 2*r.float()-1
		if float64(dx*dx)+float64(dy*dy) <= 1 {
			break
		}
	}
	p.lat = c.Lat + float64(c.RadiusKm/111.2)*dy
	p.lon = c.Lon + float64(c.RadiusKm/(111.2*cosDeg(c.Lat)))*dx
	return p
}

// cosDeg is a polynomial cosine good to 1e-6 on German latitudes; math.Cos is avoided only to keep
// output independent of platform-specific floating-point fusion.
func cosDeg(deg float64) float64 {
	x := deg * (math.Pi / 180)
	x2 := float64(x * x)
	return 1 - x2/2 + float64(x2*x2)/24 - float64(x2*x2*x2)/720 + float64(x2*x2*x2*x2)/40320 - float64(x2*x2*x2*x2*x2)/3628800
}

// person is one HBA holder; all of its resources are derived from it.
type person struct {
	i           int
	prof        *practProf
	reg         *region
	tid, lanr   string
	female      bool
	given       []string
	family      string
	title       string
	text        string
	place       place
	active      bool
	ownerRole   bool
	updated     int64
	givenSingle string
}

func (g *gen) person(i int) *person {
	r := newRNG(g.seed, streamPractitioner, i)
	p := &person{i: i, prof: practProfs[pick(&r, practCum)]}
	p.female = r.chance(p.prof.female)
	names := maleGiven
	if p.female {
		names = femaleGiven
	}
	p.givenSingle = r.str(names)
	p.given = []string{p.givenSingle}
	if r.chance(0.12) {
		if second := r.str(names); second != p.givenSingle {
			p.given = append(p.given, second)
		}
	}
	p.family = r.str(familyNames)
	if r.chance(0.03) {
		if second := r.str(familyNames); second != p.family {
			p.family += "-" + second
		}
	}
	switch {
	case r.chance(p.prof.pro):
		p.title = "Prof. Dr."
	case r.chance(p.prof.dr):
		p.title = "Dr."
		if p.prof.group == "arzt" && r.chance(0.3) {
			p.title = "Dr. med."
		} else if p.prof.group == "zahnarzt" && r.chance(0.3) {
			p.title = "Dr. med. dent."
		}
	}
	var sb strings.Builder
	if p.title != "" {
		sb.WriteString(p.title)
		sb.WriteByte(' ')
	}
	for _, gv := range p.given {
		sb.WriteString(gv)
		sb.WriteByte(' ')
	}
	sb.WriteString(p.family)
	p.text = sb.String()
	p.place = drawPlace(&r)
	p.reg = regions[p.place.city.Region]
	p.tid = p.prof.tid(&r, i+1, p.reg)
	if p.prof.group == "arzt" && r.chance(0.6) {
		p.lanr = fmt.Sprintf("%09d", 100000000+r.intn(900000000))
	}
	p.active = !r.chance(inactiveShare)
	p.ownerRole = r.chance(ownerShare)
	p.updated = g.base - int64(r.intn(lastUpdatedSpanSec))
	return p
}

// org is one SMC-B holder.
type org struct {
	i        int
	prof     *orgProf
	reg      *region
	tid      string
	extra    string // BSNR / IK value for prof.ident
	name     string
	alias    string
	hsName   string
	spec     []specialty
	place    place
	phone    string
	hours    int
	active   bool
	ownerHS  bool
	updated  int64
	slugBase string
}

func (g *gen) org(i int) *org {
	r := newRNG(g.seed, streamOrganization, i)
	o := &org{i: i, prof: orgProfs[pick(&r, orgCum)]}
	o.place = drawPlace(&r)
	o.reg = regions[o.place.city.Region]
	o.tid = o.prof.tid(&r, i+1, o.reg)
	switch o.prof.ident {
	case sysBSNR:
		o.extra = bsnr(i+1, o.reg)
	case sysIKNR:
		// The IK is the digits after the type prefix of the Telematik-ID.
		o.extra = o.tid[strings.LastIndexByte(o.tid, '-')+1:]
	}
	o.nameOrg(&r)
	o.phone = o.place.city.AreaCode + " " + strconv.Itoa(100000+r.intn(8900000))
	o.hours = r.intn(3)
	o.active = !r.chance(inactiveShare)
	o.ownerHS = r.chance(ownerShare)
	o.updated = g.base - int64(r.intn(lastUpdatedSpanSec))
	return o
}

var (
	pharmacyPlaces = []string{"am Markt", "am Rathaus", "am Bahnhof", "im Ärztehaus", "am Dom", "im Zentrum", "am Park", "an der Post"}
	mvzSuffixes    = []string{"Mitte", "Nord", "Süd", "Ost", "West", "am Markt", "am Bahnhof", "Zentrum", "am Klinikum"}
	careHomes      = []string{"Lindenhof", "Rosenhof", "Sonnenhof", "Eichenhof", "Birkenhof", "Haus am Park", "Haus Abendsonne", "Haus am See"}
)

// nameOrg draws name, alias and HealthcareService name/type in the styles real entries use.
func (o *org) nameOrg(r *rng) {
	city := o.place.city.Name
	fam := r.str(familyNames)
	fam2 := r.str(familyNames)
	given := r.str(maleGiven)
	if r.chance(0.5) {
		given = r.str(femaleGiven)
	}
	v := r.intn(4)
	switch o.prof.group {
	case "arzt":
		s := medSpecs[pick(r, medSpecCum)]
		o.spec = []specialty{s}
		o.hsName = s.display
		switch {
		case v == 0:
			o.name = "Praxis Dr. med. " + fam
		case v == 1 && s.code == "ALLG":
			o.name = "Hausarztpraxis " + given + " " + fam
		case v == 1:
			o.name = "Praxis für " + s.display + " " + given + " " + fam
		case v == 2:
			o.name = "Gemeinschaftspraxis Dr. " + fam + " & " + fam2
		default:
			o.name = "MVZ " + city + " " + r.str(mvzSuffixes)
		}
	case "zahnarzt":
		o.spec = specDental
		if r.chance(0.15) {
			o.spec = specDentalAlt
		}
		o.hsName = "Zahnmedizin"
		switch v {
		case 0, 1:
			o.name = "Zahnarztpraxis Dr. " + fam
		case 2:
			o.name = "Zahnärztliche Gemeinschaftspraxis " + fam + " & " + fam2
		default:
			o.name = "Zahnarztpraxis " + given + " " + fam
		}
	case "psych":
		o.spec, o.hsName = specPsych, "Psychotherapie"
		if v < 2 {
			o.name = "Psychotherapeutische Praxis " + given + " " + fam
		} else {
			o.name = "Praxis für Psychotherapie Dr. " + fam
		}
	case "krankenhaus":
		o.spec, o.hsName = specHospital, "Notaufnahme und Stationen"
		switch v {
		case 0:
			o.name = "Klinikum " + city
		case 1:
			o.name = "St. " + r.str(saints) + "-Krankenhaus " + city
		case 2:
			o.name = "Evangelisches Krankenhaus " + city
		default:
			o.name = "Kreiskrankenhaus " + city
		}
	case "apotheke":
		o.spec, o.hsName = specPharmacy, "Apotheke"
		if v < 3 {
			o.name = r.str(pharmacyNames) + "-Apotheke"
		} else {
			o.name = "Apotheke " + r.str(pharmacyPlaces)
		}
	case "kasse":
		o.spec, o.hsName = specPayer, "Versichertenservice"
		if o.prof.private {
			o.name = fam + " Krankenversicherung AG"
		} else if v < 2 {
			o.name = "BKK " + fam
		} else {
			o.name = "Krankenkasse " + city
		}
	case "pflege":
		o.spec, o.hsName = specCare, "Pflege"
		switch v {
		case 0:
			o.name = "Pflegedienst " + fam
		case 1:
			o.name = "Ambulanter Pflegedienst " + given + " " + fam
		default:
			o.spec, o.hsName = specElderly, "Stationäre Altenpflege"
			o.name = "Seniorenzentrum " + r.str(careHomes) + " " + city
		}
	case "geburt":
		o.hsName = "Hebammenhilfe"
		if v < 2 {
			o.name = "Hebammenpraxis " + r.str(femaleGiven) + " " + fam
		} else {
			o.name = "Geburtshaus " + city
		}
	case "therapie":
		o.hsName = "Physiotherapie"
		if v < 2 {
			o.name = "Physiotherapie " + fam
		} else {
			o.name = "Praxis für Physiotherapie " + given + " " + fam
		}
	case "oegd":
		o.spec, o.hsName = specOEGD, "Gesundheitsamt"
		o.name = "Gesundheitsamt " + city
	case "arbeitsmedizin":
		o.spec, o.hsName = specWork, "Arbeitsmedizin"
		o.name = "Arbeitsmedizinisches Zentrum " + city
	default: // diga
		o.hsName = "Digitale Gesundheitsanwendung"
		o.name = fam + " Health GmbH"
	}
	o.alias = o.name
	if o.prof.group == "arzt" || o.prof.group == "zahnarzt" {
		o.alias = "Praxis " + fam
	}
	o.slugBase = slug(o.name, 40)
}

// endpoint is a TIM endpoint of an entity.
type endpoint struct {
	display, local, server string
	hide, off              bool
	updated                int64
}

func (g *gen) personEndpoint(p *person, j int) endpoint {
	r := newRNG(g.seed, streamEndpoint, j)
	e := endpoint{display: p.text}
	if r.chance(hexLocalpartShare) {
		e.local = hex64(&r)
	} else if r.chance(0.7) {
		e.local = slug(p.givenSingle, 20) + "." + slug(p.family, 30) + "-" + strconv.Itoa(j+1)
	} else {
		e.local = slug(p.givenSingle, 1) + slug(p.family, 30) + strconv.Itoa(j+1)
	}
	e.server = g.server(&r, p.prof.group)
	e.hide = r.chance(hidePractitioner)
	e.off = r.chance(endpointOffShare)
	e.updated = g.base - int64(r.intn(lastUpdatedSpanSec/2))
	return e
}

func (g *gen) orgEndpoint(o *org, j int) endpoint {
	r := newRNG(g.seed, streamEndpoint, j)
	e := endpoint{display: o.name}
	if r.chance(hexLocalpartShare) {
		e.local = hex64(&r)
	} else {
		e.local = o.slugBase + "-" + strconv.Itoa(j+1)
	}
	e.server = g.server(&r, o.prof.group)
	e.hide = r.chance(hideOrganization)
	e.off = r.chance(endpointOffShare)
	e.updated = g.base - int64(r.intn(lastUpdatedSpanSec/2))
	return e
}

// server picks the homeserver: sector-specific providers for pharmacies, hospitals, care and payers,
// otherwise one of the practice providers.
func (g *gen) server(r *rng, group string) string {
	switch {
	case group == "apotheke" && r.chance(0.6):
		return pharmacyServer
	case group == "krankenhaus" && r.chance(0.8):
		return hospitalServer
	case (group == "pflege" || group == "geburt") && r.chance(0.6):
		return careServer
	case group == "kasse":
		return payerServer
	}
	return r.str(practiceServers)
}

func hex64(r *rng) string {
	var b [64]byte
	const digits = "0123456789abcdef"
	for k := 0; k < 4; k++ {
		v := r.next()
		for m := 0; m < 16; m++ {
			b[k*16+m] = digits[v>>60]
			v <<= 4
		}
	}
	return string(b[:])
}

// slug lowercases and transliterates s into a Matrix-localpart-safe string of at most max bytes, with
// runs of other characters collapsed to one '-'.
func slug(s string, max int) string {
	var b []byte
	dash := false
	for _, c := range s {
		var t string
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			t = string(c)
		case c >= 'A' && c <= 'Z':
			t = string(c + 'a' - 'A')
		default:
			t = translit[c]
		}
		if t == "" {
			dash = len(b) > 0
			continue
		}
		if dash {
			b = append(b, '-')
			dash = false
		}
		b = append(b, t...)
	}
	if len(b) > max {
		b = b[:max]
	}
	return strings.TrimRight(string(b), "-")
}

func (g *gen) writeOrganization(o *org) error {
	w := &g.o
	w.begin("Organization", "org", o.i+1, o.updated, "ldap", "OrganizationDirectoryStrict", o.prof.fdv)
	w.raw(`,"identifier":[`)
	w.telematikID(o.tid)
	if o.extra != "" {
		w.raw(",")
		w.ident(o.prof.ident, o.extra)
	}
	w.raw(`],"active":`)
	w.raw(strconv.FormatBool(o.active))
	w.raw(`,"type":[{"coding":[{"system":"` + sysOrgProf + `","code":"`)
	w.raw(o.prof.oid)
	w.raw(`","display":`)
	w.str(o.prof.display)
	w.raw(`}]}]`)
	w.field("name", o.name)
	w.raw(`,"alias":[`)
	w.str(o.alias)
	w.raw(`]`)
	return g.emit(&g.n.Organization)
}

func (g *gen) writeAddress(p place) {
	w := &g.o
	w.raw(`,"address":{"use":"work","type":"physical","text":`)
	w.str(p.line + ", " + p.postcode + " " + p.city.Name)
	w.raw(`,"line":[`)
	w.str(p.line)
	w.raw(`]`)
	w.field("city", p.city.Name)
	w.field("state", p.city.State())
	w.field("postalCode", p.postcode)
	w.raw(`,"country":"DE"},"position":{"longitude":`)
	w.coord(p.lon)
	w.raw(`,"latitude":`)
	w.coord(p.lat)
	w.raw(`}`)
}

func (g *gen) writeOrgLocation(o *org) error {
	w := &g.o
	w.begin("Location", "loc", o.i+1, o.updated, "ldap", "LocationDirectoryStrict", false)
	w.field("name", o.name)
	w.field("description", o.prof.display)
	g.writeAddress(o.place)
	w.raw(`,"managingOrganization":`)
	w.ref("Organization", "org", o.i+1)
	return g.emit(&g.n.Location)
}

func (g *gen) writePersonLocation(p *person) error {
	w := &g.o
	w.begin("Location", "loc", g.plan.Organization+p.i+1, p.updated, "ldap", "LocationDirectoryStrict", false)
	w.field("name", p.text)
	w.field("description", p.prof.display)
	g.writeAddress(p.place)
	return g.emit(&g.n.Location)
}

func (g *gen) writeEndpoint(n int, e endpoint) error {
	w := &g.o
	w.begin("Endpoint", "ep", n, e.updated, "owner", "endpoint-directory-Strict", false)
	if e.hide {
		w.raw(`,"extension":[{"url":"` + extEndpointVis + `","valueCoding":{"system":"` + sysEndpointVisCS + `","code":"hide-versicherte"}}]`)
	}
	if e.off {
		w.raw(`,"status":"off"`)
	} else {
		w.raw(`,"status":"active"`)
	}
	w.raw(`,"connectionType":{"system":"` + sysConnType + `","code":"tim","display":"TI-Messenger Endpoint"}`)
	w.field("name", "MatrixId von "+e.display+" (@"+e.local+":"+e.server+")")
	w.raw(`,"payloadType":[{"coding":[{"system":"` + sysPayloadType + `","code":"tim-chat","display":"TI-Messenger chat"}]}]`)
	w.field("address", "matrix:u/"+e.local+":"+e.server)
	return g.emit(&g.n.Endpoint)
}

func (g *gen) writePractitioner(p *person) error {
	w := &g.o
	w.begin("Practitioner", "pr", p.i+1, p.updated, "ldap", "PractitionerDirectoryStrict", false)
	w.raw(`,"identifier":[`)
	w.telematikID(p.tid)
	if p.lanr != "" {
		w.raw(",")
		w.ident(sysLANR, p.lanr)
	}
	w.raw(`],"active":`)
	w.raw(strconv.FormatBool(p.active))
	w.raw(`,"name":[{"use":"official","text":`)
	w.str(p.text)
	w.field("family", p.family)
	w.raw(`,"given":[`)
	for k, gv := range p.given {
		if k > 0 {
			w.raw(",")
		}
		w.str(gv)
	}
	w.raw(`]`)
	if p.title != "" {
		w.raw(`,"prefix":[`)
		w.str(p.title)
		w.raw(`]`)
	}
	w.raw(`}]`)
	if p.female {
		w.raw(`,"gender":"female"`)
	} else {
		w.raw(`,"gender":"male"`)
	}
	w.raw(`,"qualification":[{"code":{"coding":[{"system":"` + sysPractProf + `","code":"`)
	w.raw(p.prof.oid)
	w.raw(`","display":`)
	w.str(p.prof.display)
	w.raw(`}]}}]`)
	return g.emit(&g.n.Practitioner)
}

func (g *gen) writePractitionerRole(p *person, ep int) error {
	w := &g.o
	origin := "ldap"
	if p.ownerRole {
		origin = "owner"
	}
	w.begin("PractitionerRole", "prr", p.i+1, p.updated, origin, "PractitionerRoleDirectoryStrict", false)
	w.ownerExt(p.ownerRole, p.prof.holder(p.reg), p.tid)
	w.raw(`,"practitioner":`)
	w.ref("Practitioner", "pr", p.i+1)
	w.raw(`,"location":[`)
	w.ref("Location", "loc", g.plan.Organization+p.i+1)
	w.raw(`]`)
	if ep > 0 {
		w.raw(`,"endpoint":[`)
		w.ref("Endpoint", "ep", ep)
		w.raw(`]`)
	}
	return g.emit(&g.n.PractitionerRole)
}

var weekdays = [...]string{"mon", "tue", "wed", "thu", "fri", "sat"}

func (g *gen) writeHealthcareService(o *org, ep int) error {
	w := &g.o
	origin := "ldap"
	if o.ownerHS {
		origin = "owner"
	}
	w.begin("HealthcareService", "hs", o.i+1, o.updated, origin, "HealthcareServiceDirectoryStrict", false)
	w.ownerExt(o.ownerHS, o.prof.holder(o.reg), o.tid)
	if !o.ownerHS {
		w.raw(`,"identifier":[`)
		w.telematikID(o.tid)
		w.raw(`]`)
	}
	w.raw(`,"providedBy":`)
	w.ref("Organization", "org", o.i+1)
	if len(o.spec) > 0 {
		w.raw(`,"type":[`)
		for k, s := range o.spec {
			if k > 0 {
				w.raw(",")
			}
			w.raw(`{"coding":[{"system":"`)
			w.raw(s.system)
			w.raw(`","code":"`)
			w.raw(s.code)
			w.raw(`","display":`)
			w.str(s.display)
			w.raw(`}]}`)
		}
		w.raw(`]`)
	}
	w.raw(`,"location":[`)
	w.ref("Location", "loc", o.i+1)
	w.raw(`]`)
	w.field("name", o.hsName)
	w.raw(`,"telecom":[{"system":"phone","value":`)
	w.str(o.phone)
	w.raw(`,"use":"work"}]`)
	g.writeHours(o)
	if ep > 0 {
		w.raw(`,"endpoint":[`)
		w.ref("Endpoint", "ep", ep)
		w.raw(`]`)
	}
	return g.emit(&g.n.HealthcareService)
}

// writeHours writes opening hours, one weekday per entry as the profile requires. Hospitals and
// residential care are open around the clock and carry none (allDay is not allowed).
func (g *gen) writeHours(o *org) {
	if o.prof.group == "krankenhaus" || o.hsName == "Stationäre Altenpflege" || o.prof.group == "kasse" || o.prof.group == "diga" {
		return
	}
	w := &g.o
	w.raw(`,"availableTime":[`)
	last := 5
	if o.prof.group == "apotheke" {
		last = 6
	}
	for d := 0; d < last; d++ {
		start, end := "08:00:00", "18:00:00"
		switch {
		case d == 5:
			start, end = "09:00:00", "13:00:00"
		case o.prof.group == "apotheke":
			end = "18:30:00"
		case o.hours == 1 && (d == 2 || d == 4):
			end = "13:00:00"
		case o.hours == 2:
			start, end = "07:30:00", "16:00:00"
		}
		if d > 0 {
			w.raw(",")
		}
		w.raw(`{"daysOfWeek":["`)
		w.raw(weekdays[d])
		w.raw(`"],"availableStartTime":"`)
		w.raw(start)
		w.raw(`","availableEndTime":"`)
		w.raw(end)
		w.raw(`"}`)
	}
	w.raw(`]`)
	if o.prof.group != "apotheke" {
		w.field("availabilityExceptions", "An Feiertagen geschlossen")
	}
}
