package storetest

import (
	"fmt"

	"github.com/timstack/timstack/directory/index"
)

var (
	families = []string{"muller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz", "hoffmann", "koch", "richter", "klein", "wolf", "neumann"}
	givens   = []string{"anna", "timjamin", "lukas", "mia", "jonas", "lea", "felix", "emma", "paul", "hannah", "ben", "sofia"}
	cities   = []string{"berlin", "hamburg", "munchen", "koln", "frankfurt", "stuttgart", "dusseldorf", "leipzig", "dortmund", "essen", "gelsenkirchen", "bremen"}
)

// Synthetic returns n resources (n rounded down to a multiple of 5) in groups of Organization, Location,
// Endpoint, Practitioner and PractitionerRole, about 15 index rows each, with ids unique per seed. Every
// Practitioner is active=true. Used by the bulk case and the engines' benchmarks.
func Synthetic(n, seed int) []index.Resource {
	out := make([]index.Resource, 0, n)
	for g := 0; g < n/5; g++ {
		id := func(kind string) string { return fmt.Sprintf("%s-%d-%d", kind, seed, g) }
		fam, giv, city := families[g%len(families)], givens[(g/3)%len(givens)], cities[(g/7)%len(cities)]
		plz := fmt.Sprintf("%05d", 10000+(g*37)%89999)
		tid := fmt.Sprintf("1-2arvtst-%d-%06d", seed, g)
		lat, lon := 47.5+float64(g%500)*0.01, 6.0+float64(g%900)*0.01
		org := res(index.Organization, id("org"),
			str("name", "praxis "+fam), str("name", fam+" "+city), str("alias", fam+" praxis"),
			tok("identifier", sysTelematik, tid), tok("identifier", sysIKNR, fmt.Sprintf("%09d", g)),
			tok("active", "", "true"), tokd("type", sysOrgType, "1.2.276.0.76.4.50", "betriebsstatte arzt"),
			str("type-display", "betriebsstatte arzt"), str("address", city), str("address", plz),
			str("address-city", city), str("address-postalcode", plz), str("address-country", "de"),
			tok("_tag", "", "ldap"), tok("organizationVisibility", "", "visible"))
		loc := res(index.Location, id("loc"),
			str("name", "praxis "+fam), str("address", "hauptstrasse"), str("address", city), str("address", plz),
			str("address-city", city), str("address-postalcode", plz), str("address-country", "de"),
			geo("near", lat, lon), ref("organization", index.Organization, id("org")), tok("status", "", "active"),
			tok("identifier", sysTelematik, tid+"-loc"), tok("_tag", "", "ldap"), str("address-state", "nrw"),
			tok("identifier", sysIKNR, fmt.Sprintf("l%08d", g)), str("address", "12"))
		ep := res(index.Endpoint, id("ep"),
			tok("status", "", "active"), tok("connection-type", "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType", "tim"),
			tokd("payload-type", sysPayload, "tim-chat", "ti-messenger chat"), str("name", giv+" "+fam),
			str("address", fmt.Sprintf("matrix:u/%s.%s.%d:tim.example.de", giv, fam, g)), ref("organization", index.Organization, id("org")),
			tok("endpointVisibility", "", "visible"), tok("owner-telematik-id", sysTelematik, tid), tok("_tag", "", "ldap"),
			tok("identifier", sysTelematik, tid+"-ep"), tokd("payload-type", sysPayload, "tim-chat-v2", "ti-messenger chat v2"),
			str("name", "tim "+fam), tok("identifier", sysIKNR, fmt.Sprintf("e%08d", g)), str("address", "mxid"), str("name", city))
		pr := res(index.Practitioner, id("pr"),
			str("name", giv+" "+fam), str("name", giv), str("name", fam), str("name", "dr"), str("family", fam), str("given", giv),
			tok("identifier", sysTelematik, tid+"-pr"), tok("identifier", "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR", fmt.Sprintf("%09d", g)),
			tok("active", "", "true"), tokd("qualification", "urn:oid:1.2.276.0.76.5.514", "1.2.276.0.76.4.241", "arztin/arzt"),
			tokd("qualification", "urn:oid:1.2.276.0.76.5.514", "010", "facharzt"), tok("gender", "", "female"), tok("_tag", "", "ldap"),
			str("family", fam+"-"+giv), str("given", "maria"))
		role := res(index.PractitionerRole, id("role"), append([]index.Row{
			ref("practitioner", index.Practitioner, id("pr")), ref("organization", index.Organization, id("org")),
			ref("location", index.Location, id("loc")), ref("endpoint", index.Endpoint, id("ep")), tok("active", "", "true"),
			tok("identifier", sysTelematik, tid+"-role"), tok("role", "", "doctor"), tok("specialty", "", "010"),
			tok("_tag", "", "ldap")}, text(giv, fam, city, plz, "hauptstrasse", "arztin")...)...)
		out = append(out, org, loc, ep, pr, role)
	}
	return out
}
