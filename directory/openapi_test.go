package directory_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/store"
)

// The provider and auth interfaces are checked against gematik's own OpenAPI files with kin-openapi:
// every request we send and every response the server gives is validated against the operation the
// spec's router finds for it. Responses the spec does not document fail (IncludeResponseStatus).

const (
	specProviderServices = "I_VZD_TIM_Provider_Services.yaml"
	specTimAuthenticate  = "I_VZD_TIM_Authenticate.yaml"
	specProviderAuth     = "I_VZD_TI_Provider_Authenticate_Service.yaml"
)

// loadGematikSpec loads one of gematik's files unchanged. Strict validation is tried first and its
// complaint logged: I_VZD_TIM_Provider_Services' Domain.ik example is `[108433248, 104127692]` (integers)
// while ik items are strings since v1.3.8, so the examples are not checked.
func loadGematikSpec(t *testing.T, file string) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(gematik("vzd", "openapi", file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Logf("%s: strict validation: %s (examples are not checked)", file, firstLine(err))
		if err := doc.Validate(loader.Context, openapi3.DisableExamplesValidation()); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return doc
}

// specRouter routes requests to a spec's operations. The spec's servers (full gematik URLs with the base
// path /tim-provider-services, or {protocol}://{hostname} templates) are replaced by base.
func specRouter(t *testing.T, doc *openapi3.T, base string) routers.Router {
	t.Helper()
	doc.Servers = openapi3.Servers{{URL: base}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var errNoBearer = errors.New("no bearer token")

// bearerPresent is the validator's view of the OAuth2 requirement: a Bearer token must be sent (its
// validity is the server's business).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.Type != "oauth2" {
		return errors.New("unexpected security scheme " + in.SecurityScheme.Type)
	}
	if h := in.RequestValidationInput.Request.Header.Get("Authorization"); !strings.HasPrefix(strings.ToLower(h), "bearer ") {
		return errNoBearer
	}
	return nil
}

var validationOptions = &openapi3filter.Options{AuthenticationFunc: bearerPresent, IncludeResponseStatus: true}

// validateExchange validates a request and the response given to it against the router's spec.
func validateExchange(t *testing.T, router routers.Router, req *http.Request, status int, hdr http.Header, body []byte) (reqErr, respErr error) {
	t.Helper()
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: no operation in the spec: %v", req.Method, req.URL, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validationOptions}
	reqErr = openapi3filter.ValidateRequest(context.Background(), in)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: hdr, Options: validationOptions}
	out.SetBodyBytes(body)
	respErr = openapi3filter.ValidateResponse(context.Background(), out)
	return reqErr, respErr
}

// call is one exchange with the running server and what the validator must say about it.
type call struct {
	name      string
	method    string
	path      string
	token     string
	body      string
	hdr       []string
	status    int
	operation string
	// reqErr / respErr: substring of the validator's complaint when the request or response is expected
	// to deviate from the spec ("" = must validate).
	reqErr, respErr string
	want            string // expected body, where the case checks it
}

type openapiEnv struct {
	*env
	routers map[string]routers.Router // by spec file
}

func newOpenAPIEnv(t *testing.T, st store.Store) *openapiEnv {
	e := &openapiEnv{env: newEnv(t, st), routers: map[string]routers.Router{}}
	e.routers[specProviderServices] = specRouter(t, loadGematikSpec(t, specProviderServices), e.http.URL+"/tim-provider-services")
	e.routers[specTimAuthenticate] = specRouter(t, loadGematikSpec(t, specTimAuthenticate), e.http.URL)
	e.routers[specProviderAuth] = specRouter(t, loadGematikSpec(t, specProviderAuth), e.http.URL)
	return e
}

