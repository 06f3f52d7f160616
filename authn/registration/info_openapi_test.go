package registration

import (
	"context"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/timstack/timstack/directory"
)

// Every /tim-information exchange is validated against gematik's TiMessengerInformation.yaml: request,
// status (only documented ones) and body.
func TestTimInformationMatchesGematikOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("testdata/TiMessengerInformation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "pro")
	ctx := context.Background()
	orgAdminWithMXID(t, e)
	e.seedOrganization("kk-1", "5-SMC-B-Kasse", true)
	if _, err := e.dir.Federation().Add(ctx, "other", directory.Domain{Domain: "kasse.tim.test", TelematikID: "5-SMC-B-Kasse", IsInsurance: true, IK: []string{"109500969"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Keeper().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e.openid.users["tok"] = "@alice:hs1.tim.test"
	doc.Servers = openapi3.Servers{{URL: e.http.URL + "/tim-information"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	cases := []struct {
		name   string
		path   string
		token  string
		status int
	}{
		{"info", "/tim-information/", "tok", 200},
		{"findByIk found", "/tim-information/v1/server/findByIk?ikNumber=109500969", "tok", 200},
		{"findByIk not found", "/tim-information/v1/server/findByIk?ikNumber=101575519", "tok", 404},
		{"findByIk unauthorized", "/tim-information/v1/server/findByIk?ikNumber=109500969", "bad", 401},
		{"isInsurance", "/tim-information/v1/server/isInsurance?serverName=kasse.tim.test", "tok", 200},
		{"isInsurance unauthorized", "/tim-information/v1/server/isInsurance?serverName=kasse.tim.test", "bad", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, tc.token, "")
			if r.status != tc.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tc.status)
			}
			req, _ := http.NewRequest("GET", e.http.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Fatalf("request: %v", err)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.status, Header: r.header, Options: opts}
			out.SetBodyBytes(r.body)
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Fatalf("response: %v", err)
			}
		})
	}
}
