package route

// FederationTable returns the allow-list of the inbound federation listener: the Matrix v1.11 server-server
// API, the key API and /.well-known/matrix/server. Trailing-slash variants that Synapse tolerates for old
// servers (/send/{txnId}/ and others) are not in the spec and are not listed. Each call builds a new table;
// build it once at start-up.
func FederationTable() *Table {
	t, err := NewTable(federationRoutes())
	if err != nil {
		// The routes are constants of this package; TestTablesBuild pins that they are consistent.
		panic(err)
	}
	return t
}

func federationRoutes() []Route {
	var rs routeSet
	fed := func(id string, methods []string, flags Flags, version, rel string) {
		rs.add(id, Federation, methods, flags, "/_matrix/federation/"+version+rel)
	}

	fed("federation.send", put, authn, "v1", "/send/{txnId}")
	fed("federation.event", get, authn, "v1", "/event/{eventId}")
	fed("federation.state", get, authn, "v1", "/state/{roomId}")
	fed("federation.state_ids", get, authn, "v1", "/state_ids/{roomId}")
	fed("federation.event_auth", get, authn, "v1", "/event_auth/{roomId}/{eventId}")
	fed("federation.backfill", get, authn, "v1", "/backfill/{roomId}")
	fed("federation.get_missing_events", post, authn, "v1", "/get_missing_events/{roomId}")
	fed("federation.timestamp_to_event", get, authn, "v1", "/timestamp_to_event/{roomId}")

	// Membership. v1 and v2 carry different bodies, so they have different IDs.
	fed("federation.invite.v1", put, authn, "v1", "/invite/{roomId}/{eventId}")
	fed("federation.invite.v2", put, authn, "v2", "/invite/{roomId}/{eventId}")
	fed("federation.make_join", get, authn, "v1", "/make_join/{roomId}/{userId}")
	fed("federation.send_join.v1", put, authn|Deprecated, "v1", "/send_join/{roomId}/{eventId}")
	fed("federation.send_join.v2", put, authn, "v2", "/send_join/{roomId}/{eventId}")
	fed("federation.make_leave", get, authn, "v1", "/make_leave/{roomId}/{userId}")
	fed("federation.send_leave.v1", put, authn|Deprecated, "v1", "/send_leave/{roomId}/{eventId}")
	fed("federation.send_leave.v2", put, authn, "v2", "/send_leave/{roomId}/{eventId}")
	fed("federation.make_knock", get, authn, "v1", "/make_knock/{roomId}/{userId}")
	fed("federation.send_knock", put, authn, "v1", "/send_knock/{roomId}/{eventId}")
	fed("federation.exchange_third_party_invite", put, authn, "v1", "/exchange_third_party_invite/{roomId}")
	// Called by identity servers without X-Matrix, so no origin can be checked; TI-M has no identity servers.
	// The spec says PUT, Synapse (and Sydent) use POST: both are listed so both get the proxy's refusal.
	fed("federation.3pid.onbind", []string{"PUT", "POST"}, public|Blocked, "v1", "/3pid/onbind")

	// Queries and directory.
	fed("federation.query.directory", get, authn, "v1", "/query/directory")
	fed("federation.query.profile", get, authn, "v1", "/query/profile")
	fed("federation.query", get, authn, "v1", "/query/{queryType}")
	fed("federation.user.devices", get, authn, "v1", "/user/devices/{userId}")
	fed("federation.user.keys.query", post, authn, "v1", "/user/keys/query")
	fed("federation.user.keys.claim", post, authn, "v1", "/user/keys/claim")
	// A_26520, A_28590: the public room directory is not offered over federation: 403.
	fed("federation.publicRooms", []string{"GET", "POST"}, authn|Blocked, "v1", "/publicRooms")
	fed("federation.hierarchy", get, authn, "v1", "/hierarchy/{roomId}")
	// The VZD and the registration service validate Matrix OpenID tokens here, without X-Matrix.
	fed("federation.openid.userinfo", get, public, "v1", "/openid/userinfo")
	// A_26331: inbound /version requires X-Matrix, although the spec does not.
	fed("federation.version", get, authn, "v1", "/version")

	// Federation media (authenticated, v1.11).
	fed("federation.media.download", get, authn|Streams, "v1", "/media/download/{mediaId}")
	fed("federation.media.thumbnail", get, authn|Streams, "v1", "/media/thumbnail/{mediaId}")

	// Legacy media as remote servers fetched it before Matrix v1.11 (and Synapse still does for deprecated
	// unauthenticated downloads, A_26263): the client media paths, without X-Matrix, ?allow_remote=false.
	// The proxy serves only its own server's media here.
	for _, p := range []string{"/_matrix/media/r0", "/_matrix/media/v3"} {
		rs.add("federation.legacy_media.download", Media, get, public|Streams|Deprecated, p+"/download/{serverName}/{mediaId}")
		rs.add("federation.legacy_media.download", Media, get, public|Streams|Deprecated, p+"/download/{serverName}/{mediaId}/{fileName}")
		rs.add("federation.legacy_media.thumbnail", Media, get, public|Streams|Deprecated, p+"/thumbnail/{serverName}/{mediaId}")
	}

	// Server keys (A_26224, A_26244): answered both ways; the {keyId} variants, gone from the spec but
	// still served by Synapse, inbound only.
	rs.add("key.server", Key, get, public, "/_matrix/key/v2/server")
	rs.add("key.server.keyId", Key, get, public|InboundOnly, "/_matrix/key/v2/server/{keyId}")
	rs.add("key.query", Key, post, public, "/_matrix/key/v2/query")
	rs.add("key.query.server", Key, get, public, "/_matrix/key/v2/query/{serverName}")
	rs.add("key.query.server.keyId", Key, get, public|InboundOnly, "/_matrix/key/v2/query/{serverName}/{keyId}")

	rs.add("wellknown.server", WellKnown, get, public, "/.well-known/matrix/server")
	return rs
}
