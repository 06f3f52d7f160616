# TI-M ePA duties (tim-proxy-spec §3.11): insured persons never meet in public, never find each other and never
# invite each other.
package tim.epa

# Rules compare input fields with constants directly, so that OPA's rule index skips every rule that cannot
# apply; the ePA-only ones sit behind one comparison of data.tim.settings.variant (config.epa, a rule reference,
# would be evaluated for each).

import data.tim.federation
import data.tim.invite
import data.tim.room

# A_25705, AF_10233: no insured-to-insured invites. Not limited to the ePA variant: whichever Fachdienst sees such
# an invite refuses it, so a Pro deployment in the path fails closed too.
deny contains "epa_insured_to_insured" if {
	invite.is_invite
	federation.insured(input.actor.domain)
	federation.insured(input.target.domain)
}

# The rules below hold in the ePA variant only; one comparison decides for all of them (the wasm build has no
# rule index: with the comparison in each rule, Pro paid an evaluation per rule).
deny contains reason if {
	data.tim.settings.variant == "epa"
	some reason in epa_only
}

epa_only contains "epa_public_room" if {
	input.action == "room_create"
	room.public
}

# knock_restricted is a knock as well; fail closed on it.
epa_only contains "epa_join_rule_public_or_knock" if {
	input.action == "room_create"
	open_join_rule
}

epa_only contains "epa_join_rule_public_or_knock" if {
	input.action == "state_event"
	input.room.state_event_type == "m.room.join_rules"
	open_join_rule
}

open_join_rule if input.room.join_rule == "public"

open_join_rule if input.room.join_rule == "knock"

open_join_rule if input.room.join_rule == "knock_restricted"

epa_only contains "epa_world_readable" if {
	input.action == "room_create"
	input.room.history_visibility == "world_readable"
}

epa_only contains "epa_world_readable" if {
	input.action == "state_event"
	input.room.state_event_type == "m.room.history_visibility"
	input.room.history_visibility == "world_readable"
}

# A_28587
epa_only contains "epa_public_rooms_directory" if {
	input.action == "public_rooms"
	not room.federation_surface
}

epa_only contains "epa_profile_no_shared_room" if {
	input.action == "profile"
	not input.request.shares_room
	not own_profile
}

# A_26375: the user directory answers, but finds nobody.
obligations["empty_result"] if {
	data.tim.settings.variant == "epa"
	input.action == "user_directory"
}

own_profile if input.actor.user_id == input.target.user_id