func (e *openapiEnv) run(t *testing.T, spec string, c call) []byte {
	t.Helper()
	var reqBody io.Reader
	if c.body != "" {
		reqBody = strings.NewReader(c.body)
	}
	hdr := c.hdr
	if c.body != "" {
		hdr = append([]string{"Content-Type", "application/json"}, hdr...)
	}
	status, body, respHdr := e.do(c.method, c.path, c.token, reqBody, hdr...)
	if status != c.status {
		t.Errorf("%s: status %d, want %d (%s)", c.name, status, c.status, body)
		return body
	}
	if status == http.StatusNoContent && len(body) != 0 {
		t.Errorf("%s: 204 with a body: %q", c.name, body)
	}
	// The validator's copy of the request: same method, URL, headers and body as e.do sent.
	var vBody io.Reader = http.NoBody
	if c.body != "" {
		vBody = bytes.NewReader([]byte(c.body))
	}
	req, err := http.NewRequest(c.method, e.http.URL+c.path, vBody)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	router := e.routers[spec]
	if route, _, err := router.FindRoute(req); err != nil || route.Operation.OperationID != c.operation {
		t.Fatalf("%s: route %v, want operation %s (%v)", c.name, route, c.operation, err)
	}
	reqErr, respErr := validateExchange(t, router, req, status, respHdr, body)
	check := func(what string, err error, want string) {
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %s %d does not validate against %s: %v", c.name, what, status, c.operation, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %s: validator said %v, want a complaint containing %q", c.name, what, err, want)
		case want != "":
			t.Logf("%s: known deviation of the %s (%s %d): %s", c.name, what, c.operation, status, firstLine(err))
		}
	}
	check("request", reqErr, c.reqErr)
	check("response", respErr, c.respErr)
	return body
}

