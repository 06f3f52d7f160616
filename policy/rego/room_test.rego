package tim.room_test

import data.tim.decision
import data.tim.fixtures_test as fx
import data.tim.room

# private is a createRoom body as TI-M clients send it: private, encrypted, version and visibility stated.
private := {"version": "10", "preset": "private_chat", "encrypted": true, "history_visibility": "invited"}

create(r) := {"action": "room_create", "actor": fx.alice, "room": r}

cases := {
	"a private encrypted room is allowed": {
		"input": create(private),
		"want": set(),
	},
	"A_26202 room version 9 is allowed": {
		"input": create(object.union(private, {"version": "9"})),
		"want": set(),
	},
	"A_26202 room version 11 is rejected at creation": {
		"input": create(object.union(private, {"version": "11"})),
		"want": {"room_version_not_allowed"},
	},
	"A_26203 an upgrade to version 10 is allowed": {
		"input": {"action": "room_upgrade", "room": {"version": "10"}},
		"want": set(),
	},
	"A_26203 an upgrade to version 1 is rejected": {
		"input": {"action": "room_upgrade", "room": {"version": "1"}},
		"want": {"room_version_not_allowed"},
	},
	"an upgrade without a version is rejected": {
		"input": {"action": "room_upgrade"},
		"want": {"room_version_not_allowed"},
	},
	"A_28596 room type default.v1 is allowed": {
		"input": create(object.union(private, {"type": "de.gematik.tim.roomtype.default.v1"})),
		"want": set(),
	},
	"A_28596 room type default.v2 is forbidden": {
		"input": create(object.union(private, {"type": "de.gematik.tim.roomtype.default.v2"})),
		"want": {"room_type_forbidden"},
	},
	"A_25368-01 createRoom with one invitee is allowed": {
		"input": create(object.union(private, {"invite_count": 1})),
		"want": set(),
	},
	"A_25368-01 createRoom with two invitees is rejected": {
		"input": create(object.union(private, {"invite_count": 2})),
		"want": {"createroom_too_many_invites"},
	},
	"A_25324-01 a private unencrypted room is rejected": {
		"input": create(object.union(private, {"encrypted": false})),
		"want": {"private_room_unencrypted"},
	},
	"a createRoom without room facts counts as private and unencrypted": {
		"input": {"action": "room_create"},
		"want": {"private_room_unencrypted"},
	},
	"a public unencrypted room is not a private one": {
		"input": create({"visibility": "public", "encrypted": false}),
		"want": set(),
	},
	"A_28271 a Pro join rule change to invite is allowed": {
		"input": {"action": "state_event", "room": {"state_event_type": "m.room.join_rules", "join_rule": "invite"}},
		"want": set(),
	},
	"A_28271 a Pro join rule change to public is rejected": {
		"input": {"action": "state_event", "room": {"state_event_type": "m.room.join_rules", "join_rule": "public"}},
		"want": {"pro_join_rule_public"},
	},
	"a join rule carried along another state event is not a join rule change": {
		"input": {"action": "state_event", "room": {"state_event_type": "m.room.topic", "join_rule": "public"}},
		"want": set(),
	},
	"joining a remote public room with an invite is allowed": {
		"input": {"action": "join", "room": {"join_rule": "public", "creator_domain": "other.example", "invited": true}},
		"want": set(),
	},
	"joining a local public room is allowed": {
		"input": {"action": "join", "room": {"join_rule": "public", "creator_domain": "pro.example"}},
		"want": set(),
	},
	"joining a remote public room without an invite is rejected": {
		"input": {"action": "join", "room": {"join_rule": "public", "creator_domain": "other.example"}},
		"want": {"remote_public_room"},
	},
	"A_25395-02 a reply is allowed": {
		"input": {"action": "send_event", "event": {"type": "m.room.message", "rel_type": "m.reference"}},
		"want": set(),
	},
	"A_25395-02 a thread relation is rejected": {
		"input": {"action": "send_event", "event": {"type": "m.room.message", "rel_type": "m.thread"}},
		"want": {"thread_relation"},
	},
	"A_26228-01 a single-emoji annotation is allowed": {
		"input": {"action": "send_event", "event": {"type": "m.reaction", "rel_type": "m.annotation", "key": "👍", "key_is_single_emoji": true}},
		"want": set(),
	},
	"A_26228-01 a reaction with two emoji is rejected": {
		"input": {"action": "send_event", "event": {"type": "m.reaction", "rel_type": "m.annotation", "key": "👍👍"}},
		"want": {"reaction_not_single_emoji"},
	},
	"A_26228-01 a reaction that is no annotation is rejected": {
		"input": {"action": "send_event", "event": {"type": "m.reaction", "rel_type": "m.reference", "key": "👍", "key_is_single_emoji": true}},
		"want": {"reaction_not_single_emoji"},
	},
	"A_28358 redacting a fresh event is allowed": {
		"input": {"action": "redact", "actor": fx.alice, "event": {"age_ms": 3600000}},
		"want": set(),
	},
	"A_28358 redacting an event older than 24 h is rejected": {
		"input": {"action": "redact", "actor": fx.alice, "event": {"age_ms": 86400001}},
		"want": {"redaction_too_old"},
	},
	"A_28358 a server admin may redact old events": {
		"input": {"action": "redact", "actor": object.union(fx.alice, {"admin": true}), "event": {"age_ms": 86400001}},
		"want": set(),
	},
	"a status message of 250 characters is allowed": {
		"input": {"action": "presence", "request": {"status_msg_length": 250}},
		"want": set(),
	},
	"a status message of 251 characters is rejected": {
		"input": {"action": "presence", "request": {"status_msg_length": 251}},
		"want": {"status_msg_too_long"},
	},
	"user registration is allowed": {
		"input": {"action": "register", "request": {"register_kind": "user"}},
		"want": set(),
	},
	"guest registration is rejected": {
		"input": {"action": "register", "request": {"register_kind": "guest"}},
		"want": {"guest_registration"},
	},
	"A_26289 an authenticated profile lookup is allowed": {
		"input": {"action": "profile", "actor": fx.alice, "target": fx.bob, "request": {"authenticated": true}},
		"want": set(),
	},
	"A_26289 an unauthenticated profile lookup is rejected": {
		"input": {"action": "profile", "target": fx.bob, "request": {"authenticated": false}},
		"want": {"profile_unauthenticated"},
	},
	"A_26518 an authenticated room directory request is allowed": {
		"input": {"action": "public_rooms", "request": {"surface": "client", "authenticated": true}},
		"want": set(),
	},
	"A_26518 an unauthenticated room directory request is rejected": {
		"input": {"action": "public_rooms", "request": {"surface": "client", "authenticated": false}},
		"want": {"public_rooms_unauthenticated"},
	},
	"A_26520 the room directory over federation is rejected": {
		"input": {"action": "public_rooms", "request": {"surface": "federation", "authenticated": true}},
		"want": {"federation_public_rooms"},
	},
}

