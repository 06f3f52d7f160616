package tim.federation_test

import data.tim.decision
import data.tim.federation
import data.tim.fixtures_test as fx

cases := {
	"inbound from a federated origin is allowed": {
		"input": {"action": "federation_inbound", "origin": "other.example", "destination": "pro.example"},
		"want": set(),
	},
	"inbound origin is matched case-insensitively": {
		"input": {"action": "federation_inbound", "origin": "Other.Example", "destination": "pro.example"},
		"want": set(),
	},
	"inbound from a non-federated origin is rejected": {
		"input": {"action": "federation_inbound", "origin": "evil.example", "destination": "pro.example"},
		"want": {"origin_not_federated"},
	},
	"inbound without an origin is rejected": {
		"input": {"action": "federation_inbound", "destination": "pro.example"},
		"want": {"origin_not_federated"},
	},
	"federation invite from a non-federated origin is rejected": {
		"input": {"action": "federation_invite", "origin": "evil.example"},
		"want": {"origin_not_federated"},
	},
	"federation invite from a federated origin passes this module": {
		"input": {"action": "federation_invite", "origin": "other.example"},
		"want": set(),
	},
	"outbound to a federated destination is allowed": {
		"input": {"action": "federation_outbound", "origin": "pro.example", "destination": "other.example"},
		"want": set(),
	},
	"outbound to a non-federated destination is rejected": {
		"input": {"action": "federation_outbound", "origin": "pro.example", "destination": "evil.example"},
		"want": {"destination_not_federated"},
	},
	"A_26328 media from a federated server is allowed": {
		"input": {"action": "media_remote", "request": {"media_server": "other.example"}},
		"want": set(),
	},
	"A_26328 media from a non-federated server is rejected": {
		"input": {"action": "media_remote", "request": {"media_server": "evil.example"}},
		"want": {"media_server_not_federated"},
	},
}

test_fresh_list[note] if {
	some note, c in cases
	got := federation.deny with input as c.input
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "fresh"
	got == c.want

	# The same reasons come out of the entry point (decision.rego asks this module about this action).
	all := decision.reasons with input as c.input
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "fresh"
	every reason in c.want {
		reason in all
	}
}

status_cases := {
	"a stale list blocks inbound federation": {
		"status": "stale",
		"input": {"action": "federation_inbound", "origin": "other.example"},
		"want": {"federation_list_stale"},
	},
	"a stale list blocks an invite of a remote user": {
		"status": "stale",
		"input": {"action": "invite", "actor": fx.alice, "target": fx.bob},
		"want": {"federation_list_stale"},
	},
	"a stale list blocks media from another server": {
		"status": "stale",
		"input": {"action": "media_remote", "request": {"media_server": "other.example"}},
		"want": {"federation_list_stale"},
	},
	"a stale list blocks a federated invite": {
		"status": "stale",
		"input": {"action": "federation_invite", "origin": "other.example", "actor": fx.bob, "target": fx.alice},
		"want": {"federation_list_stale"},
	},
	"a stale list blocks an action naming another destination": {
		"status": "stale",
		"input": {"action": "public_rooms", "destination": "other.example"},
		"want": {"federation_list_stale"},
	},
	"an unavailable list blocks an action about another domain's peer": {
		"status": "unavailable",
		"input": {"action": "profile", "peer": {"domain": "other.example"}},
		"want": {"federation_list_unavailable"},
	},
	"a stale list does not block a purely local invite": {
		"status": "stale",
		"input": {"action": "invite", "origin": "pro.example", "actor": fx.alice, "target": object.union(fx.alice, {"user_id": "@al:pro.example"})},
		"want": set(),
	},
	"a stale list does not block local media": {
		"status": "stale",
		"input": {"action": "media_remote", "request": {"media_server": "pro.example"}},
		"want": set(),
	},
	"an unavailable list blocks outbound federation": {
		"status": "unavailable",
		"input": {"action": "federation_outbound", "destination": "other.example"},
		"want": {"federation_list_unavailable"},
	},
	"an unavailable list blocks joining a room of another server": {
		"status": "unavailable",
		"input": {"action": "join", "room": {"creator_domain": "other.example"}},
		"want": {"federation_list_unavailable"},
	},
	"an unavailable list does not block a local action": {
		"status": "unavailable",
		"input": {"action": "presence", "origin": "pro.example", "actor": fx.alice},
		"want": set(),
	},
	"a fresh list blocks nothing by itself": {
		"status": "fresh",
		"input": {"action": "federation_outbound", "destination": "other.example"},
		"want": set(),
	},
}

test_list_status[note] if {
	some note, c in status_cases
	got := federation.deny with input as c.input
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as c.status
	got == c.want

	# The same reasons come out of the entry point (decision.rego asks this module about this action).
	all := decision.reasons with input as c.input
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as c.status
	every reason in c.want {
		reason in all
	}
}

test_insured_follows_is_insurance if {
	federation.insured("kasse.example") with data.tim.federation.domains as fx.domains
	federation.insured("KASSE2.example") with data.tim.federation.domains as fx.domains
	not federation.insured("pro.example") with data.tim.federation.domains as fx.domains
	not federation.insured("evil.example") with data.tim.federation.domains as fx.domains
}