func TestOpenAPIProviderAndAuthResponsesMatchGematikSpecs(t *testing.T) {
	engines(t, func(t *testing.T, st store.Store) {
		e := newOpenAPIEnv(t, st)

		// /ti-provider-authenticate (I_VZD_TI_Provider_Authenticate_Service): the client-credentials
		// token of our Keycloak stand-in is exchanged for a provider token.
		clientSecret, err := directory.KVClients{KV: st}.Register(context.Background(), "regservice-openapi")
		if err != nil {
			t.Fatal(err)
		}
		ccToken := e.clientCredentialsToken(t, "regservice-openapi", clientSecret)
		for _, c := range []call{
			{name: "provider authenticate", method: "GET", path: "/ti-provider-authenticate", token: ccToken, status: 200},
			{name: "provider authenticate with an unknown token", method: "GET", path: "/ti-provider-authenticate", token: "not-a-token", status: 401},
			{name: "provider authenticate with a search token", method: "GET", path: "/ti-provider-authenticate", token: e.token(directory.TokenSearch, "@a:hs1.tim.test", directory.Claims{}), status: 401},
			{name: "provider authenticate without token", method: "GET", path: "/ti-provider-authenticate", status: 401, reqErr: "security requirement"},
		} {
			c.operation = "getTiProviderAuthenticate"
			e.run(t, specProviderAuth, c)
		}

		p1 := e.providerToken("regservice-a")
		p2 := e.providerToken("regservice-b")
		e.seedOrganization("org-1", "1-SMC-B-Testkarte-883110000129077", true)
		e.seedOrganization("kk-1", "5-SMC-B-Kasse-1", true)
		e.importFiles(false, gematik("vzd", "fhir", "Endpoint-MessengerEndpointWithVisibility.json"),
			gematik("vzd", "fhir", "HealthcareService-HealthcareServiceExample.json"),
			gematik("vzd", "fhir", "PractitionerRole-PractitionerRoleExample.json"))

		const (
			practice  = `{"domain":"hs1.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`
			insurance = `{"domain":"kasse.tim.test","telematikID":"5-SMC-B-Kasse-1","isInsurance":true,"ik":["109500969"]}`
		)
		ps := func(c call) []byte { return e.run(t, specProviderServices, c) }
		p := "/tim-provider-services"

		// getInfo: the spec's global OAuth2 requirement covers it; we answer without token too (HOWTO
		// Provider), so the request is sent with one.
		ps(call{name: "getInfo", method: "GET", path: p + "/", token: p1, status: 200, operation: "getInfo"})

		// getFederationList
		ps(call{name: "empty federation list", method: "GET", path: p + "/FederationList/federationList.jws", token: p1, status: 200, operation: "getFederationList"})
		ps(call{name: "federation list with unknown sigAlg", method: "GET", path: p + "/FederationList/federationList.jws?sigAlg=RS256", token: p1, status: 400, operation: "getFederationList", reqErr: `parameter "sigAlg"`})
		ps(call{name: "federation list without token", method: "GET", path: p + "/FederationList/federationList.jws", status: 401, operation: "getFederationList", reqErr: "security requirement"})

		// addTiMessengerDomain
		add := func(name, token, body string, status int, reqErr string) []byte {
			return ps(call{name: name, method: "POST", path: p + "/federation", token: token, body: body, status: status, operation: "addTiMessengerDomain", reqErr: reqErr})
		}
		add("add a practice domain", p1, practice, 200, "")
		add("add an insurance domain", p1, insurance, 200, "")
		add("add the same domain again", p2, practice, 409, "")
		add("add an insurance domain without IK", p1, `{"domain":"kasse3.tim.test","telematikID":"5-SMC-B-Kasse-1","isInsurance":true}`, 400, "")
		add("add a domain of an unknown Telematik-ID", p1, `{"domain":"z.tim.test","telematikID":"nobody","isInsurance":false}`, 400, "")
		add("add a Domain without telematikID", p1, `{"domain":"z.tim.test","isInsurance":false}`, 400, `property "telematikID" is missing`)
		add("add without token", "", practice, 401, "security requirement")

		// getFederationList again: the client holds the current version → 204; BP and NIST lists.
		for _, alg := range []string{"BP256R1", "ES256"} {
			ps(call{name: alg + " list", method: "GET", path: p + "/FederationList/federationList.jws?sigAlg=" + alg, token: p2, status: 200, operation: "getFederationList"})
		}
		version := itoa(e.srv.Federation().Version())
		ps(call{name: "list at the current version", method: "GET", path: p + "/FederationList/federationList.jws?version=" + version, token: p2, status: 204, operation: "getFederationList"})
		ps(call{name: "list at the current version, ES256", method: "GET", path: p + "/FederationList/federationList.jws?sigAlg=ES256&version=" + version, token: p2, status: 204, operation: "getFederationList"})

		// getTiMessengerDomain
		for _, c := range []call{
			{name: "own domains", path: p + "/federation", token: p1, status: 200},
			{name: "no domains", path: p + "/federation", token: p2, status: 200},
			{name: "one domain", path: p + "/federation?domain=kasse.tim.test", token: p1, status: 200},
			{name: "an unknown domain", path: p + "/federation?domain=nope.tim.test", token: p1, status: 404},
			{name: "domains without token", path: p + "/federation", status: 401, reqErr: "security requirement"},
		} {
			c.method, c.operation = "GET", "getTiMessengerDomain"
			ps(c)
		}

		// updateTiMessengerDomain
		for _, c := range []call{
			{name: "update another provider's domain", path: p + "/federation/hs1.tim.test", token: p2, body: practice, status: 403},
			{name: "update with a different domain in the body", path: p + "/federation/hs1.tim.test", token: p1, body: insurance, status: 400},
			{name: "update an unknown domain", path: p + "/federation/nope.tim.test", token: p1, body: `{"domain":"nope.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false}`, status: 404},
			{name: "update own domain", path: p + "/federation/hs1.tim.test", token: p1, body: `{"domain":"hs1.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077","isInsurance":false,"redirectDomains":["hs1-alt.tim.test"]}`, status: 200},
		} {
			c.method, c.operation = "PUT", "updateTiMessengerDomain"
			ps(c)
		}

		// checkTiMessengerDomains: all organisations active → 204; one inactive → 200 with the domain.
		ps(call{name: "check with active organisations", method: "GET", path: p + "/federationCheck", token: p1, status: 204, operation: "checkTiMessengerDomains"})
		e.seedOrganization("org-1", "1-SMC-B-Testkarte-883110000129077", false)
		body := ps(call{name: "check with an inactive organisation", method: "GET", path: p + "/federationCheck", token: p1, status: 200, operation: "checkTiMessengerDomains"})
		if !strings.Contains(string(body), `"domain":"hs1.tim.test"`) {
			t.Errorf("federationCheck: %s", body)
		}

		// whereIs
		for _, c := range []call{
			{name: "where is an MXID of an organisation and a practitioner", path: p + "/localization?mxid=matrix:u/74c1fecc710ce4c8a8bbe310fbc5954c2a5e1e9ef5f70d651da1bfc4c9abe43f:example-domain.de", token: p1, status: 200, want: `"orgPract"`},
			{name: "where is an unknown MXID", path: p + "/localization?mxid=matrix:u/nobody:hs1.tim.test", token: p1, status: 200, want: `"none"`},
			{name: "where is a malformed MXID", path: p + "/localization?mxid=nonsense", token: p1, status: 400},
			{name: "where is without token", path: p + "/localization?mxid=matrix:u/nobody:hs1.tim.test", status: 401, reqErr: "security requirement"},
		} {
			c.method, c.operation = "GET", "whereIs"
			if body := strings.TrimSpace(string(ps(c))); c.status == 200 && body != c.want {
				t.Errorf("%s: %s, want %s", c.name, body, c.want)
			}
		}

		// /tim-authenticate (I_VZD_TIM_Authenticate) while hs1.tim.test is on the list.
		e.seedOrganization("org-1", "1-SMC-B-Testkarte-883110000129077", true)
		ps(call{name: "check after reactivation", method: "GET", path: p + "/federationCheck", token: p1, status: 204, operation: "checkTiMessengerDomains"})
		e.userinfo["tok-alice"] = "@alice:hs1.tim.test"
		e.userinfo["tok-foreign"] = "@mallory:evil.example"
		for _, c := range []call{
			{name: "tim-authenticate", path: "/tim-authenticate?mxId=hs1.tim.test", hdr: []string{"X-Matrix-OpenID-Token", "tok-alice"}, status: 200},
			{name: "tim-authenticate with a token of another server's user", path: "/tim-authenticate?mxId=kasse.tim.test", hdr: []string{"X-Matrix-OpenID-Token", "tok-foreign"}, status: 401},
			{name: "tim-authenticate with a token the homeserver does not know", path: "/tim-authenticate?mxId=hs1.tim.test", hdr: []string{"X-Matrix-OpenID-Token", "tok-unknown"}, status: 401},
			// I_VZD_TIM_Authenticate documents 200, 401 and 503 only: a server name that is not on the
			// federation list gets 403 (as the VZD answers), which the spec does not list.
			{name: "tim-authenticate for a server not on the list", path: "/tim-authenticate?mxId=evil.example", hdr: []string{"X-Matrix-OpenID-Token", "tok-foreign"}, status: 401},
			// Nor does it list 400: a request without the required header is invalid, and our 400 is undocumented.
			{name: "tim-authenticate without OpenID token", path: "/tim-authenticate?mxId=hs1.tim.test", status: 401, reqErr: `parameter "X-Matrix-OpenID-Token"`},
		} {
			c.method, c.operation = "GET", "getTimeAuthenticate"
			e.run(t, specTimAuthenticate, c)
		}

		// deleteTiMessengerDomain
		for _, c := range []call{
			{name: "delete another provider's domain", path: p + "/federation/hs1.tim.test", token: p2, status: 403},
			{name: "delete own domain", path: p + "/federation/hs1.tim.test", token: p1, status: 204},
			{name: "delete it again", path: p + "/federation/hs1.tim.test", token: p1, status: 404},
			{name: "delete without token", path: p + "/federation/kasse.tim.test", status: 401, reqErr: "security requirement"},
		} {
			c.method, c.operation = "DELETE", "deleteTiMessengerDomain"
			ps(c)
		}
	})
}

