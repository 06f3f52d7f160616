# Invites (AF_10061-04, AF_10104-03, A_26021-01): both parties federated, and a local invitee's permission
# configuration (§3.5 of the proxy notes) admits the inviter.
package tim.invite

import data.tim.federation

# is_invite holds for the actions that carry an inviter (actor) and an invitee (target). createRoom invites only
# when its invite list names someone.
is_invite if input.action == "invite"

is_invite if input.action == "federation_invite"

is_invite if {
	input.action == "room_create"
	input.target
}

deny contains "inviter_not_federated" if {
	is_invite
	not inviter_federated
}

deny contains "invitee_not_federated" if {
	is_invite
	not invitee_federated
}

# A missing inviter or invitee is not federated (see federation.rego on helper rules).
inviter_federated if federation.federated(input.actor.domain)

invitee_federated if federation.federated(input.target.domain)

deny contains "invite_not_permitted" if {
	is_invite
	blocked
}

# A remote invitee's configuration is enforced by its own Fachdienst; ours is enforced here. Go always passes
# the local invitee's configuration (the server default when the user has none), so a missing one blocks.
blocked if {
	input.target.local == true
	not input.permission_config
}

blocked if {
	input.permission_config
	not permitted
}

# Exceptions invert the default setting. An unknown default setting permits nobody.
permitted if {
	input.permission_config.defaultSetting == "allow all"
	not exception_matches
}

permitted if {
	input.permission_config.defaultSetting == "block all"
	exception_matches
}

exception_matches if input.permission_config.userExceptions[input.actor.user_id]

exception_matches if {
	some server, _ in input.permission_config.serverExceptions
	lower(server) == lower(input.actor.domain)
}

# Group "isInsuredPerson": the inviter's domain is an insurance on the federation list.
exception_matches if {
	"isInsuredPerson" in input.permission_config.groupExceptions
	federation.insured(input.actor.domain)
}
