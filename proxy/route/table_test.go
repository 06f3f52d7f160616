package route

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/routes.golden")

func lookup(t *testing.T, tab *Table, method, target string) (Match, error) {
	t.Helper()
	tgt, err := CheckTarget(method, target)
	if err != nil {
		t.Fatalf("CheckTarget(%q): %v", target, err)
	}
	return tab.Lookup(method, tgt)
}

func TestTablesBuild(t *testing.T) {
	t.Parallel()
	for name, routes := range map[string][]Route{"client": clientRoutes(), "federation": federationRoutes()} {
		if _, err := NewTable(routes); err != nil {
			t.Errorf("%s table: %v", name, err)
		}
	}
}

func TestClientLookupFindsRoutesWithDecodedParams(t *testing.T) {
	t.Parallel()
	tab := ClientTable()
	cases := []struct {
		name   string
		method string
		target string
		id     string
		params map[string]string
	}{
		{"createRoom is found under v3", "POST", "/_matrix/client/v3/createRoom", "client.createRoom", map[string]string{}},
		{"createRoom is found under r0", "POST", "/_matrix/client/r0/createRoom", "client.createRoom", map[string]string{}},
		{"an invite carries the decoded room ID", "POST", "/_matrix/client/v3/rooms/%21abc%3Ahs1.tim.test/invite",
			"client.rooms.invite", map[string]string{"roomId": "!abc:hs1.tim.test"}},
		{"a join by room ID is client.rooms.join", "POST", "/_matrix/client/v3/rooms/!abc:hs1.tim.test/join",
			"client.rooms.join", map[string]string{"roomId": "!abc:hs1.tim.test"}},
		{"a join by alias is client.join", "POST", "/_matrix/client/v3/join/%23team%3Ahs1.tim.test",
			"client.join", map[string]string{"roomIdOrAlias": "#team:hs1.tim.test"}},
		{"a knock is client.knock", "POST", "/_matrix/client/v3/knock/%21abc%3Ahs1.tim.test",
			"client.knock", map[string]string{"roomIdOrAlias": "!abc:hs1.tim.test"}},
		{"leave, kick, ban and unban have their own IDs", "POST", "/_matrix/client/v3/rooms/!r:hs1/unban",
			"client.rooms.unban", map[string]string{"roomId": "!r:hs1"}},
		{"a message send carries type and transaction", "PUT", "/_matrix/client/v3/rooms/%21abc%3Ahs1.tim.test/send/m.room.message/m1700000000.1",
			"client.rooms.send", map[string]string{"roomId": "!abc:hs1.tim.test", "eventType": "m.room.message", "txnId": "m1700000000.1"}},
		{"a redaction carries event and transaction", "PUT", "/_matrix/client/v3/rooms/!r:hs1/redact/%24xyz/t1",
			"client.rooms.redact", map[string]string{"roomId": "!r:hs1", "eventId": "$xyz", "txnId": "t1"}},
		{"state with an empty key and trailing slash", "PUT", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.join_rules/",
			"client.rooms.state", map[string]string{"roomId": "!r:hs1", "eventType": "m.room.join_rules", "stateKey": ""}},
		{"state with an empty key and no trailing slash", "PUT", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.history_visibility",
			"client.rooms.state", map[string]string{"roomId": "!r:hs1", "eventType": "m.room.history_visibility", "stateKey": ""}},
		{"state with a user ID as key", "GET", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.member/%40alice%3Ahs1.tim.test",
			"client.rooms.state", map[string]string{"roomId": "!r:hs1", "eventType": "m.room.member", "stateKey": "@alice:hs1.tim.test"}},
		{"the full room state is its own route", "GET", "/_matrix/client/v3/rooms/!r:hs1/state",
			"client.rooms.state.all", map[string]string{"roomId": "!r:hs1"}},
		{"HEAD is looked up as GET", "HEAD", "/_matrix/client/v3/rooms/!r:hs1/state", "client.rooms.state.all", map[string]string{"roomId": "!r:hs1"}},
		{"presence status carries the user", "PUT", "/_matrix/client/v3/presence/%40alice%3Ahs1.tim.test/status",
			"client.presence.status", map[string]string{"userId": "@alice:hs1.tim.test"}},
		{"a profile read", "GET", "/_matrix/client/v3/profile/%40alice%3Ahs1.tim.test", "client.profile",
			map[string]string{"userId": "@alice:hs1.tim.test"}},
		{"a display name write", "PUT", "/_matrix/client/r0/profile/@alice:hs1/displayname", "client.profile.displayname",
			map[string]string{"userId": "@alice:hs1"}},
		{"the permission config is global account data", "GET",
			"/_matrix/client/v3/user/%40alice%3Ahs1.tim.test/account_data/de.gematik.tim.account.permissionconfig.pro.v1",
			"client.account_data.global", map[string]string{"userId": "@alice:hs1.tim.test", "type": "de.gematik.tim.account.permissionconfig.pro.v1"}},
		{"room account data is separate", "PUT", "/_matrix/client/v3/user/@a:hs1/rooms/!r:hs1/account_data/m.fully_read",
			"client.account_data.room", map[string]string{"userId": "@a:hs1", "roomId": "!r:hs1", "type": "m.fully_read"}},
		{"public rooms by POST", "POST", "/_matrix/client/v3/publicRooms", "client.publicRooms", map[string]string{}},
		{"user directory search", "POST", "/_matrix/client/v3/user_directory/search", "client.user_directory.search", map[string]string{}},
		{"registration", "POST", "/_matrix/client/v3/register?kind=guest", "client.register", map[string]string{}},
		{"push rule IDs may start with a dot", "PUT", "/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled",
			"client.pushrules.rule.enabled", map[string]string{"scope": "global", "kind": "override", "ruleId": ".m.rule.master"}},
		{"the push rule list needs its trailing slash", "GET", "/_matrix/client/v3/pushrules/", "client.pushrules", map[string]string{}},
		{"the global push rules", "GET", "/_matrix/client/v3/pushrules/global/", "client.pushrules.global", map[string]string{}},
		{"a push rule in a scope literally called global", "GET", "/_matrix/client/v3/pushrules/global/content/x",
			"client.pushrules.rule", map[string]string{"scope": "global", "kind": "content", "ruleId": "x"}},
		{"relations with a relation type", "GET", "/_matrix/client/v1/rooms/!r:hs1/relations/$e/m.annotation",
			"client.rooms.relations", map[string]string{"roomId": "!r:hs1", "eventId": "$e", "relType": "m.annotation"}},
		{"authenticated media download", "GET", "/_matrix/client/v1/media/download/hs2.tim.test/AbCdEf",
			"client.media.download", map[string]string{"serverName": "hs2.tim.test", "mediaId": "AbCdEf"}},
		{"authenticated media download with a file name", "GET", "/_matrix/client/v1/media/download/hs2.tim.test/AbCdEf/Befund%20(1).pdf",
			"client.media.download", map[string]string{"serverName": "hs2.tim.test", "mediaId": "AbCdEf", "fileName": "Befund (1).pdf"}},
		{"legacy media download under r0", "GET", "/_matrix/media/r0/download/hs2.tim.test/AbCdEf",
			"media.download", map[string]string{"serverName": "hs2.tim.test", "mediaId": "AbCdEf"}},
		{"legacy media thumbnail under v3", "GET", "/_matrix/media/v3/thumbnail/hs1/m1?width=64&height=64",
			"media.thumbnail", map[string]string{"serverName": "hs1", "mediaId": "m1"}},
		{"the dehydrated device", "PUT", "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device",
			"client.dehydrated_device", map[string]string{}},
		{"dehydrated device events", "POST", "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/DEV1/events",
			"client.dehydrated_device.events", map[string]string{"deviceId": "DEV1"}},
		{"a key backup session", "PUT", "/_matrix/client/v3/room_keys/keys/!r:hs1/sess1?version=1",
			"client.room_keys.keys.session", map[string]string{"roomId": "!r:hs1", "sessionId": "sess1"}},
		{"a key backup version", "DELETE", "/_matrix/client/v3/room_keys/version/3", "client.room_keys.version.version",
			map[string]string{"version": "3"}},
		{"login/get_token is listed so it can be refused", "POST", "/_matrix/client/v1/login/get_token", "client.login.get_token", map[string]string{}},
		{"an SSO redirect to one identity provider", "GET", "/_matrix/client/v3/login/sso/redirect/oidc-gematik?redirectUrl=https%3A%2F%2Fapp",
			"client.login.sso.redirect", map[string]string{"idpId": "oidc-gematik"}},
		{"the OIDC callback page", "GET", "/_synapse/client/oidc/callback?code=x&state=y", "synapse.client.oidc.callback", map[string]string{}},
		{"the server version for the test suite", "GET", "/_synapse/admin/v1/server_version", "synapse.admin.server_version", map[string]string{}},
		{"the support well-known", "GET", "/.well-known/matrix/support", "wellknown.support", map[string]string{}},
		{"the versions endpoint", "GET", "/_matrix/client/versions", "client.versions", map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := lookup(t, tab, tc.method, tc.target)
			if err != nil {
				t.Fatalf("Lookup(%s %s): %v", tc.method, tc.target, err)
			}
			if m.Route.ID != tc.id {
				t.Errorf("route %q (%s); want %q", m.Route.ID, m.Route.Pattern, tc.id)
			}
			if diff := cmp.Diff(tc.params, m.Params); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFederationLookupFindsRoutes(t *testing.T) {
	t.Parallel()
	tab := FederationTable()
	cases := []struct {
		name   string
		method string
		target string
		id     string
		params map[string]string
		flags  Flags
	}{
		{"an inbound v2 invite", "PUT", "/_matrix/federation/v2/invite/%21abc%3Ahs2.tim.test/%24ev1",
			"federation.invite.v2", map[string]string{"roomId": "!abc:hs2.tim.test", "eventId": "$ev1"}, NeedsAuth},
		{"an inbound v1 invite has its own ID", "PUT", "/_matrix/federation/v1/invite/!abc:hs2/$ev1",
			"federation.invite.v1", map[string]string{"roomId": "!abc:hs2", "eventId": "$ev1"}, NeedsAuth},
		{"a transaction", "PUT", "/_matrix/federation/v1/send/1700000000000", "federation.send", map[string]string{"txnId": "1700000000000"}, NeedsAuth},
		{"make_join carries the user", "GET", "/_matrix/federation/v1/make_join/!r:hs1/%40bob%3Ahs2?ver=10",
			"federation.make_join", map[string]string{"roomId": "!r:hs1", "userId": "@bob:hs2"}, NeedsAuth},
		{"the literal directory query wins over the generic one", "GET", "/_matrix/federation/v1/query/directory?room_alias=%23a%3Ahs1",
			"federation.query.directory", map[string]string{}, NeedsAuth},
		{"another query type is the generic query", "GET", "/_matrix/federation/v1/query/m.custom",
			"federation.query", map[string]string{"queryType": "m.custom"}, NeedsAuth},
		{"public rooms are listed but blocked", "GET", "/_matrix/federation/v1/publicRooms", "federation.publicRooms", map[string]string{}, NeedsAuth | Blocked},
		{"openid userinfo stays unauthenticated", "GET", "/_matrix/federation/v1/openid/userinfo?access_token=x",
			"federation.openid.userinfo", map[string]string{}, Unauthenticated},
		{"version needs X-Matrix (A_26331)", "GET", "/_matrix/federation/v1/version", "federation.version", map[string]string{}, NeedsAuth},
		{"federation media streams", "GET", "/_matrix/federation/v1/media/download/AbC", "federation.media.download",
			map[string]string{"mediaId": "AbC"}, NeedsAuth | Streams},
		{"the key server", "GET", "/_matrix/key/v2/server", "key.server", map[string]string{}, Unauthenticated},
		{"a key by ID is inbound only", "GET", "/_matrix/key/v2/server/ed25519:a_bc", "key.server.keyId",
			map[string]string{"keyId": "ed25519:a_bc"}, Unauthenticated | InboundOnly},
		{"a notary query for one server", "GET", "/_matrix/key/v2/query/hs2.tim.test", "key.query.server",
			map[string]string{"serverName": "hs2.tim.test"}, Unauthenticated},
		{"a notary query for one key is inbound only", "GET", "/_matrix/key/v2/query/hs2.tim.test/ed25519:x", "key.query.server.keyId",
			map[string]string{"serverName": "hs2.tim.test", "keyId": "ed25519:x"}, Unauthenticated | InboundOnly},
		{"the server well-known", "GET", "/.well-known/matrix/server", "wellknown.server", map[string]string{}, Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := lookup(t, tab, tc.method, tc.target)
			if err != nil {
				t.Fatalf("Lookup(%s %s): %v", tc.method, tc.target, err)
			}
			if m.Route.ID != tc.id {
				t.Errorf("route %q (%s); want %q", m.Route.ID, m.Route.Pattern, tc.id)
			}
			if diff := cmp.Diff(tc.params, m.Params); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
			if !m.Route.Flags.Has(tc.flags) {
				t.Errorf("flags %v; want at least %v", m.Route.Flags, tc.flags)
			}
		})
	}
}

// exampleParam gives a realistic raw value for a pattern parameter and its decoded form.
func exampleParam(name string) (raw, decoded string) {
	switch name {
	case "roomId":
		return "%21abc%3Ahs1.tim.test", "!abc:hs1.tim.test"
	case "userId":
		return "%40alice%3Ahs1.tim.test", "@alice:hs1.tim.test"
	case "eventId":
		return "$xyz", "$xyz"
	case "roomIdOrAlias", "roomAlias":
		return "%23team%3Ahs1.tim.test", "#team:hs1.tim.test"
	case "serverName":
		return "hs2.tim.test", "hs2.tim.test"
	case "idpId":
		return "oidc-gematik", "oidc-gematik" // Synapse allows only [A-Za-z0-9_.~-] here
	case "keyId":
		return "ed25519:abc", "ed25519:abc"
	default:
		return "x-" + name + "%20y", "x-" + name + " y"
	}
}

// TestEveryRouteMatchesAnExamplePath instantiates every pattern with realistic values and checks that each
// allowed method finds that very route with the decoded parameters.
func TestEveryRouteMatchesAnExamplePath(t *testing.T) {
	t.Parallel()
	for name, tab := range map[string]*Table{"client": ClientTable(), "federation": FederationTable()} {
		for _, r := range tab.Routes() {
			segs := strings.Split(r.Pattern, "/")
			want := map[string]string{}
			for i, s := range segs {
				if p, ok := strings.CutPrefix(s, "{"); ok {
					p = strings.TrimSuffix(strings.TrimSuffix(p, "}"), "?")
					segs[i], want[p] = exampleParam(p)
				}
			}
			target := strings.Join(segs, "/")
			for _, method := range append(slices.Clone(r.Methods), "HEAD") {
				if method == "HEAD" && !slices.Contains(r.Methods, "GET") {
					continue
				}
				t.Run(fmt.Sprintf("%s %s %s", name, method, r.Pattern), func(t *testing.T) {
					m, err := lookup(t, tab, method, target)
					if err != nil {
						t.Fatalf("Lookup(%s %s): %v", method, target, err)
					}
					if m.Route != r {
						t.Fatalf("found %s %s; want %s %s", m.Route.ID, m.Route.Pattern, r.ID, r.Pattern)
					}
					if diff := cmp.Diff(want, m.Params); diff != "" {
						t.Errorf("params (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

func TestWrongMethodIsMethodNotAllowed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tab     *Table
		method  string
		target  string
		allowed []string
	}{
		{"GET on createRoom is 405", ClientTable(), "GET", "/_matrix/client/v3/createRoom", []string{"POST"}},
		{"DELETE on the support well-known is 405 (test 10X.01.10)", ClientTable(), "DELETE", "/.well-known/matrix/support", []string{"GET", "HEAD"}},
		{"POST on a state event is 405", ClientTable(), "POST", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.name/", []string{"GET", "HEAD", "PUT"}},
		{"PUT on invite is 405", ClientTable(), "PUT", "/_matrix/client/v3/rooms/!r:hs1/invite", []string{"POST"}},
		{"POST on the server version is 405", ClientTable(), "POST", "/_synapse/admin/v1/server_version", []string{"GET", "HEAD"}},
		{"the alias directory lists methods of both its routes", ClientTable(), "POST", "/_matrix/client/v3/directory/room/%23a%3Ahs1",
			[]string{"DELETE", "GET", "HEAD", "PUT"}},
		{"a lower-case method is not a method", ClientTable(), "get", "/_matrix/client/versions", []string{"GET", "HEAD"}},
		{"OPTIONS is not routed", ClientTable(), "OPTIONS", "/_matrix/client/versions", []string{"GET", "HEAD"}},
		{"GET on a federation send is 405", FederationTable(), "GET", "/_matrix/federation/v1/send/t1", []string{"PUT"}},
		{"POST on the directory query is 405, not the generic query", FederationTable(), "POST", "/_matrix/federation/v1/query/directory", []string{"GET", "HEAD"}},
		{"PUT on the key server is 405", FederationTable(), "PUT", "/_matrix/key/v2/server", []string{"GET", "HEAD"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := lookup(t, tc.tab, tc.method, tc.target)
			if !errors.Is(err, ErrMethodNotAllowed) {
				t.Fatalf("Lookup = %v; want ErrMethodNotAllowed", err)
			}
			var me *MethodError
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *MethodError", err)
			}
			if diff := cmp.Diff(tc.allowed, me.Allowed); diff != "" {
				t.Errorf("allowed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNearMissPathsAreUnknown(t *testing.T) {
	t.Parallel()
	client := []string{
		"/_matrix/client/v3/createRoom/",               // trailing slash not in the spec
		"/_matrix/client/v3/createroom",                // case
		"/_matrix/client/v3/createRo%6Fm",              // literal segments match raw, as in Synapse's regexes
		"/_matrix/client/V3/createRoom",                // version case
		"/_matrix/client/v4/createRoom",                // unknown version
		"/_matrix/client/unstable/createRoom",          // unstable prefix for a stable endpoint
		"/_matrix/client/api/v1/createRoom",            // ancient prefix Synapse still serves
		"/_matrix/client/v1/createRoom",                // v3 endpoint under v1
		"/_matrix/client/r0/rooms/!r:hs1/relations/$e", // v1 endpoint under r0
		"/_matrix/client/v3/rooms/!r:hs1/send/m.room.message/t1/extra",
		"/_matrix/client/v3/rooms/!r:hs1/state/m.room.member/@a:hs1/extra",
		"/_matrix/client/v3/rooms/!r:hs1",
		"/_matrix/client/v3/rooms/!r:hs1/",
		"/_matrix/client/v3/rooms/",
		"/_matrix/client/v3/rooms/!r:hs1/invite/",
		"/_matrix/client/v3/sync/",
		"/_matrix/client/v3/pushrules",           // the list needs its trailing slash, as in Synapse
		"/_matrix/client/v3/profile/",            // empty user ID
		"/_matrix/client/v3/rooms/!r:hs1/report", // v1.13
		"/_matrix/client/v1/room_summary/!r:hs1", // newer than v1.11
		"/_matrix/client/v3/tokenrefresh",
		"/_matrix/client/versions/",
		"/_matrix/client",
		"/_matrix",
		"/",
		"/_synapse/admin/v1/users/@a:hs1", // the admin API stays closed
		"/_synapse/admin/v2/users/@a:hs1",
		"/_synapse/admin/v1/server_version/x",
		"/_synapse/client/pick_username",
		"/_matrix/media/v3/create",          // Synapse serves create under v1 only
		"/_matrix/media/v1/download/hs1/m1", // legacy v1 media prefix
		"/_matrix/media/v3/download/hs1",
		"/_matrix/media/v3/download/hs1/m1/f/extra",
		"/_matrix/client/v1/media/upload",
		"/_matrix/federation/v1/version", // federation routes are not on the client listener
		"/_matrix/key/v2/server",
		"/.well-known/matrix/server",
		"/.well-known/matrix",
		"/.well-known/matrix/client/",
		"/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/",
		"/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
		"/_matrix/client/v3/keys/device_signing/upload/x",
	}
	federation := []string{
		"/_matrix/federation/v1/send/t1/", // Synapse tolerates the trailing slash; the spec does not have it
		"/_matrix/federation/v1/send/",
		"/_matrix/federation/v1/send",
		"/_matrix/federation/v2/send/t1",
		"/_matrix/federation/v3/invite/!r:hs1/$e",
		"/_matrix/federation/v2/make_join/!r:hs1/@u:hs2",
		"/_matrix/federation/v1/invite/!r:hs1",
		"/_matrix/federation/v1/query",
		"/_matrix/federation/v1/query/directory/x",
		"/_matrix/federation/v1/media/download/m1/name",
		"/_matrix/federation/unstable/rooms/!r:hs1/complexity",
		"/_matrix/key/v2/query/hs1/k1/extra",
		"/_matrix/key/v1/server",
		"/_matrix/client/v3/sync",
		"/_matrix/client/versions",
		"/.well-known/matrix/client",
	}
	for name, c := range map[string]struct {
		tab   *Table
		paths []string
	}{"client": {ClientTable(), client}, "federation": {FederationTable(), federation}} {
		for _, p := range c.paths {
			for _, method := range []string{"GET", "PUT", "POST"} {
				t.Run(name+" "+method+" "+p, func(t *testing.T) {
					m, err := lookup(t, c.tab, method, p)
					if !errors.Is(err, ErrUnknownEndpoint) {
						t.Fatalf("Lookup = %+v, %v; want ErrUnknownEndpoint", m.Route, err)
					}
				})
			}
		}
	}
}

func TestRouteFlagsAreConsistent(t *testing.T) {
	t.Parallel()
	wantBlocked := map[string]bool{
		"client.login.get_token": true, "client.media.preview_url": true, "media.preview_url": true,
		"media.config": true, "federation.publicRooms": true, "federation.3pid.onbind": true,
	}
	gotBlocked := map[string]bool{}
	ids := map[string]Surface{}
	for _, tab := range []*Table{ClientTable(), FederationTable()} {
		for _, r := range tab.Routes() {
			if r.Flags.Has(NeedsAuth) == r.Flags.Has(Unauthenticated) {
				t.Errorf("%s %s: needs exactly one of NeedsAuth and Unauthenticated, has %v", r.ID, r.Pattern, r.Flags)
			}
			if r.Flags.Has(Blocked) {
				gotBlocked[r.ID] = true
			}
			if r.Flags.Has(Streams) && r.Surface != Media && r.Surface != Federation {
				t.Errorf("%s streams but is on surface %v", r.ID, r.Surface)
			}
			if r.Flags.Has(InboundOnly) && r.Surface != Key {
				t.Errorf("%s is inbound-only outside the key API", r.ID)
			}
			if s, ok := ids[r.ID]; ok && s != r.Surface {
				t.Errorf("%s appears on surfaces %v and %v", r.ID, s, r.Surface)
			}
			ids[r.ID] = r.Surface
			if strings.Contains(r.Pattern, "/media/") && (r.Surface != Media && r.Surface != Federation) {
				t.Errorf("%s %s is media but on surface %v", r.ID, r.Pattern, r.Surface)
			}
		}
	}
	if diff := cmp.Diff(wantBlocked, gotBlocked); diff != "" {
		t.Errorf("blocked routes (-want +got):\n%s", diff)
	}
}

func TestNewTableRejectsInconsistentRoutes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		routes []Route
	}{
		{"a route without an auth flag is rejected", []Route{{ID: "a", Surface: Client, Methods: get, Pattern: "/a"}}},
		{"a route with both auth flags is rejected", []Route{{ID: "a", Surface: Client, Methods: get, Pattern: "/a", Flags: NeedsAuth | Unauthenticated}}},
		{"two routes claiming the same method and path are rejected", []Route{
			{ID: "a", Surface: Client, Methods: get, Pattern: "/a/{x}", Flags: NeedsAuth},
			{ID: "b", Surface: Client, Methods: get, Pattern: "/a/{x}", Flags: NeedsAuth}}},
		{"differently named parameters at one position are rejected", []Route{
			{ID: "a", Surface: Client, Methods: get, Pattern: "/a/{x}", Flags: NeedsAuth},
			{ID: "b", Surface: Client, Methods: post, Pattern: "/a/{y}/b", Flags: NeedsAuth}}},
		{"an optional parameter before the end is rejected", []Route{{ID: "a", Surface: Client, Methods: get, Pattern: "/a/{x?}/b", Flags: NeedsAuth}}},
		{"an explicit HEAD is rejected", []Route{{ID: "a", Surface: Client, Methods: []string{"HEAD"}, Pattern: "/a", Flags: NeedsAuth}}},
		{"a double slash in a pattern is rejected", []Route{{ID: "a", Surface: Client, Methods: get, Pattern: "/a//b", Flags: NeedsAuth}}},
		{"a route without methods is rejected", []Route{{ID: "a", Surface: Client, Pattern: "/a", Flags: NeedsAuth}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewTable(tc.routes); err == nil {
				t.Fatal("NewTable accepted inconsistent routes")
			}
		})
	}
}

// TestLookupRechecksHandBuiltTargets pins that a Target not made by CheckTarget cannot smuggle a path past
// the ambiguity checks.
func TestLookupRechecksHandBuiltTargets(t *testing.T) {
	t.Parallel()
	tab := ClientTable()
	bad := Target{Path: "/_matrix/client/v3/rooms/../createRoom", Segments: []string{"_matrix", "client", "v3", "createRoom"}}
	if _, err := tab.Lookup("POST", bad); !errors.Is(err, ErrUnknownEndpoint) {
		t.Errorf("Lookup(hand-built dot-segment target) = %v; want ErrUnknownEndpoint", err)
	}
	good := Target{Path: "/_matrix/client/v3/createRoom", Segments: []string{"_matrix", "client", "v3", "createRoom"}}
	if m, err := tab.Lookup("POST", good); err != nil || m.Route.ID != "client.createRoom" {
		t.Errorf("Lookup(hand-built createRoom) = %+v, %v; want client.createRoom", m, err)
	}
}

// TestRoutesGolden pins the allow-list; any change shows up in review as a diff of testdata/routes.golden.
// Rewrite with: go test ./proxy/route -run TestRoutesGolden -update
func TestRoutesGolden(t *testing.T) {
	var b strings.Builder
	for _, part := range []struct {
		name string
		tab  *Table
	}{{"client", ClientTable()}, {"federation", FederationTable()}} {
		fmt.Fprintf(&b, "# %s table\n", part.name)
		for _, r := range part.tab.Routes() {
			fmt.Fprintf(&b, "%-45s %-10s %-16s %-75s %s\n", r.ID, r.Surface, strings.Join(r.Methods, ","), r.Pattern, r.Flags)
		}
	}
	got := b.String()
	path := filepath.Join("testdata", "routes.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("route tables differ from %s (-want +got):\n%s", path, diff)
	}
}

// FuzzLookup checks that Lookup never panics, that a match's route really has the pattern's shape and
// allows the method, and that parameters are the decoded segments.
func FuzzLookup(f *testing.F) {
	for _, s := range []struct{ m, p string }{
		{"POST", "/_matrix/client/v3/createRoom"},
		{"PUT", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.name/"},
		{"PUT", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.name"},
		{"GET", "/_matrix/client/v3/pushrules/global/"},
		{"GET", "/_matrix/federation/v1/query/directory"},
		{"GET", "/_matrix/key/v2/query/hs1/k"},
		{"HEAD", "/_matrix/media/v3/download/hs1/m/f"},
		{"DELETE", "/.well-known/matrix/support"},
	} {
		f.Add(s.m, s.p)
	}
	client, federation := ClientTable(), FederationTable()
	f.Fuzz(func(t *testing.T, method, target string) {
		tgt, err := CheckTarget(method, target)
		if err != nil {
			return
		}
		for _, tab := range []*Table{client, federation} {
			m, err := tab.Lookup(method, tgt)
			if err != nil {
				var me *MethodError
				if !errors.Is(err, ErrUnknownEndpoint) && !(errors.As(err, &me) && len(me.Allowed) > 0) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			want := method
			if want == "HEAD" {
				want = "GET"
			}
			if !slices.Contains(m.Route.Methods, want) {
				t.Fatalf("%s matched %s which allows %v", method, m.Route.ID, m.Route.Methods)
			}
			pat := strings.Split(m.Route.Pattern[1:], "/")
			if len(pat) != len(tgt.Segments) && !(len(pat) == len(tgt.Segments)+1 && strings.HasSuffix(m.Route.Pattern, "?}")) {
				t.Fatalf("%q matched %s", tgt.Path, m.Route.Pattern)
			}
			for i, s := range pat {
				if i >= len(tgt.Segments) {
					break
				}
				if name, ok := strings.CutPrefix(s, "{"); ok {
					name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "?")
					if m.Params[name] != tgt.Segments[i] {
						t.Fatalf("param %s = %q; segment is %q", name, m.Params[name], tgt.Segments[i])
					}
				} else if tgt.raw[i] != s {
					t.Fatalf("literal %q matched raw segment %q", s, tgt.raw[i])
				}
			}
		}
	})
}

func BenchmarkLookup(b *testing.B) {
	tab := ClientTable()
	targets := []string{
		"/_matrix/client/v3/sync?since=s1&timeout=30000",
		"/_matrix/client/v3/rooms/%21abc%3Ahs1.tim.test/send/m.room.message/m1700000000.1",
		"/_matrix/client/v3/rooms/%21abc%3Ahs1.tim.test/state/m.room.member/%40alice%3Ahs1.tim.test",
		"/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled",
		"/_matrix/client/v1/media/download/hs2.tim.test/AbCdEf",
	}
	tgts := make([]Target, len(targets))
	for i, s := range targets {
		tgt, err := CheckTarget("GET", s)
		if err != nil {
			b.Fatal(err)
		}
		tgts[i] = tgt
	}
	methods := []string{"GET", "PUT", "PUT", "PUT", "GET"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % len(tgts)
		if _, err := tab.Lookup(methods[k], tgts[k]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckTarget(b *testing.B) {
	target := "/_matrix/client/v3/rooms/%21abc%3Ahs1.tim.test/state/m.room.member/%40alice%3Ahs1.tim.test?x=1"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckTarget("PUT", target); err != nil {
			b.Fatal(err)
		}
	}
}
