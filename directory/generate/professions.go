package generate

import (
	"fmt"
	"strconv"

	"github.com/timstack/timstack/certs"
)

// practProf is one practitioner profession (HBA / eGBR card holder) with its share of the directory, the
// Telematik-ID shape issued for it and who issues its cards. Only professions whose Telematik-ID prefix
// is listed in gematik's TelematikID.mapping.json are generated, so every generated ID classifies to the
// right kind there.
type practProf struct {
	arc     int
	weight  int     // per mille of practitioners
	female  float64 // share of women
	dr, pro float64 // share with a doctorate / professorship
	tid     func(r *rng, i int, reg *region) string
	holder  func(reg *region) string
	group   string // selects homeserver and Location description
	oid     string // filled in init
	display string // from certs.ClassifyProfessionOID
}

// orgProf is one organisation profession (SMC-B holder): share, Telematik-ID shape, card issuer, name
// pattern and the HealthcareService it offers.
type orgProf struct {
	arc     int
	weight  int // per mille of organisations
	tid     func(r *rng, i int, reg *region) string
	holder  func(reg *region) string
	group   string
	fdv     bool   // ePA-relevant: sync sets the ResourceTag fdv-relevant
	private bool   // privately issued SMC-B (9-2.… IDs, no BSNR)
	ident   string // extra identifier system (BSNR, IKNR) or ""
	oid     string
	display string
}

const (
	sysBSNR = "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR"
	sysIKNR = "http://fhir.de/sid/arge-ik/iknr"
	sysLANR = "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR"
)

func fixed(code string) func(*region) string { return func(*region) string { return code } }

// Practitioner shares follow the rough German head counts of HBA holders: physicians dominate, then
// dentists and pharmacists, psychotherapists, and the eGBR professions now joining the TI.
var practProfs = []*practProf{
	{arc: 30, weight: 560, female: 0.49, dr: 0.45, pro: 0.02, group: "arzt",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("1-1%02d%08d", g.kvCode%100, i) },
		holder: func(g *region) string { return g.aek }},
	{arc: 31, weight: 120, female: 0.47, dr: 0.3, pro: 0.005, group: "zahnarzt",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("2-1%02d.%08d", g.kvCode%100, i) },
		holder: func(g *region) string { return g.zaek }},
	{arc: 32, weight: 90, female: 0.72, dr: 0.08, group: "apotheke",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("3-%02d.3.%08d", g.kvCode%100, i) },
		holder: func(g *region) string { return g.ak }},
	{arc: 33, weight: 8, female: 0.85, group: "apotheke",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("9-1.33.%08d", i) },
		holder: func(g *region) string { return g.ak }},
	{arc: 34, weight: 7, female: 0.6, group: "apotheke",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("9-1.34.%08d", i) },
		holder: func(g *region) string { return g.ak }},
	{arc: 45, weight: 25, female: 0.75, dr: 0.15, group: "psych",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("4-%02d.%08d", g.kvCode%100, i) },
		holder: func(g *region) string { return g.ptk }},
	{arc: 46, weight: 45, female: 0.75, dr: 0.2, group: "psych",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("4-%02d.%08d", g.kvCode%100, i) },
		holder: func(g *region) string { return g.ptk }},
	{arc: 47, weight: 15, female: 0.8, dr: 0.1, group: "psych",
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("4-%02d.%08d", g.kvCode%100, i) },
		holder: func(g *region) string { return g.ptk }},
	{arc: 232, weight: 40, female: 0.8, group: "pflege", tid: egbrTID(232), holder: fixed("egbr")},
	{arc: 233, weight: 20, female: 0.85, group: "pflege", tid: egbrTID(233), holder: fixed("egbr")},
	{arc: 234, weight: 25, female: 0.8, group: "pflege", tid: egbrTID(234), holder: fixed("egbr")},
	{arc: 235, weight: 20, female: 1, group: "pflege", tid: egbrTID(235), holder: fixed("egbr")},
	{arc: 236, weight: 25, female: 0.65, group: "therapie", tid: egbrTID(236), holder: fixed("egbr")},
}

