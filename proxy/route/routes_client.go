package route

import "strings"

// The client-server allow-list: Matrix v1.11 (spec tag v1.11, data/api/client-server), under every version
// prefix a stock Synapse still serves for it, plus what TI-Messenger needs beyond the spec. Deliberately not
// listed, so they answer 404:
//   - the unstable prefix for stable endpoints and /_matrix/client/api/v1 (Synapse still serves both);
//   - Synapse's transaction variants that the spec lacks (PUT /createRoom/{txnId}, PUT /join/{id}/{txnId},
//     PUT /rooms/{id}/invite/{txnId}, POST /rooms/{id}/send/{type}, POST /rooms/{id}/redact/{eventId}, …):
//     each would be a second door around the checks on the spec'd endpoint;
//   - endpoints newer than v1.11 (room_summary, /rooms/{id}/report without an event, /users/{id}/report,
//     auth_metadata, mutual_rooms, …) and the removed ones (/tokenrefresh, /password_policy, …).

// Version prefix sets.
var (
	r0v3 = []string{"r0", "v3"} // v3 endpoints that Synapse also serves under r0
	v3   = []string{"v3"}       // v3 endpoints without an r0 alias in Synapse
	v1   = []string{"v1"}       // endpoints introduced under /v1
)

const (
	authn  = NeedsAuth
	public = Unauthenticated
)

var (
	get    = []string{"GET"}
	post   = []string{"POST"}
	put    = []string{"PUT"}
	getPut = []string{"GET", "PUT"}
)

// routeSet accumulates routes while the tables are built.
type routeSet []Route

// client adds a /_matrix/client/{version}{rel} route for each version.
func (rs *routeSet) client(id string, methods []string, flags Flags, versions []string, rel string) {
	for _, v := range versions {
		*rs = append(*rs, Route{ID: id, Surface: Client, Methods: methods, Pattern: "/_matrix/client/" + v + rel, Flags: flags})
	}
}

// add adds one route with a full pattern.
func (rs *routeSet) add(id string, s Surface, methods []string, flags Flags, pattern string) {
	*rs = append(*rs, Route{ID: id, Surface: s, Methods: methods, Pattern: pattern, Flags: flags})
}

// ClientTable returns the allow-list of the client listener: the Matrix v1.11 client-server API, legacy and
// authenticated media, discovery, Synapse's SSO pages and /_synapse/admin/v1/server_version. Each call builds
// a new table; build it once at start-up. OPTIONS is on no route: CORS preflights are answered before Lookup.
func ClientTable() *Table {
	t, err := NewTable(clientRoutes())
	if err != nil {
		// The routes are constants of this package; TestTablesBuild pins that they are consistent.
		panic(err)
	}
	return t
}

