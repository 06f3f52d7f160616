package directory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
)

const (
	originTag = `"meta":{"tag":[{"system":"https://gematik.de/fhir/directory/CodeSystem/Origin","code":"ldap"}]}`
	tidSystem = "https://gematik.de/fhir/sid/telematik-id"
)

func ownerTIDs(n int) (practitioner, organization string) {
	return fmt.Sprintf("1-1-ARZT-OWNER-%d", n), fmt.Sprintf("1-20-PRAXIS-OWNER-%d", n)
}

// seedOwnerData stores what the LDAP sync would for owner n: an Organization with a synced
// HealthcareService and Location, and a Practitioner with a synced PractitionerRole. Service 1 also has a
// synced (non-TIM) KIM endpoint.
func seedOwnerData(e *env, n int) {
	e.t.Helper()
	pt, ot := ownerTIDs(n)
	i := fmt.Sprint(n)
	hsEndpoint := ""
	docs := []string{
		`{"resourceType":"Location","id":"loc-` + i + `",` + originTag + `,"address":{"line":["Hauptstr. ` + i + `"],"city":"Berlin","postalCode":"1011` + i + `"}}`,
		`{"resourceType":"Organization","id":"org-` + i + `",` + originTag + `,"active":true,"identifier":[{"system":"` + tidSystem + `","value":"` + ot + `"}],"name":"Praxis Owner ` + i + `"}`,
		`{"resourceType":"Practitioner","id":"prac-` + i + `",` + originTag + `,"active":true,"identifier":[{"system":"` + tidSystem + `","value":"` + pt + `"}],"name":[{"text":"Dr. Owner ` + i + `","family":"Owner","given":["Dr."]}]}`,
		`{"resourceType":"PractitionerRole","id":"role-` + i + `",` + originTag + `,"practitioner":{"reference":"Practitioner/prac-` + i + `"},"location":[{"reference":"Location/loc-` + i + `"}]}`,
	}
	if n == 1 {
		docs = append(docs, `{"resourceType":"Endpoint","id":"kim-1",`+originTag+`,"status":"active","connectionType":{"system":"https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType","code":"kim"},"name":"KIM Praxis 1","address":"praxis1@kim.test"}`)
		hsEndpoint = `,"endpoint":[{"reference":"Endpoint/kim-1"}]`
	}
	docs = append(docs, `{"resourceType":"HealthcareService","id":"hs-`+i+`",`+originTag+`,"providedBy":{"reference":"Organization/org-`+i+`"},"location":[{"reference":"Location/loc-`+i+`"}],"name":"Praxis Owner `+i+`",`+
		`"specialty":[{"coding":[{"system":"https://gematik.de/fhir/directory/CodeSystem/HealthcareServiceSpecialtyCS","code":"impfung"}]}]`+hsEndpoint+`}`)
	var raw [][]byte
	for _, d := range docs {
		raw = append(raw, []byte(d))
	}
	if _, err := e.writer.Put(context.Background(), raw); err != nil {
		e.t.Fatal(err)
	}
}

func timEndpoint(code, address string) string {
	return `{"resourceType":"Endpoint","status":"active","connectionType":{"system":"https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType","code":"` + code + `"},` +
		`"name":"MatrixId von ` + address + `","payloadType":[{"coding":[{"system":"https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryPayloadType","code":"tim-chat"}]}],"address":"` + address + `"}`
}

type outcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity, Code, Diagnostics string
	} `json:"issue"`
}

// ownerCall is a request against the running directory with JSON helpers.
type ownerCall struct{ e *env }

func (c ownerCall) json(method, path, token string, body any, hdr ...string) (int, []byte, map[string]any, string) {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		rd = strings.NewReader(string(data))
	}
	if rd != nil {
		hdr = append(hdr, "Content-Type", "application/fhir+json")
	}
	status, raw, h := c.e.do(method, path, token, rd, hdr...)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return status, raw, m, h.Get("ETag") + "|" + h.Get("Location")
}

