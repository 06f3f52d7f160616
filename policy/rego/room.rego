# Room, version and event restrictions (tim-proxy-spec §3.2, §3.10) and the client rules that are not about
# federation or invites.
package tim.room

import data.tim.config

# public holds for a room that is or becomes public: createRoom visibility or preset, or a public join rule.
public if input.room.visibility == "public"

public if input.room.preset == "public_chat"

public if input.room.join_rule == "public"

# A_26202, A_26203: only the allowed room versions, at creation and upgrade.
deny contains "room_version_not_allowed" if {
	input.action == "room_create"
	version := input.room.version
	version != ""
	not version in data.tim.settings.allowed_room_versions
}

# An upgrade without a new version is not a valid request either.
deny contains "room_version_not_allowed" if {
	input.action == "room_upgrade"
	not upgrade_version_allowed
}

upgrade_version_allowed if input.room.version in data.tim.settings.allowed_room_versions

# A_26248: a createRoom without room_version gets the default version.
obligations["room_version"] := data.tim.settings.default_room_version if {
	input.action == "room_create"
	not stated("version")
}

# stated reports whether the request set the room field.
stated(field) if input.room[field] != ""

# A_28596
deny contains "room_type_forbidden" if {
	input.action == "room_create"
	input.room.type == "de.gematik.tim.roomtype.default.v2"
}

# A_25368-01
deny contains "createroom_too_many_invites" if {
	input.action == "room_create"
	input.room.invite_count > data.tim.settings.max_invites
}

# A_25324-01: private rooms are encrypted.
deny contains "private_room_unencrypted" if {
	input.action == "room_create"
	not public
	not input.room.encrypted
}

# A_26515-01: Pro public rooms stay local.
obligations["force_federate_false"] if {
	data.tim.settings.variant == "pro"
	input.action == "room_create"
	public
	not input.room.federate == false
}

# A_28271: no making a Pro room public after creation.
deny contains "pro_join_rule_public" if {
	data.tim.settings.variant == "pro"
	input.action == "state_event"
	input.room.state_event_type == "m.room.join_rules"
	input.room.join_rule == "public"
}

# A_25481: history visibility "invited" unless the client chose one.
obligations["history_visibility"] := "invited" if {
	input.action == "room_create"
	not stated("history_visibility")
}

# A_26515-01 (Famedly's reading): no local joins to remote public rooms without an invite.
deny contains "remote_public_room" if {
	input.action == "join"
	input.room.join_rule == "public"
	not input.room.invited
	input.room.creator_domain != ""
	not config.local_domain(input.room.creator_domain)
}

# A_25395-02: threads are not supported.
deny contains "thread_relation" if {
	input.action == "send_event"
	input.event.rel_type == "m.thread"
}

# A_26228-01: a reaction is an annotation with exactly one emoji (Go does the grapheme analysis).
deny contains "reaction_not_single_emoji" if {
	input.action == "send_event"
	input.event.type == "m.reaction"
	not valid_reaction
}

valid_reaction if {
	input.event.rel_type == "m.annotation"
	input.event.key_is_single_emoji == true
}

# A_28358: redactions within the maximum age; server administrators are exempt.
deny contains "redaction_too_old" if {
	input.action == "redact"
	input.event.age_ms > data.tim.settings.redaction_max_age_ms
	not input.actor.admin
}

deny contains "status_msg_too_long" if {
	input.action == "presence"
	input.request.status_msg_length > data.tim.settings.status_msg_max
}

deny contains "guest_registration" if {
	input.action == "register"
	input.request.register_kind == "guest"
}

# A_26289: profiles only for authenticated callers.
deny contains "profile_unauthenticated" if {
	input.action == "profile"
	not authenticated
}

# A_26518: the client room directory needs authentication.
deny contains "public_rooms_unauthenticated" if {
	input.action == "public_rooms"
	not federation_surface
	not authenticated
}

# A_26520, A_28590: no room directory over federation.
deny contains "federation_public_rooms" if {
	input.action == "public_rooms"
	federation_surface
}

authenticated if input.request.authenticated == true

federation_surface if input.request.surface == "federation"
