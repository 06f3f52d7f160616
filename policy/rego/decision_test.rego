package tim.decision_test

import data.tim.decision
import data.tim.fixtures_test as fx

eval(in_, settings) := d if {
	d := decision with input as in_
		with data.tim.settings as settings
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "fresh"
}

test_allowed_request_has_no_reasons if {
	d := eval({"action": "federation_inbound", "origin": "other.example", "destination": "pro.example"}, fx.pro)
	d.allow == true
	d.reasons == set()
	d.obligations == {}
}

test_denied_request_names_every_rule if {
	d := eval(
		{
			"action": "room_create", "actor": fx.alice, "target": fx.eve,
			"room": {"version": "11", "invite_count": 2, "encrypted": true},
		},
		fx.pro,
	)
	d.allow == false
	d.reasons == {"invitee_not_federated", "room_version_not_allowed", "createroom_too_many_invites"}
}

test_obligations_are_collected_from_all_modules if {
	d := eval({"action": "room_create", "actor": fx.alice, "room": {"visibility": "public"}}, fx.pro)
	d.allow == true
	d.obligations == {"room_version": "10", "history_visibility": "invited", "force_federate_false": true}
	e := eval({"action": "user_directory", "actor": fx.karl}, fx.epa)
	e.obligations == {"empty_result": true}
}

test_epa_reasons_reach_the_decision if {
	d := eval({"action": "invite", "actor": fx.karl, "target": fx.kim}, fx.epa)
	d.allow == false
	d.reasons == {"epa_insured_to_insured"}
}

test_operator_reasons_are_included if {
	d := eval({"action": "federation_inbound", "origin": "other.example"}, fx.pro)
		with data.tim.operator as {"a": {"deny": {"operator_a"}}, "b": {"deny": {"operator_b", 42}}, "c": {"other": true}}
	d.allow == false
	d.reasons == {"operator_a", "operator_b"}
}

test_stale_list_denies_federation if {
	d := decision with input as {"action": "federation_inbound", "origin": "other.example"}
		with data.tim.settings as fx.pro
		with data.tim.federation.domains as fx.domains
		with data.tim.federation.status as "stale"
	d.allow == false
	d.reasons == {"federation_list_stale"}
}

test_unknown_action_is_a_policy_error if {
	d := eval({"action": "federation_inbund", "origin": "other.example"}, fx.pro)
	d.allow == false
	d.reasons == {"policy_error"}
	e := eval({"origin": "other.example"}, fx.pro)
	e.reasons == {"policy_error"}
}