// clientCredentialsToken obtains a client-credentials token from our Keycloak stand-in (not part of the
// gematik specs: that is Keycloak's own OAuth2 token endpoint).
func (e *openapiEnv) clientCredentialsToken(t *testing.T, id, secret string) string {
	t.Helper()
	status, body, _ := e.do("POST", "/auth/realms/TI-Provider/protocol/openid-connect/token", "",
		strings.NewReader("grant_type=client_credentials&client_id="+id+"&client_secret="+secret),
		"Content-Type", "application/x-www-form-urlencoded")
	tok := between(string(body), `"access_token":"`, `"`)
	if status != 200 || tok == "" {
		t.Fatalf("client credentials: %d %s", status, body)
	}
	return tok
}

// firstLine cuts kin-openapi's schema dump off a validation error.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

// TestOpenAPIValidatorRejectsWrongResponses proves the validation has teeth: responses that break the
// specs are refused, while their correct counterparts pass.
func TestOpenAPIValidatorRejectsWrongResponses(t *testing.T) {
	const base = "https://vzd.test"
	routersBySpec := map[string]routers.Router{
		specProviderServices: specRouter(t, loadGematikSpec(t, specProviderServices), base+"/tim-provider-services"),
		specTimAuthenticate:  specRouter(t, loadGematikSpec(t, specTimAuthenticate), base),
		specProviderAuth:     specRouter(t, loadGematikSpec(t, specProviderAuth), base),
	}
	const domain = `{"domain":"hs1.tim.test","telematikID":"1-SMC-B-1","isInsurance":false}`
	cases := []struct {
		name, spec, method, path, reqBody string
		status                            int
		contentType, body                 string
		wantErr                           string // "" = must validate
	}{
		{"a correct Domain", specProviderServices, "POST", "/tim-provider-services/federation", domain, 200, "application/json", domain, ""},
		{"a Domain without telematikID", specProviderServices, "POST", "/tim-provider-services/federation", domain, 200, "application/json", `{"domain":"hs1.tim.test","isInsurance":false}`, `property "telematikID" is missing`},
		{"a Domain with timAnbieter null", specProviderServices, "POST", "/tim-provider-services/federation", domain, 200, "application/json", `{"domain":"hs1.tim.test","telematikID":"1-SMC-B-1","isInsurance":false,"timAnbieter":null}`, "Value is not nullable"},
		{"a Domain with a numeric IK", specProviderServices, "POST", "/tim-provider-services/federation", domain, 200, "application/json", `{"domain":"k.tim.test","telematikID":"5-1","isInsurance":true,"ik":[109500969]}`, `must be a string`},
		{"a correct federation list", specProviderServices, "GET", "/tim-provider-services/FederationList/federationList.jws", "", 200, "application/octet-stream", "eyJhbGciOiJCUDI1NlIxIn0.e30.c2ln", ""},
		{"a federation list as application/json", specProviderServices, "GET", "/tim-provider-services/FederationList/federationList.jws", "", 200, "application/json", `"eyJhbGciOiJCUDI1NlIxIn0.e30.c2ln"`, "header Content-Type has unexpected value"},
		{"a federation list status the spec does not know", specProviderServices, "GET", "/tim-provider-services/FederationList/federationList.jws", "", 418, "application/json", `{}`, "status is not supported"},
		{"a whereIs answer outside the enum", specProviderServices, "GET", "/tim-provider-services/localization?mxid=matrix:u/a:b", "", 200, "application/json", `"somewhere"`, "value is not one of the allowed values"},
		{"getInfo without version", specProviderServices, "GET", "/tim-provider-services/", "", 200, "application/json", `{"title":"x"}`, `property "version" is missing`},
		{"an Error with a numeric message", specProviderServices, "GET", "/tim-provider-services/federation", "", 404, "application/json", `{"message":404}`, "must be a string"},
		{"a search token of type bearer", specTimAuthenticate, "GET", "/tim-authenticate?mxId=hs1.tim.test", "", 200, "application/json", `{"access_token":"x","token_type":"bearer","expires_in":86400}`, "value is not one of the allowed values"},
		{"a provider token with a string expiry", specProviderAuth, "GET", "/ti-provider-authenticate", "", 200, "application/json", `{"access_token":"x","token_type":"Bearer","expires_in":"86400"}`, "must be an integer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = http.NoBody
			if tc.reqBody != "" {
				body = strings.NewReader(tc.reqBody)
			}
			req, err := http.NewRequest(tc.method, base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer test")
			req.Header.Set("X-Matrix-OpenID-Token", "test")
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			reqErr, respErr := validateExchange(t, routersBySpec[tc.spec], req, tc.status, http.Header{"Content-Type": {tc.contentType}}, []byte(tc.body))
			if reqErr != nil {
				t.Fatalf("request: %v", reqErr)
			}
			switch {
			case tc.wantErr == "" && respErr != nil:
				t.Errorf("a correct response was refused: %v", respErr)
			case tc.wantErr != "" && respErr == nil:
				t.Errorf("a wrong response validated")
			case tc.wantErr != "" && !strings.Contains(respErr.Error(), tc.wantErr):
				t.Errorf("refused for another reason: %v, want %q", respErr, tc.wantErr)
			}
		})
	}
}
