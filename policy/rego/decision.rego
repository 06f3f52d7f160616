# The one entry point: data.tim.decision is {"allow", "reasons", "obligations"}. Every rule that fires names
# itself in reasons; the request is allowed only when none did. Status codes are Go's business.
package tim.decision

default allow := false

allow if count(reasons) == 0

reasons contains reason if some reason in data.tim.federation.deny

# A module is asked only about the actions it has rules for: most decisions are federation checks, and
# skipping the modules that cannot fire for them saves a large part of the evaluation. The lists are literal
# sets because a reference to a rule costs an evaluation of its own. The module tests evaluate every deny case
# through this entry point as well, so an action missing here fails them.
reasons contains reason if {
	input.action in {"invite", "federation_invite", "room_create"}
	some reason in data.tim.invite.deny
}

reasons contains reason if {
	input.action in {
		"room_create", "room_upgrade", "state_event", "send_event", "redact", "presence", "register", "profile",
		"public_rooms", "join",
	}
	some reason in data.tim.room.deny
}

reasons contains reason if {
	input.action in {"invite", "federation_invite", "room_create", "state_event", "public_rooms", "profile", "user_directory"}
	some reason in data.tim.epa.deny
}

# An action no module knows is a bug in the caller. Silence would allow it; deny instead.
reasons contains "policy_error" if not known_action

known_action if input.action in {
	"federation_inbound", "federation_outbound", "room_create", "invite", "federation_invite", "room_upgrade",
	"state_event", "send_event", "redact", "media_remote", "profile", "public_rooms", "user_directory", "presence",
	"register", "join",
}

# Operator modules (package tim.operator.<name>) add reasons through their own deny set.
reasons contains reason if {
	some reason in data.tim.operator[_].deny
	is_string(reason)
}

# Obligations exist for createRoom and the user directory only; the equality lets the rule index skip these
# rules for every other action.
obligations[name] := value if {
	input.action == "room_create"
	some name, value in data.tim.room.obligations
}

obligations[name] := value if {
	input.action == "user_directory"
	some name, value in data.tim.epa.obligations
}