test_room_deny[note] if {
	some note, c in cases
	got := room.deny with input as c.input
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

obligation_cases := {
	"A_26248 a createRoom without version gets the default version": {
		"input": create(object.remove(private, ["version"])),
		"want": {"room_version": "10"},
	},
	"A_25481 a createRoom without history visibility gets invited": {
		"input": create(object.remove(private, ["history_visibility"])),
		"want": {"history_visibility": "invited"},
	},
	"a createRoom stating version and history visibility gets no rewrite": {
		"input": create(private),
		"want": {},
	},
	"A_26515-01 a Pro public room is forced local": {
		"input": create(object.union(private, {"visibility": "public"})),
		"want": {"force_federate_false": true},
	},
	"A_26515-01 a Pro public_chat room is forced local": {
		"input": create(object.union(private, {"preset": "public_chat"})),
		"want": {"force_federate_false": true},
	},
	"A_26515-01 a Pro room public by join rule is forced local": {
		"input": create(object.union(private, {"join_rule": "public"})),
		"want": {"force_federate_false": true},
	},
	"A_26515-01 a Pro public room already local needs no rewrite": {
		"input": create(object.union(private, {"visibility": "public", "federate": false})),
		"want": {},
	},
	"obligations belong to createRoom only": {
		"input": {"action": "room_upgrade", "room": {"visibility": "public"}},
		"want": {},
	},
}

test_room_obligations[note] if {
	some note, c in obligation_cases
	got := room.obligations with input as c.input
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "fresh"
	got == c.want
}

test_epa_public_room_is_not_forced_local if {
	room.obligations == {} with input as create(object.union(private, {"visibility": "public"}))
		with data.tim.settings as fx.epa
}

test_epa_join_rule_public_is_left_to_the_epa_module if {
	room.deny == set() with input as {"action": "state_event", "room": {"state_event_type": "m.room.join_rules", "join_rule": "public"}}
		with data.tim.settings as fx.epa
}