func egbrTID(arc int) func(*rng, int, *region) string {
	p := "10-67." + strconv.Itoa(arc) + "."
	return func(r *rng, i int, _ *region) string { return fmt.Sprintf("%s%08d", p, i) }
}

func privTID(arc int) func(*rng, int, *region) string {
	p := "9-2." + strconv.Itoa(arc) + "."
	return func(r *rng, i int, _ *region) string { return fmt.Sprintf("%s%08d", p, i) }
}

// bsnrTID builds a KV-issued practice ID "1-20<BSNR>"; the BSNR starts with the KV region number.
func bsnrTID(r *rng, i int, g *region) string { return "1-20" + bsnr(i, g) }

func bsnr(i int, g *region) string { return fmt.Sprintf("%02d%07d", g.kvCode, i%10000000) }

// Organisation shares follow the German counts: ~100k medical practices, ~40k dental practices, ~17k
// pharmacies, ~2k hospitals, many care services, few payers.
var orgProfs = []*orgProf{
	{arc: 50, weight: 450, group: "arzt", fdv: true, ident: sysBSNR, tid: bsnrTID, holder: func(g *region) string { return g.kv }},
	{arc: 50, weight: 30, group: "arzt", fdv: true, private: true, tid: privTID(50), holder: func(g *region) string { return g.aek }},
	{arc: 51, weight: 190, group: "zahnarzt", fdv: true,
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("2-2%02d.%08d", g.kvCode%100, i) },
		holder: func(g *region) string { return g.kzv }},
	{arc: 51, weight: 10, group: "zahnarzt", fdv: true, private: true, tid: privTID(51), holder: func(g *region) string { return g.zaek }},
	{arc: 52, weight: 50, group: "psych", fdv: true, ident: sysBSNR, tid: bsnrTID, holder: func(g *region) string { return g.kv }},
	{arc: 52, weight: 10, group: "psych", fdv: true, private: true, tid: privTID(34), holder: func(g *region) string { return g.ptk }},
	{arc: 53, weight: 12, group: "krankenhaus", fdv: true, ident: sysIKNR,
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("5-2-26%07d", i%10000000) },
		holder: fixed("dktig")},
	{arc: 54, weight: 90, group: "apotheke", fdv: true,
		tid: func(r *rng, i int, g *region) string {
			return fmt.Sprintf("3-%02d.2.%04d%06d.%02d.%03d", g.kvCode%100, 1000+r.intn(9000), i%1000000, r.intn(100), r.intn(1000))
		},
		holder: func(g *region) string { return g.ak }},
	{arc: 59, weight: 8, group: "kasse", ident: sysIKNR,
		tid:    func(r *rng, i int, g *region) string { return fmt.Sprintf("8-01-10%07d", i%10000000) },
		holder: fixed("gkv")},
	{arc: 59, weight: 3, group: "kasse", private: true, tid: privTID(59), holder: fixed("dtrust")},
	{arc: 245, weight: 85, group: "pflege", tid: egbrTID(245), holder: fixed("egbr")},
	{arc: 245, weight: 30, group: "pflege", private: true, tid: privTID(245), holder: fixed("dtsg")},
	{arc: 246, weight: 5, group: "geburt", tid: egbrTID(246), holder: fixed("egbr")},
	{arc: 247, weight: 20, group: "therapie", tid: egbrTID(247), holder: fixed("egbr")},
	{arc: 255, weight: 3, group: "oegd", private: true, tid: privTID(255), holder: fixed("dtrust")},
	{arc: 256, weight: 2, group: "arbeitsmedizin", private: true, tid: privTID(256), holder: fixed("dtrust")},
	{arc: 282, weight: 2, group: "diga", private: true, tid: privTID(282), holder: fixed("dtrust")},
}

var (
	practCum = cumulative(len(practProfs), func(i int) int { return practProfs[i].weight })
	orgCum   = cumulative(len(orgProfs), func(i int) int { return orgProfs[i].weight })
	cityCum  = cumulative(len(Cities), func(i int) int { return Cities[i].Weight })
)

func init() {
	for _, p := range practProfs {
		p.oid, p.display = professionName(p.arc, certs.KindPerson)
	}
	for _, p := range orgProfs {
		p.oid, p.display = professionName(p.arc, certs.KindInstitution)
	}
}