// expect checks the status and, for an OperationOutcome, the first issue's code.
func expect(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d: %s", what, status, wantStatus, body)
		return
	}
	if wantCode == "" {
		return
	}
	var oo outcome
	if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 || oo.Issue[0].Code != wantCode {
		t.Errorf("%s: want OperationOutcome with issue code %s, got %s", what, wantCode, body)
	}
}

// searchIDs runs a search and returns "mode Type/id" entries.
func searchIDs(e *env, path, token string) []string {
	e.t.Helper()
	status, body, _ := e.do("GET", path, token, nil)
	if status != 200 {
		e.t.Fatalf("%s: %d %s", path, status, body)
	}
	var b bundle
	if err := json.Unmarshal(body, &b); err != nil {
		e.t.Fatal(err)
	}
	return b.entries(e.t)
}

func withEndpoints(m map[string]any, ids ...string) map[string]any {
	c := map[string]any{}
	for k, v := range m {
		c[k] = v
	}
	delete(c, "endpoint")
	if len(ids) > 0 {
		var eps []any
		for _, id := range ids {
			eps = append(eps, map[string]any{"reference": "Endpoint/" + id})
		}
		c["endpoint"] = eps
	}
	return c
}

func TestOwnerTypicalSequenceIsVisibleInSearch(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		seedOwnerData(e, 1)
		seedOwnerData(e, 2)
		c := ownerCall{e}
		pt1, _ := ownerTIDs(1)
		owner := e.token(directory.TokenOwner, "owner-1", directory.Claims{TelematikID: pt1, ProfessionOID: "1.2.276.0.76.4.30"})
		searchTok := e.token(directory.TokenSearch, "@alice:hs1.tim.test", directory.Claims{})

		// 1. GET /owner/Practitioner?identifier=<telematikID>
		got := searchIDs(e, "/owner/Practitioner?identifier="+url.QueryEscape(tidSystem+"|"+pt1), owner)
		if diff := cmp.Diff([]string{"match Practitioner/prac-1"}, got); diff != "" {
			t.Fatalf("practitioner by identifier (-want +got):\n%s", diff)
		}
		// 2. GET /owner/PractitionerRole?practitioner=Practitioner/<id>&_tag=ldap
		got = searchIDs(e, "/owner/PractitionerRole?practitioner=Practitioner/prac-1&_tag=ldap", owner)
		if diff := cmp.Diff([]string{"match PractitionerRole/role-1"}, got); diff != "" {
			t.Fatalf("synced roles (-want +got):\n%s", diff)
		}

		// 3. POST /owner/Endpoint: legacy address normalised, Origin owner and ownerTelematikId set by the server.
		status, body, ep, hdr := c.json("POST", "/owner/Endpoint", owner, timEndpoint("tim", "@Eins:HS1.tim.test"))
		expect(t, "create endpoint", status, body, 201, "")
		epID, _ := ep["id"].(string)
		if epID == "" || !strings.Contains(hdr, "/owner/Endpoint/"+epID+"/_history/1") || !strings.HasPrefix(hdr, `W/"1"`) {
			t.Fatalf("create endpoint: id %q, headers %s", epID, hdr)
		}
		for _, want := range []string{`"address":"matrix:u/Eins:hs1.tim.test"`, `"code":"owner"`, `"url":"https://gematik.de/fhir/directory/StructureDefinition/OwnerTelematikIdEx","valueIdentifier":{"system":"` + tidSystem + `","value":"` + pt1 + `"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("created endpoint lacks %s: %s", want, body)
			}
		}
		status, body, _, _ = c.json("POST", "/owner/Endpoint", owner, timEndpoint("tim", "matrix:u/eins:hs1.tim.test"))
		expect(t, "a second endpoint with the same address", status, body, 409, "duplicate")

		// 4. PUT /owner/PractitionerRole/<id> adding the endpoint (with If-Match).
		status, body, role, hdr := c.json("GET", "/owner/PractitionerRole/role-1", owner, nil)
		expect(t, "read role", status, body, 200, "")
		etag := strings.Split(hdr, "|")[0]
		status, body, _, _ = c.json("PUT", "/owner/PractitionerRole/role-1", owner, withEndpoints(role, epID), "If-Match", `W/"99"`)
		expect(t, "PUT with a stale If-Match", status, body, 412, "conflict")
		status, body, _, _ = c.json("PUT", "/owner/PractitionerRole/role-1", owner, withEndpoints(role, epID), "If-Match", etag)
		expect(t, "add own endpoint to synced role", status, body, 200, "")
		byAddr := "/search/PractitionerRole?endpoint.address=" + url.QueryEscape("matrix:u/eins:hs1.tim.test")
		if got := searchIDs(e, byAddr+"&endpoint.status=active", searchTok); !cmp.Equal(got, []string{"match PractitionerRole/role-1"}) {
			t.Errorf("role by endpoint address after PUT: %v", got)
		}
		if got := searchIDs(e, "/search/PractitionerRole?_text=Owner+Berlin&endpoint.status=active", searchTok); !cmp.Equal(got, []string{"match PractitionerRole/role-1"}) {
			t.Errorf("role by _text after PUT (text rows kept): %v", got)
		}

		// 5. PUT /owner/Endpoint/<id> status off; changing anything else is refused.
		_, _, epNow, _ := c.json("GET", "/owner/Endpoint/"+epID, owner, nil)
		renamed := map[string]any{}
		for k, v := range epNow {
			renamed[k] = v
		}
		renamed["name"] = "something else"
		status, body, _, _ = c.json("PUT", "/owner/Endpoint/"+epID, owner, renamed)
		expect(t, "rename endpoint", status, body, 400, "invalid")
		epNow["status"] = "off"
		epNow["extension"] = append(epNow["extension"].([]any), map[string]any{"url": "https://gematik.de/fhir/directory/StructureDefinition/EndpointVisibility",
			"valueCoding": map[string]any{"system": "https://gematik.de/fhir/directory/CodeSystem/EndpointVisibilityCS", "code": "hide-versicherte"}})
		status, body, _, _ = c.json("PUT", "/owner/Endpoint/"+epID, owner, epNow)
		expect(t, "endpoint status off + visibility", status, body, 200, "")
		if got := searchIDs(e, byAddr+"&endpoint.status=active", searchTok); len(got) != 0 {
			t.Errorf("role still found by an active endpoint after status off: %v", got)
		}
		if got := searchIDs(e, byAddr, searchTok); !cmp.Equal(got, []string{"match PractitionerRole/role-1"}) {
			t.Errorf("role by endpoint address (any status) after status off: %v", got)
		}
		if got := searchIDs(e, "/search/Endpoint?address="+url.QueryEscape("matrix:u/eins:hs1.tim.test"), searchTok); len(got) != 0 {
			t.Errorf("inactive endpoint found by /search/Endpoint: %v", got)
		}
		epNow["status"] = "suspended"
		status, body, _, _ = c.json("PUT", "/owner/Endpoint/"+epID, owner, epNow)
		expect(t, "endpoint status suspended", status, body, 400, "code-invalid")

		// 6. DELETE while referenced → 409; remove the reference; DELETE → 204.
		status, body, _, _ = c.json("DELETE", "/owner/Endpoint/"+epID, owner, nil)
		expect(t, "delete referenced endpoint", status, body, 409, "conflict")
		_, _, role, _ = c.json("GET", "/owner/PractitionerRole/role-1", owner, nil)
		status, body, _, _ = c.json("PUT", "/owner/PractitionerRole/role-1", owner, withEndpoints(role))
		expect(t, "remove endpoint from synced role", status, body, 200, "")
		if got := searchIDs(e, byAddr, searchTok); len(got) != 0 {
			t.Errorf("role still found by endpoint address after removal: %v", got)
		}
		status, body, _, _ = c.json("DELETE", "/owner/Endpoint/"+epID, owner, nil)
		expect(t, "delete unreferenced endpoint", status, body, 204, "")
		status, body, _, _ = c.json("GET", "/owner/Endpoint/"+epID, owner, nil)
		expect(t, "read deleted endpoint", status, body, 404, "not-found")
	})
}

func TestOwnerRefusals(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		seedOwnerData(e, 1)
		seedOwnerData(e, 2)
		c := ownerCall{e}
		pt1, ot1 := ownerTIDs(1)
		pt2, ot2 := ownerTIDs(2)
		p1 := e.token(directory.TokenOwner, "owner-1", directory.Claims{TelematikID: pt1})
		p2 := e.token(directory.TokenOwner, "owner-2", directory.Claims{TelematikID: pt2})
		o1 := e.token(directory.TokenOwner, "org-admin-1", directory.Claims{TelematikID: ot1})
		o2 := e.token(directory.TokenOwner, "org-admin-2", directory.Claims{TelematikID: ot2})
		searchTok := e.token(directory.TokenSearch, "@alice:hs1.tim.test", directory.Claims{})

		create := func(tok, doc string) string {
			t.Helper()
			status, body, m, _ := c.json("POST", "/owner/Endpoint", tok, doc)
			if status != 201 {
				t.Fatalf("create endpoint: %d %s", status, body)
			}
			return m["id"].(string)
		}
		ep1 := create(p1, timEndpoint("tim", "matrix:u/eins:hs1.tim.test"))
		ep2 := create(p2, timEndpoint("tim", "matrix:u/zwei:hs2.tim.test"))
		fa1 := create(o1, timEndpoint("tim-fa", "matrix:u/empfang:hs1.tim.test"))
		_, _, role1, _ := c.json("GET", "/owner/PractitionerRole/role-1", p1, nil)
		_, _, hs1, _ := c.json("GET", "/owner/HealthcareService/hs-1", o1, nil)
		_, _, ep1Doc, _ := c.json("GET", "/owner/Endpoint/"+ep1, p1, nil)

		changed := withEndpoints(role1, ep1)
		changed["active"] = false
		metaChanged := withEndpoints(role1)
		metaChanged["meta"] = map[string]any{"tag": []any{map[string]any{"system": "https://gematik.de/fhir/directory/CodeSystem/Origin", "code": "owner"}}}

		for _, tc := range []struct {
			name, method, path, token string
			body                      any
			status                    int
			code                      string
		}{
			{"no token", "GET", "/owner/Practitioner", "", nil, 401, "login"},
			{"a search token is no owner token", "GET", "/owner/Practitioner", searchTok, nil, 401, "login"},
			{"an owner token without Telematik-ID", "GET", "/owner/Practitioner", e.token(directory.TokenOwner, "x", directory.Claims{}), nil, 403, "forbidden"},
			{"another owner's synced role", "PUT", "/owner/PractitionerRole/role-1", p2, withEndpoints(role1, ep2), 403, "forbidden"},
			{"another owner's endpoint: PUT", "PUT", "/owner/Endpoint/" + ep1, p2, ep1Doc, 403, "forbidden"},
			{"another owner's endpoint: DELETE", "DELETE", "/owner/Endpoint/" + ep1, p2, nil, 403, "forbidden"},
			{"a non-TIM endpoint", "POST", "/owner/Endpoint", p1, `{"resourceType":"Endpoint","status":"active","connectionType":{"system":"https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType","code":"kim"},"name":"KIM","address":"x@kim.test"}`, 403, "forbidden"},
			{"a TIM endpoint without server name", "POST", "/owner/Endpoint", p1, timEndpoint("tim", "matrix:u/7a9ga9:"), 400, "value"},
			{"a TIM endpoint without tim-chat", "POST", "/owner/Endpoint", p1, `{"resourceType":"Endpoint","status":"active","connectionType":{"system":"https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType","code":"tim"},"name":"x","address":"matrix:u/x:hs1.tim.test"}`, 400, "required"},
			{"a body of another type", "POST", "/owner/Endpoint", p1, `{"resourceType":"Location","address":{"city":"x"}}`, 400, "invalid"},
			{"malformed JSON", "POST", "/owner/Endpoint", p1, `{"resourceType":"Endpoint",`, 400, ""},
			{"changing the synced role's other fields", "PUT", "/owner/PractitionerRole/role-1", p1, changed, 403, "forbidden"},
			{"changing the synced role's Origin", "PUT", "/owner/PractitionerRole/role-1", p1, metaChanged, 403, "forbidden"},
			{"referencing someone else's endpoint", "PUT", "/owner/PractitionerRole/role-1", p1, withEndpoints(role1, ep2), 403, "forbidden"},
			{"referencing a missing endpoint", "PUT", "/owner/PractitionerRole/role-1", p1, withEndpoints(role1, "nope"), 400, "value"},
			{"deleting a synced role", "DELETE", "/owner/PractitionerRole/role-1", p1, nil, 403, "forbidden"},
			{"writing a Practitioner", "PUT", "/owner/Practitioner/prac-1", p1, `{"resourceType":"Practitioner","id":"prac-1"}`, 403, "forbidden"},
			{"the organisation's admin is not the practitioner", "PUT", "/owner/PractitionerRole/role-1", o1, withEndpoints(role1, fa1), 403, "forbidden"},
			{"removing the synced KIM endpoint of a service", "PUT", "/owner/HealthcareService/hs-1", o1, withEndpoints(hs1, fa1), 403, "forbidden"},
			{"another organisation's service", "PUT", "/owner/HealthcareService/hs-1", o2, withEndpoints(hs1, "kim-1"), 403, "forbidden"},
			{"deleting a synced service", "DELETE", "/owner/HealthcareService/hs-1", o1, nil, 403, "forbidden"},
			{"an unknown id", "PUT", "/owner/PractitionerRole/nope", p1, withEndpoints(role1), 404, "not-found"},
			{"owner role of another practitioner", "POST", "/owner/PractitionerRole", p1, `{"resourceType":"PractitionerRole","practitioner":{"reference":"Practitioner/prac-2"}}`, 403, "forbidden"},
			{"owner role with organization", "POST", "/owner/PractitionerRole", p1, `{"resourceType":"PractitionerRole","practitioner":{"reference":"Practitioner/prac-1"},"organization":{"reference":"Organization/org-1"}}`, 400, "invalid"},
			{"owner role with TelematikID", "POST", "/owner/PractitionerRole", p1, `{"resourceType":"PractitionerRole","identifier":[{"system":"` + tidSystem + `","value":"` + pt1 + `"}],"practitioner":{"reference":"Practitioner/prac-1"}}`, 400, "invalid"},
			{"owner role at someone else's location", "POST", "/owner/PractitionerRole", p1, `{"resourceType":"PractitionerRole","practitioner":{"reference":"Practitioner/prac-1"},"location":[{"reference":"Location/loc-2"}]}`, 403, "forbidden"},
			{"owner service of another organisation", "POST", "/owner/HealthcareService", o1, `{"resourceType":"HealthcareService","providedBy":{"reference":"Organization/org-2"}}`, 403, "forbidden"},
			{"owner service with another TelematikID", "POST", "/owner/HealthcareService", o1, `{"resourceType":"HealthcareService","identifier":[{"system":"` + tidSystem + `","value":"` + ot2 + `"}],"providedBy":{"reference":"Organization/org-1"}}`, 403, "forbidden"},
			{"owner service with a foreign specialty", "POST", "/owner/HealthcareService", o1, `{"resourceType":"HealthcareService","providedBy":{"reference":"Organization/org-1"},"specialty":[{"coding":[{"system":"https://gematik.de/fhir/directory/CodeSystem/HealthcareServiceSpecialtyCS","code":"reisemedizin-beratung"}]}]}`, 400, "value"},
			{"owner service with someone else's endpoint", "POST", "/owner/HealthcareService", o1, `{"resourceType":"HealthcareService","providedBy":{"reference":"Organization/org-1"},"endpoint":[{"reference":"Endpoint/` + ep2 + `"}]}`, 403, "forbidden"},
		} {
			status, body, _, _ := c.json(tc.method, tc.path, tc.token, tc.body)
			expect(t, tc.name, status, body, tc.status, tc.code)
		}

		// What the organisation's admin may do: add its function account to the synced service, create its
		// own service (found via _tag=owner), and delete it again.
		status, body, _, _ := c.json("PUT", "/owner/HealthcareService/hs-1", o1, withEndpoints(hs1, "kim-1", fa1))
		expect(t, "add own endpoint to synced service", status, body, 200, "")
		if got := searchIDs(e, "/search/HealthcareService?endpoint.address="+url.QueryEscape("matrix:u/empfang:hs1.tim.test"), searchTok); !cmp.Equal(got, []string{"match HealthcareService/hs-1"}) {
			t.Errorf("service by endpoint address: %v", got)
		}
		status, body, hs, _ := c.json("POST", "/owner/HealthcareService", o1, `{"resourceType":"HealthcareService","identifier":[{"system":"`+tidSystem+`","value":"`+ot1+`"}],"providedBy":{"reference":"Organization/org-1"},"location":[{"reference":"Location/loc-1"}],"name":"Impfsprechstunde","specialty":[{"coding":[{"system":"https://gematik.de/fhir/directory/CodeSystem/HealthcareServiceSpecialtyCS","code":"impfung"}]}],"endpoint":[{"reference":"Endpoint/`+fa1+`"}]}`)
		expect(t, "create owner service", status, body, 201, "")
		hsID, _ := hs["id"].(string)
		if got := searchIDs(e, "/search/HealthcareService?_tag=owner&_text=Impfsprechstunde+Berlin", searchTok); !cmp.Equal(got, []string{"match HealthcareService/" + hsID}) {
			t.Errorf("owner service by _tag and _text: %v", got)
		}
		hs["name"] = "Impfsprechstunde Samstag"
		status, body, _, _ = c.json("PUT", "/owner/HealthcareService/"+hsID, o1, hs)
		expect(t, "update owner service", status, body, 200, "")
		status, body, _, _ = c.json("PUT", "/owner/HealthcareService/"+hsID, o2, hs)
		expect(t, "update another organisation's owner service", status, body, 403, "forbidden")
		status, body, _, _ = c.json("DELETE", "/owner/HealthcareService/"+hsID, o1, nil)
		expect(t, "delete owner service", status, body, 204, "")

		// The practitioner's own role: created, found by owner-telematik-id, deleted.
		status, body, pr, _ := c.json("POST", "/owner/PractitionerRole", p1, `{"resourceType":"PractitionerRole","practitioner":{"reference":"Practitioner/prac-1"},"location":[{"reference":"Location/loc-1"}],"endpoint":[{"reference":"Endpoint/`+ep1+`"}]}`)
		expect(t, "create owner role", status, body, 201, "")
		prID, _ := pr["id"].(string)
		if got := searchIDs(e, "/owner/PractitionerRole?owner-telematik-id="+url.QueryEscape(pt1), p1); !cmp.Equal(got, []string{"match PractitionerRole/" + prID}) {
			t.Errorf("owner role by owner-telematik-id: %v", got)
		}
		status, body, _, _ = c.json("DELETE", "/owner/PractitionerRole/"+prID, p2, nil)
		expect(t, "delete another practitioner's owner role", status, body, 403, "forbidden")
		status, body, _, _ = c.json("DELETE", "/owner/PractitionerRole/"+prID, p1, nil)
		expect(t, "delete owner role", status, body, 204, "")
	})
}
