package tim.invite_test

import data.tim.decision
import data.tim.fixtures_test as fx
import data.tim.invite

allow_all := {"defaultSetting": "allow all", "userExceptions": {}, "serverExceptions": {}, "groupExceptions": []}

block_all := {"defaultSetting": "block all", "userExceptions": {}, "serverExceptions": {}, "groupExceptions": []}

# invite_of builds an invite of alice (local) by inviter under permission config pc.
invite_of(inviter, pc) := {"action": "invite", "actor": inviter, "target": fx.alice, "permission_config": pc}

cases := {
	"an invite between federated users is allowed": {
		"input": invite_of(fx.bob, allow_all),
		"want": set(),
	},
	"an inviter from a non-federated server is rejected": {
		"input": invite_of(fx.eve, allow_all),
		"want": {"inviter_not_federated"},
	},
	"an invite without an inviter is rejected": {
		"input": {"action": "invite", "target": fx.alice, "permission_config": allow_all},
		"want": {"inviter_not_federated"},
	},
	"an invitee on a non-federated server is rejected": {
		"input": {"action": "invite", "actor": fx.alice, "target": fx.eve},
		"want": {"invitee_not_federated"},
	},
	"a remote invitee's permission config is left to its own Fachdienst": {
		"input": {"action": "invite", "actor": fx.alice, "target": fx.bob},
		"want": set(),
	},
	"a local invitee without a permission config is protected": {
		"input": {"action": "invite", "actor": fx.bob, "target": fx.alice},
		"want": {"invite_not_permitted"},
	},
	"allow all with the inviter in userExceptions blocks": {
		"input": invite_of(fx.bob, object.union(allow_all, {"userExceptions": {"@bob:other.example": {}}})),
		"want": {"invite_not_permitted"},
	},
	"allow all with another user in userExceptions allows": {
		"input": invite_of(fx.bob, object.union(allow_all, {"userExceptions": {"@carol:other.example": {}}})),
		"want": set(),
	},
	"allow all with the inviter's server in serverExceptions blocks": {
		"input": invite_of(fx.bob, object.union(allow_all, {"serverExceptions": {"Other.Example": {}}})),
		"want": {"invite_not_permitted"},
	},
	"allow all with group isInsuredPerson blocks an insured inviter": {
		"input": invite_of(fx.kim, object.union(allow_all, {"groupExceptions": ["isInsuredPerson"]})),
		"want": {"invite_not_permitted"},
	},
	"allow all with group isInsuredPerson lets a practitioner in": {
		"input": invite_of(fx.bob, object.union(allow_all, {"groupExceptions": ["isInsuredPerson"]})),
		"want": set(),
	},
	"block all without exceptions blocks": {
		"input": invite_of(fx.bob, block_all),
		"want": {"invite_not_permitted"},
	},
	"block all with null exception fields blocks": {
		"input": invite_of(fx.bob, {"defaultSetting": "block all", "userExceptions": null, "serverExceptions": null, "groupExceptions": null}),
		"want": {"invite_not_permitted"},
	},
	"block all with the inviter in userExceptions allows": {
		"input": invite_of(fx.bob, object.union(block_all, {"userExceptions": {"@bob:other.example": {}}})),
		"want": set(),
	},
	"block all with the inviter's server in serverExceptions allows": {
		"input": invite_of(fx.bob, object.union(block_all, {"serverExceptions": {"other.example": {}}})),
		"want": set(),
	},
	"block all with group isInsuredPerson admits an insured inviter": {
		"input": invite_of(fx.kim, object.union(block_all, {"groupExceptions": ["isInsuredPerson"]})),
		"want": set(),
	},
	"block all with group isInsuredPerson still blocks a practitioner": {
		"input": invite_of(fx.bob, object.union(block_all, {"groupExceptions": ["isInsuredPerson"]})),
		"want": {"invite_not_permitted"},
	},
	"an unknown default setting blocks": {
		"input": invite_of(fx.bob, {"defaultSetting": "maybe"}),
		"want": {"invite_not_permitted"},
	},
	"A_26021-01 a federation invite is checked against the local invitee's config": {
		"input": object.union(invite_of(fx.bob, object.union(allow_all, {"userExceptions": {"@bob:other.example": {}}})), {"action": "federation_invite"}),
		"want": {"invite_not_permitted"},
	},
	"createRoom with an invitee is an invite": {
		"input": object.union(invite_of(fx.eve, allow_all), {"action": "room_create"}),
		"want": {"inviter_not_federated"},
	},
	"createRoom without an invitee is no invite": {
		"input": {"action": "room_create", "actor": fx.eve},
		"want": set(),
	},
	"other actions are not invites": {
		"input": {"action": "profile", "actor": fx.eve, "target": fx.alice},
		"want": set(),
	},
}

test_invite[note] if {
	some note, c in cases
	got := invite.deny with input as c.input
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