// professionName takes displays from the certs OID table so directory data and certificate admission
// checks agree on names; a table mistake here panics at start-up rather than producing wrong data.
func professionName(arc int, want certs.ProfessionKind) (string, string) {
	oid := "1.2.276.0.76.4." + strconv.Itoa(arc)
	kind, name := certs.ClassifyProfessionOID(oid)
	if kind != want {
		panic("generate: profession OID " + oid + " is not of kind " + string(want))
	}
	return oid, name
}

func cumulative(n int, w func(int) int) []int {
	c := make([]int, n)
	t := 0
	for i := range c {
		t += w(i)
		c[i] = t
	}
	return c
}

// pick draws an index with probability proportional to its weight.
func pick(r *rng, cum []int) int {
	x := r.intn(cum[len(cum)-1])
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// specialty is a HealthcareService.type coding.
type specialty struct {
	system, code, display string
	weight                int
}

const (
	sysMedSpec    = "urn:oid:1.3.6.1.4.1.19376.3.276.1.5.4"
	sysNonMedSpec = "urn:oid:1.3.6.1.4.1.19376.3.276.1.5.5"
)

// medSpecs weights the specialties of medical practices: general practice first, then internal
// medicine, gynaecology, paediatrics, orthopaedics and so on.
var medSpecs = []specialty{
	{sysMedSpec, "ALLG", "Allgemeinmedizin", 35}, {sysMedSpec, "INNE", "Innere Medizin", 15},
	{sysMedSpec, "FRAU", "Frauenheilkunde und Geburtshilfe", 7}, {sysMedSpec, "KIJU", "Kinder- und Jugendmedizin", 6},
	{sysMedSpec, "ORTH", "Orthopädie", 5}, {sysMedSpec, "AUGE", "Augenheilkunde", 4},
	{sysMedSpec, "HAUT", "Haut- und Geschlechtskrankheiten", 3}, {sysMedSpec, "HNOH", "Hals-Nasen-Ohrenheilkunde", 3},
	{sysMedSpec, "UROL", "Urologie", 3}, {sysMedSpec, "NEUR", "Neurologie", 3},
	{sysMedSpec, "PSYC", "Psychiatrie und Psychotherapie", 3}, {sysMedSpec, "CHIR", "Chirurgie", 3},
	{sysMedSpec, "RADI", "Radiologie", 2}, {sysMedSpec, "KARD", "Kardiologie", 2},
	{sysMedSpec, "GAST", "Gastroenterologie", 2}, {sysMedSpec, "PSYM", "Psychosomatische Medizin und Psychotherapie", 2},
	{sysMedSpec, "ANAE", "Anästhesiologie", 1}, {sysMedSpec, "LABO", "Laboratoriumsmedizin", 1},
}

var medSpecCum = cumulative(len(medSpecs), func(i int) int { return medSpecs[i].weight })

var (
	specDental    = []specialty{{sysMedSpec, "MZKH", "Zahnmedizin", 0}}
	specDentalAlt = []specialty{{sysMedSpec, "MZKH", "Zahnmedizin", 0}, {sysMedSpec, "KIEF", "Kieferorthopädie", 0}}
	specPsych     = []specialty{{sysNonMedSpec, "PST", "Psychotherapie", 0}}
	specHospital  = []specialty{{sysMedSpec, "INNE", "Innere Medizin", 0}, {sysMedSpec, "CHIR", "Chirurgie", 0}}
	specCare      = []specialty{{sysNonMedSpec, "PFL", "Pflege und Betreuung", 0}}
	specElderly   = []specialty{{sysNonMedSpec, "ALT", "Altenpflege", 0}}
	specPayer     = []specialty{{sysNonMedSpec, "VER", "Verwaltung", 0}}
	specOEGD      = []specialty{{sysMedSpec, "GESU", "Öffentliches Gesundheitswesen", 0}}
	specWork      = []specialty{{sysMedSpec, "ARBE", "Arbeitsmedizin", 0}}
	specPharmacy  = []specialty{{sysNonMedSpec, "PHZ", "Pharmazeutik", 0}}
)
