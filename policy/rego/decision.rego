# The one entry point: data.tim.decision is {"allow", "reasons", "obligations"}. Every rule that fires names
# itself in reasons; the request is allowed only when none did. Status codes are Go's business.
package tim.decision

# result is the decision as one value: the entrypoint of the wasm build (policy/internal/wasm), which then
# computes these three rules and nothing else of the package.
result := {"allow": allow, "reasons": reasons, "obligations": obligations}

default allow := false

allow if count(reasons) == 0

reasons contains reason if some reason in data.tim.federation.deny

# A module is asked only about the actions it has rules for: most decisions are federation checks, and
# skipping the modules that cannot fire for them saves a large part of the evaluation. The action groups are
# rules comparing with one constant each, not set literals: the wasm build constructs a literal set anew on
# every evaluation (about 40 % of a federation check), topdown's rule index serves either shape. The module
# tests evaluate every deny case through this entry point as well, so an action missing here fails them.
reasons contains reason if {
	invite_action
	some reason in data.tim.invite.deny
}

reasons contains reason if {
	room_action
	some reason in data.tim.room.deny
}

reasons contains reason if {
	epa_action
	some reason in data.tim.epa.deny
}

invite_action if input.action == "invite"

invite_action if input.action == "federation_invite"

invite_action if input.action == "room_create"

room_action if input.action == "room_create"

room_action if input.action == "room_upgrade"

room_action if input.action == "state_event"

room_action if input.action == "send_event"

room_action if input.action == "redact"

room_action if input.action == "presence"

room_action if input.action == "register"

room_action if input.action == "profile"

room_action if input.action == "public_rooms"

room_action if input.action == "join"

epa_action if invite_action

epa_action if input.action == "state_event"

epa_action if input.action == "public_rooms"

epa_action if input.action == "profile"

epa_action if input.action == "user_directory"

# An action no module knows is a bug in the caller. Silence would allow it; deny instead.
reasons contains "policy_error" if not known_action

known_action if invite_action

known_action if room_action

known_action if input.action == "federation_inbound"

known_action if input.action == "federation_outbound"

known_action if input.action == "media_remote"

known_action if input.action == "user_directory"

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