func clientRoutes() []Route {
	var rs routeSet

	// Discovery.
	rs.add("client.versions", Client, get, public, "/_matrix/client/versions")
	rs.add("wellknown.client", WellKnown, get, public, "/.well-known/matrix/client")
	rs.add("wellknown.support", WellKnown, get, public, "/.well-known/matrix/support") // A_26265
	// Test 00.01.06 reads the version; nothing else of the admin API is reachable.
	rs.add("synapse.admin.server_version", Client, get, public, "/_synapse/admin/v1/server_version")
	rs.client("client.capabilities", get, authn, r0v3, "/capabilities")

	// Login, logout, registration, account.
	rs.client("client.login", []string{"GET", "POST"}, public, r0v3, "/login")
	rs.client("client.login.sso.redirect", get, public|SSO, r0v3, "/login/sso/redirect")
	rs.client("client.login.sso.redirect", get, public|SSO, r0v3, "/login/sso/redirect/{idpId}")
	rs.client("client.login.get_token", post, authn|Blocked, v1, "/login/get_token") // disabled: 404
	rs.client("client.refresh", post, public, r0v3, "/refresh")
	rs.client("client.logout", post, authn, r0v3, "/logout")
	rs.client("client.logout.all", post, authn, r0v3, "/logout/all")
	rs.client("client.register", post, public, r0v3, "/register") // kind=guest is refused by the proxy
	rs.client("client.register.available", get, public, r0v3, "/register/available")
	rs.client("client.register.email.requestToken", post, public, r0v3, "/register/email/requestToken")
	rs.client("client.register.msisdn.requestToken", post, public, r0v3, "/register/msisdn/requestToken")
	rs.client("client.register.token.validity", get, public, v1, "/register/m.login.registration_token/validity")
	rs.client("client.account.whoami", get, authn, r0v3, "/account/whoami")
	rs.client("client.account.password", post, public, r0v3, "/account/password") // UIA, token optional
	rs.client("client.account.password.email.requestToken", post, public, r0v3, "/account/password/email/requestToken")
	rs.client("client.account.password.msisdn.requestToken", post, public, r0v3, "/account/password/msisdn/requestToken")
	rs.client("client.account.deactivate", post, public, r0v3, "/account/deactivate") // UIA, token optional
	rs.client("client.account.3pid", get, authn, r0v3, "/account/3pid")
	rs.client("client.account.3pid", post, authn|Deprecated, r0v3, "/account/3pid")
	rs.client("client.account.3pid.add", post, authn, r0v3, "/account/3pid/add")
	rs.client("client.account.3pid.bind", post, authn, r0v3, "/account/3pid/bind")
	rs.client("client.account.3pid.delete", post, authn, r0v3, "/account/3pid/delete")
	rs.client("client.account.3pid.unbind", post, authn, r0v3, "/account/3pid/unbind")
	rs.client("client.account.3pid.email.requestToken", post, public, r0v3, "/account/3pid/email/requestToken")
	rs.client("client.account.3pid.msisdn.requestToken", post, public, r0v3, "/account/3pid/msisdn/requestToken")
	rs.client("client.openid.request_token", post, authn, r0v3, "/user/{userId}/openid/request_token")
	rs.client("client.admin.whois", get, authn, r0v3, "/admin/whois/{userId}")
	rs.client("client.appservice.ping", post, authn, v1, "/appservice/{appserviceId}/ping")

	// Synapse's SSO pages, reached by the browser during login; mounted whether or not SSO is on.
	rs.add("synapse.client.pick_idp", Client, get, public|SSO, "/_synapse/client/pick_idp")
	rs.add("synapse.client.pick_username.account_details", Client, []string{"GET", "POST"}, public|SSO,
		"/_synapse/client/pick_username/account_details")
	rs.add("synapse.client.pick_username.check", Client, get, public|SSO, "/_synapse/client/pick_username/check")
	rs.add("synapse.client.new_user_consent", Client, []string{"GET", "POST"}, public|SSO, "/_synapse/client/new_user_consent")
	rs.add("synapse.client.sso_register", Client, get, public|SSO, "/_synapse/client/sso_register")
	rs.add("synapse.client.oidc.callback", Client, []string{"GET", "POST"}, public|SSO, "/_synapse/client/oidc/callback")
	rs.add("synapse.client.oidc.backchannel_logout", Client, post, public|SSO, "/_synapse/client/oidc/backchannel_logout")

	// Sync and the deprecated event stream.
	rs.client("client.sync", get, authn|LongPoll, r0v3, "/sync")
	rs.client("client.events", get, authn|LongPoll|Deprecated, r0v3, "/events")
	rs.client("client.events.event", get, authn|Deprecated, r0v3, "/events/{eventId}")
	rs.client("client.initialSync", get, authn|Deprecated, r0v3, "/initialSync")
	rs.client("client.joined_rooms", get, authn, r0v3, "/joined_rooms")

	// Rooms.
	rs.client("client.createRoom", post, authn, r0v3, "/createRoom")
	rs.client("client.join", post, authn, r0v3, "/join/{roomIdOrAlias}")
	rs.client("client.knock", post, authn, r0v3, "/knock/{roomIdOrAlias}")
	rs.client("client.rooms.send", put, authn, r0v3, "/rooms/{roomId}/send/{eventType}/{txnId}")
	// Synapse's idempotent and non-idempotent twins (TransactionRestServlet: POST without, PUT with a
	// trailing {txnId}). They share the ID of the spec'd endpoint, so the proxy applies the very same checks.
	rs.client("client.createRoom", put, authn, r0v3, "/createRoom/{txnId}")
	rs.client("client.join", put, authn, r0v3, "/join/{roomIdOrAlias}/{txnId}")
	rs.client("client.rooms.send", post, authn, r0v3, "/rooms/{roomId}/send/{eventType}")
	rs.client("client.rooms.redact", post, authn, r0v3, "/rooms/{roomId}/redact/{eventId}")
	// The state key may be empty; then the trailing slash is optional (spec: room_state.yaml).
	rs.client("client.rooms.state", getPut, authn, r0v3, "/rooms/{roomId}/state/{eventType}/{stateKey?}")
	rs.client("client.rooms.state.all", get, authn, r0v3, "/rooms/{roomId}/state")
	rs.client("client.rooms.redact", put, authn, r0v3, "/rooms/{roomId}/redact/{eventId}/{txnId}")
	for _, action := range []string{"invite", "join", "leave", "forget", "kick", "ban", "unban"} {
		rs.client("client.rooms."+action, post, authn, r0v3, "/rooms/{roomId}/"+action)
		rs.client("client.rooms."+action, put, authn, r0v3, "/rooms/{roomId}/"+action+"/{txnId}")
	}
	rs.client("client.rooms.members", get, authn, r0v3, "/rooms/{roomId}/members")
	rs.client("client.rooms.joined_members", get, authn, r0v3, "/rooms/{roomId}/joined_members")
	rs.client("client.rooms.messages", get, authn, r0v3, "/rooms/{roomId}/messages")
	rs.client("client.rooms.context", get, authn, r0v3, "/rooms/{roomId}/context/{eventId}")
	rs.client("client.rooms.event", get, authn, r0v3, "/rooms/{roomId}/event/{eventId}")
	rs.client("client.rooms.initialSync", get, authn|Deprecated, r0v3, "/rooms/{roomId}/initialSync")
	rs.client("client.rooms.receipt", post, authn, r0v3, "/rooms/{roomId}/receipt/{receiptType}/{eventId}")
	rs.client("client.rooms.read_markers", post, authn, r0v3, "/rooms/{roomId}/read_markers")
	rs.client("client.rooms.typing", put, authn, r0v3, "/rooms/{roomId}/typing/{userId}")
	rs.client("client.rooms.upgrade", post, authn, r0v3, "/rooms/{roomId}/upgrade")
	rs.client("client.rooms.aliases", get, authn, r0v3, "/rooms/{roomId}/aliases")
	rs.client("client.rooms.report", post, authn, r0v3, "/rooms/{roomId}/report/{eventId}")
	rs.client("client.rooms.relations", get, authn, v1, "/rooms/{roomId}/relations/{eventId}")
	rs.client("client.rooms.relations", get, authn, v1, "/rooms/{roomId}/relations/{eventId}/{relType}")
	rs.client("client.rooms.relations", get, authn, v1, "/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}")
	rs.client("client.rooms.threads", get, authn, v1, "/rooms/{roomId}/threads")
	rs.client("client.rooms.hierarchy", get, authn, v1, "/rooms/{roomId}/hierarchy")
	rs.client("client.rooms.timestamp_to_event", get, authn, v1, "/rooms/{roomId}/timestamp_to_event")

	// Directory. A_26518: publicRooms and the room's directory visibility need authentication in TI-M,
	// although the spec lets them be read anonymously.
	rs.client("client.directory.room", get, public, r0v3, "/directory/room/{roomAlias}")
	rs.client("client.directory.room", []string{"PUT", "DELETE"}, authn, r0v3, "/directory/room/{roomAlias}")
	rs.client("client.directory.list.room", getPut, authn, r0v3, "/directory/list/room/{roomId}")
	rs.client("client.directory.list.appservice", put, authn, r0v3, "/directory/list/appservice/{networkId}/{roomId}")
	rs.client("client.publicRooms", []string{"GET", "POST"}, authn, r0v3, "/publicRooms")
	rs.client("client.user_directory.search", post, authn, r0v3, "/user_directory/search")

	// Profile and presence. A_26289: profile reads need authentication.
	rs.client("client.profile", get, authn, r0v3, "/profile/{userId}")
	rs.client("client.profile.displayname", getPut, authn, r0v3, "/profile/{userId}/displayname")
	rs.client("client.profile.avatar_url", getPut, authn, r0v3, "/profile/{userId}/avatar_url")
	rs.client("client.presence.status", getPut, authn, r0v3, "/presence/{userId}/status")

	// Account data, tags, filters.
	rs.client("client.account_data.global", getPut, authn, r0v3, "/user/{userId}/account_data/{type}")
	rs.client("client.account_data.room", getPut, authn, r0v3, "/user/{userId}/rooms/{roomId}/account_data/{type}")
	rs.client("client.tags", get, authn, r0v3, "/user/{userId}/rooms/{roomId}/tags")
	rs.client("client.tags.tag", []string{"PUT", "DELETE"}, authn, r0v3, "/user/{userId}/rooms/{roomId}/tags/{tag}")
	rs.client("client.filter", post, authn, r0v3, "/user/{userId}/filter")
	rs.client("client.filter.get", get, authn, r0v3, "/user/{userId}/filter/{filterId}")

	// Push.
	rs.client("client.pushrules", get, authn, r0v3, "/pushrules/")
	// Not in v1.11 (added to the spec later) but served by Synapse and read by SDKs.
	rs.client("client.pushrules.global", get, authn, r0v3, "/pushrules/global/")
	rs.client("client.pushrules.rule", []string{"GET", "PUT", "DELETE"}, authn, r0v3, "/pushrules/{scope}/{kind}/{ruleId}")
	rs.client("client.pushrules.rule.enabled", getPut, authn, r0v3, "/pushrules/{scope}/{kind}/{ruleId}/enabled")
	rs.client("client.pushrules.rule.actions", getPut, authn, r0v3, "/pushrules/{scope}/{kind}/{ruleId}/actions")
	rs.client("client.pushers", get, authn, r0v3, "/pushers")
	rs.client("client.pushers.set", post, authn, r0v3, "/pushers/set")
	rs.client("client.notifications", get, authn, r0v3, "/notifications")

	// Devices and end-to-end encryption.
	rs.client("client.devices", get, authn, r0v3, "/devices")
	rs.client("client.devices.device", []string{"GET", "PUT", "DELETE"}, authn, r0v3, "/devices/{deviceId}")
	rs.client("client.delete_devices", post, authn, r0v3, "/delete_devices")
	rs.client("client.keys.upload", post, authn, r0v3, "/keys/upload")
	rs.client("client.keys.query", post, authn, r0v3, "/keys/query")
	rs.client("client.keys.claim", post, authn, r0v3, "/keys/claim")
	rs.client("client.keys.changes", get, authn, r0v3, "/keys/changes")
	rs.client("client.keys.device_signing.upload", post, authn, v3, "/keys/device_signing/upload")
	rs.client("client.keys.signatures.upload", post, authn, r0v3, "/keys/signatures/upload")
	rs.client("client.sendToDevice", put, authn, r0v3, "/sendToDevice/{eventType}/{txnId}")
	// Key backup (A_26077).
	allKeys := []string{"GET", "PUT", "DELETE"}
	rs.client("client.room_keys.keys", allKeys, authn, r0v3, "/room_keys/keys")
	rs.client("client.room_keys.keys.room", allKeys, authn, r0v3, "/room_keys/keys/{roomId}")
	rs.client("client.room_keys.keys.session", allKeys, authn, r0v3, "/room_keys/keys/{roomId}/{sessionId}")
	rs.client("client.room_keys.version", []string{"GET", "POST"}, authn, r0v3, "/room_keys/version")
	rs.client("client.room_keys.version.version", allKeys, authn, r0v3, "/room_keys/version/{version}")
	// Dehydrated devices, MSC3814 (A_26574, A_26575); unstable only in Synapse.
	const msc3814 = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"
	rs.add("client.dehydrated_device", Client, allKeys, authn, msc3814)
	rs.add("client.dehydrated_device.events", Client, []string{"GET", "POST"}, authn, msc3814+"/{deviceId}/events")

	// Miscellaneous.
	rs.client("client.voip.turnServer", get, authn, r0v3, "/voip/turnServer")
	rs.client("client.search", post, authn, r0v3, "/search")
	rs.client("client.thirdparty.protocols", get, authn, r0v3, "/thirdparty/protocols")
	rs.client("client.thirdparty.protocol", get, authn, r0v3, "/thirdparty/protocol/{protocol}")
	rs.client("client.thirdparty.location", get, authn, r0v3, "/thirdparty/location")
	rs.client("client.thirdparty.location", get, authn, r0v3, "/thirdparty/location/{protocol}")
	rs.client("client.thirdparty.user", get, authn, r0v3, "/thirdparty/user")
	rs.client("client.thirdparty.user", get, authn, r0v3, "/thirdparty/user/{protocol}")

	// Authenticated media (v1.11). A_26344: URL previews are answered 404 by the proxy.
	rs.client("client.media.config", get, authn, v1, "/media/config")
	rs.client("client.media.download", get, authn|Streams, v1, "/media/download/{serverName}/{mediaId}")
	rs.client("client.media.download", get, authn|Streams, v1, "/media/download/{serverName}/{mediaId}/{fileName}")
	rs.client("client.media.thumbnail", get, authn|Streams, v1, "/media/thumbnail/{serverName}/{mediaId}")
	rs.client("client.media.preview_url", get, authn|Blocked, v1, "/media/preview_url")
	for i := range rs {
		if strings.HasPrefix(rs[i].Pattern, "/_matrix/client/v1/media/") {
			rs[i].Surface = Media
		}
	}

	// Legacy media. A_26263: unauthenticated download and thumbnail must keep working; A_26262 and A_26344:
	// config and preview_url are answered 404 by the proxy.
	for _, v := range []string{"r0", "v3"} {
		p := "/_matrix/media/" + v
		rs.add("media.download", Media, get, public|Streams|Deprecated, p+"/download/{serverName}/{mediaId}")
		rs.add("media.download", Media, get, public|Streams|Deprecated, p+"/download/{serverName}/{mediaId}/{fileName}")
		rs.add("media.thumbnail", Media, get, public|Streams|Deprecated, p+"/thumbnail/{serverName}/{mediaId}")
		rs.add("media.upload", Media, post, authn|Streams, p+"/upload")
		rs.add("media.config", Media, get, authn|Blocked|Deprecated, p+"/config")
		rs.add("media.preview_url", Media, get, authn|Blocked|Deprecated, p+"/preview_url")
	}
	rs.add("media.upload.async", Media, put, authn|Streams, "/_matrix/media/v3/upload/{serverName}/{mediaId}")
	rs.add("media.create", Media, post, authn, "/_matrix/media/v1/create") // Synapse serves it under v1 only

	return rs
}
