package tim.epa_test

import data.tim.decision
import data.tim.epa
import data.tim.fixtures_test as fx

private := {"version": "10", "preset": "private_chat", "encrypted": true, "history_visibility": "invited"}

create(r) := {"action": "room_create", "actor": fx.karl, "room": r}

state(type, r) := {"action": "state_event", "actor": fx.karl, "room": object.union(r, {"state_event_type": type})}

cases := {
	"A_25705 an insured person may invite a practitioner": {
		"input": {"action": "invite", "actor": fx.karl, "target": fx.bob},
		"want": set(),
	},
	"A_25705 an insured person may not invite another insured person": {
		"input": {"action": "invite", "actor": fx.karl, "target": fx.kim},
		"want": {"epa_insured_to_insured"},
	},
	"AF_10233 an insured-to-insured federation invite is rejected": {
		"input": {"action": "federation_invite", "actor": fx.kim, "target": fx.karl},
		"want": {"epa_insured_to_insured"},
	},
	"a practitioner may invite a second insured person": {
		"input": {"action": "invite", "actor": fx.bob, "target": fx.kim},
		"want": set(),
	},
	"an ePA private room is allowed": {
		"input": create(private),
		"want": set(),
	},
	"an ePA public room is rejected": {
		"input": create(object.union(private, {"visibility": "public"})),
		"want": {"epa_public_room"},
	},
	"an ePA room created with join rule knock is rejected": {
		"input": create(object.union(private, {"join_rule": "knock"})),
		"want": {"epa_join_rule_public_or_knock"},
	},
	"an ePA join rule change to invite is allowed": {
		"input": state("m.room.join_rules", {"join_rule": "invite"}),
		"want": set(),
	},
	"an ePA join rule change to public is rejected": {
		"input": state("m.room.join_rules", {"join_rule": "public"}),
		"want": {"epa_join_rule_public_or_knock"},
	},
	"an ePA join rule change to knock_restricted is rejected": {
		"input": state("m.room.join_rules", {"join_rule": "knock_restricted"}),
		"want": {"epa_join_rule_public_or_knock"},
	},
	"an ePA history visibility change to shared is allowed": {
		"input": state("m.room.history_visibility", {"history_visibility": "shared"}),
		"want": set(),
	},
	"an ePA history visibility change to world_readable is rejected": {
		"input": state("m.room.history_visibility", {"history_visibility": "world_readable"}),
		"want": {"epa_world_readable"},
	},
	"an ePA world-readable room is rejected at creation": {
		"input": create(object.union(private, {"history_visibility": "world_readable"})),
		"want": {"epa_world_readable"},
	},
	"A_28587 the ePA client room directory is rejected": {
		"input": {"action": "public_rooms", "request": {"surface": "client", "authenticated": true}},
		"want": {"epa_public_rooms_directory"},
	},
	"the ePA room directory over federation is left to the room module": {
		"input": {"action": "public_rooms", "request": {"surface": "federation"}},
		"want": set(),
	},
	"an ePA profile lookup of someone sharing a room is allowed": {
		"input": {"action": "profile", "actor": fx.karl, "target": fx.bob, "request": {"authenticated": true, "shares_room": true}},
		"want": set(),
	},
	"an ePA profile lookup of oneself is allowed": {
		"input": {"action": "profile", "actor": fx.karl, "target": fx.karl, "request": {"authenticated": true}},
		"want": set(),
	},
	"an ePA profile lookup without a shared room is rejected": {
		"input": {"action": "profile", "actor": fx.karl, "target": fx.bob, "request": {"authenticated": true}},
		"want": {"epa_profile_no_shared_room"},
	},
}

test_epa_deny[note] if {
	some note, c in cases
	got := epa.deny with input as c.input
		with data.tim.settings as fx.epa
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "fresh"
	got == c.want

	# The same reasons come out of the entry point (decision.rego asks this module about this action).
	all := decision.reasons with input as c.input
		with data.tim.settings as fx.epa
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "fresh"
	every reason in c.want {
		reason in all
	}
}

pro_cases := {
	"a Pro public room is no ePA matter": create(object.union(private, {"visibility": "public"})),
	"a Pro room directory is no ePA matter": {"action": "public_rooms", "request": {"surface": "client", "authenticated": true}},
	"a Pro profile lookup needs no shared room": {"action": "profile", "actor": fx.alice, "target": fx.bob, "request": {"authenticated": true}},
	"a Pro world-readable room is no ePA matter": state("m.room.history_visibility", {"history_visibility": "world_readable"}),
}

test_pro_variant_skips_epa_rules[note] if {
	some note, in_ in pro_cases
	epa.deny == set() with input as in_
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "fresh"
}

test_epa_insured_to_insured_also_on_pro if {
	epa.deny == {"epa_insured_to_insured"} with input as {"action": "invite", "actor": fx.karl, "target": fx.kim}
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
}

test_epa_user_directory_finds_nobody if {
	epa.obligations == {"empty_result": true} with input as {"action": "user_directory", "actor": fx.karl}
		with data.tim.settings as fx.epa
}

test_pro_user_directory_is_untouched if {
	epa.obligations == {} with input as {"action": "user_directory", "actor": fx.alice}
		with data.tim.settings as fx.pro
}
