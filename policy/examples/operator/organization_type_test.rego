package tim.operator.organization_type_test

import data.tim.operator.organization_type

peer(types) := {"domain": "other.example", "organization_types": types}

cases := {
	"inbound from a practice is allowed": {
		"input": {"action": "federation_inbound", "origin": "other.example", "peer": peer(["1.2.276.0.76.4.50"])},
		"want": set(),
	},
	"inbound from an organisation of another type is rejected": {
		"input": {"action": "federation_inbound", "origin": "other.example", "peer": peer(["1.2.276.0.76.4.999"])},
		"want": {"organization_type_not_allowed"},
	},
	"one allowed type among several is enough": {
		"input": {"action": "federation_outbound", "peer": peer(["1.2.276.0.76.4.999", "1.2.276.0.76.4.53"])},
		"want": set(),
	},
	"an invite from a disallowed organisation is rejected": {
		"input": {"action": "invite", "peer": peer(["1.2.276.0.76.4.999"])},
		"want": {"organization_type_not_allowed"},
	},
	"a federation invite from a disallowed organisation is rejected": {
		"input": {"action": "federation_invite", "peer": peer(["1.2.276.0.76.4.999"])},
		"want": {"organization_type_not_allowed"},
	},
	"a peer without directory facts is not judged": {
		"input": {"action": "federation_inbound", "peer": peer([])},
		"want": set(),
	},
	"other actions are not judged": {
		"input": {"action": "profile", "peer": peer(["1.2.276.0.76.4.999"])},
		"want": set(),
	},
}

test_default_list[note] if {
	some note, c in cases
	organization_type.deny == c.want with input as c.input
}

test_configured_list_replaces_the_default if {
	organization_type.deny == {"organization_type_not_allowed"} with input as {"action": "federation_inbound", "peer": peer(["1.2.276.0.76.4.50"])}
		with data.tim.operator_settings.allowed_organization_types as ["1.2.276.0.76.4.999"]
	organization_type.deny == set() with input as {"action": "federation_inbound", "peer": peer(["1.2.276.0.76.4.999"])}
		with data.tim.operator_settings.allowed_organization_types as ["1.2.276.0.76.4.999"]
}
