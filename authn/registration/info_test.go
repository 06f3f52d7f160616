package registration

import (
	"context"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory"
)

func TestTimInformationAnswersFromTheVerifiedList(t *testing.T) {
	e := newEnv(t, "pro")
	ctx := context.Background()
	orgAdminWithMXID(t, e) // hs1.tim.test is this Fachdienst's homeserver
	e.seedOrganization("kk-1", "5-SMC-B-Kasse", true)
	// An insurer's domain, registered by another provider.
	if _, err := e.dir.Federation().Add(ctx, "other-provider", directory.Domain{Domain: "kasse.tim.test", TelematikID: "5-SMC-B-Kasse", IsInsurance: true, IK: []string{"109500969"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Keeper().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e.openid.users["tok-alice"] = "@alice:hs1.tim.test"
	e.openid.users["tok-remote"] = "@bob:remote.tim.test"

	cases := []struct {
		name   string
		path   string
		token  string
		status int
		want   string
	}{
		{"the info object needs no lookup", "/tim-information/", "tok-alice", 200, `"version":"1.0.0"`},
		{"an IK resolves to its server", "/tim-information/v1/server/findByIk?ikNumber=109500969", "tok-alice", 200, `{"serverName":"kasse.tim.test"}`},
		{"an unknown IK is 404", "/tim-information/v1/server/findByIk?ikNumber=101575519", "tok-alice", 404, `"errorCode":"NOT_FOUND"`},
		{"a missing ikNumber is 400", "/tim-information/v1/server/findByIk", "tok-alice", 400, `"errorCode":"MISSING_PARAMETER"`},
		{"an insurance server is reported", "/tim-information/v1/server/isInsurance?serverName=kasse.tim.test", "tok-alice", 200, `{"isInsurance":true}`},
		{"a Pro server is not insurance", "/tim-information/v1/server/isInsurance?serverName=HS1.tim.test", "tok-alice", 200, `{"isInsurance":false}`},
		{"an unlisted server is not insurance", "/tim-information/v1/server/isInsurance?serverName=nowhere.test", "tok-alice", 200, `{"isInsurance":false}`},
		{"a missing serverName is 400", "/tim-information/v1/server/isInsurance", "tok-alice", 400, `"errorCode"`},
		{"no token is 401", "/tim-information/v1/server/isInsurance?serverName=kasse.tim.test", "", 401, `"errorCode"`},
		{"an unknown token is 401", "/tim-information/v1/server/isInsurance?serverName=kasse.tim.test", "nope", 401, `"errorCode"`},
		{"a token of a homeserver we do not serve is 401", "/tim-information/v1/server/isInsurance?serverName=kasse.tim.test", "tok-remote", 401, `"errorCode"`},
	}
	for _, tc := range cases {
		r := e.do("GET", tc.path, tc.token, "")
		if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.want)
		}
	}
	for _, c := range e.openid.calls {
		if c != "hs1.tim.test" {
			t.Fatalf("asked %s: only served homeservers may be asked", c)
		}
	}
}
