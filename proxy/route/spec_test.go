package route

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var paramRE = regexp.MustCompile(`\{[^}]*\}`)

// shape reduces a pattern to its method-independent form: parameters lose their names, r0 becomes v3.
func shape(method, pattern string) string {
	p := paramRE.ReplaceAllString(pattern, "{}")
	p = strings.Replace(p, "/_matrix/client/r0/", "/_matrix/client/v3/", 1)
	p = strings.Replace(p, "/_matrix/media/r0/", "/_matrix/media/v3/", 1)
	return method + " " + p
}

// beyondSpec are the forwarded operations that Matrix v1.11 does not have, each with its reason.
var beyondSpec = map[string]string{
	"PUT /_matrix/client/v3/createRoom/{}":                                            "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/join/{}/{}":                                               "Synapse's transaction twin; same route ID, same checks",
	"POST /_matrix/client/v3/rooms/{}/send/{}":                                        "Synapse's transaction twin; same route ID, same checks",
	"POST /_matrix/client/v3/rooms/{}/redact/{}":                                      "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/rooms/{}/invite/{}":                                       "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/rooms/{}/join/{}":                                         "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/rooms/{}/leave/{}":                                        "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/rooms/{}/forget/{}":                                       "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/rooms/{}/kick/{}":                                         "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/rooms/{}/ban/{}":                                          "Synapse's transaction twin; same route ID, same checks",
	"PUT /_matrix/client/v3/rooms/{}/unban/{}":                                        "Synapse's transaction twin; same route ID, same checks",
	"GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device":            "A_26574/A_26575 dehydrated devices",
	"PUT /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device":            "A_26574/A_26575 dehydrated devices",
	"DELETE /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device":         "A_26574/A_26575 dehydrated devices",
	"GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{}/events":  "A_26574/A_26575 dehydrated devices",
	"POST /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{}/events": "A_26574/A_26575 dehydrated devices",
	"GET /_matrix/client/v3/pushrules/global/":                                        "later spec versions; read by SDKs",
	"GET /_synapse/admin/v1/server_version":                                           "test 00.01.06",
	"GET /_synapse/client/pick_idp":                                                   "Synapse SSO page",
	"GET /_synapse/client/pick_username/account_details":                              "Synapse SSO page",
	"POST /_synapse/client/pick_username/account_details":                             "Synapse SSO page",
	"GET /_synapse/client/pick_username/check":                                        "Synapse SSO page",
	"GET /_synapse/client/new_user_consent":                                           "Synapse SSO page",
	"POST /_synapse/client/new_user_consent":                                          "Synapse SSO page",
	"GET /_synapse/client/sso_register":                                               "Synapse SSO page",
	"GET /_synapse/client/oidc/callback":                                              "Synapse SSO page",
	"POST /_synapse/client/oidc/callback":                                             "Synapse SSO page",
	"POST /_synapse/client/oidc/backchannel_logout":                                   "Synapse SSO page",
	"GET /_matrix/key/v2/server/{}":                                                   "A_26224/A_26244, inbound only",
	"GET /_matrix/key/v2/query/{}/{}":                                                 "A_26224/A_26244, inbound only",
	"POST /_matrix/federation/v1/3pid/onbind":                                         "what Synapse implements; blocked anyway",
}

// TestTablesCoverMatrixV111 compares the tables with the operations of the Matrix v1.11 OpenAPI files: every
// spec operation is routed, and every routed operation is in the spec or in beyondSpec.
func TestTablesCoverMatrixV111(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("testdata", "matrix-v1.11-endpoints.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		method, path, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		spec[shape(method, path)] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(spec) < 180 {
		t.Fatalf("only %d spec operations read", len(spec))
	}

	ours := map[string]bool{}
	for _, tab := range []*Table{ClientTable(), FederationTable()} {
		for _, r := range tab.Routes() {
			for _, m := range r.Methods {
				ours[shape(m, r.Pattern)] = true
			}
		}
	}
	var missing, extra []string
	for op := range spec {
		if !ours[op] {
			missing = append(missing, op)
		}
	}
	for op := range ours {
		if !spec[op] && beyondSpec[op] == "" {
			extra = append(extra, op)
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("Matrix v1.11 operations not routed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string(nil), extra); diff != "" {
		t.Errorf("routed operations neither in Matrix v1.11 nor in beyondSpec (-want +got):\n%s", diff)
	}
	for op := range beyondSpec {
		if !ours[op] {
			t.Errorf("beyondSpec lists %q, which is not routed", op)
		}
	}
}
