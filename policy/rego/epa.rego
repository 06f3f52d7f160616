# TI-M ePA duties (tim-proxy-spec §3.11): insured persons never meet in public, never find each other and never
# invite each other.
package tim.epa

# Rules compare data.tim.settings.variant and input fields with constants directly, so that OPA's rule index
# skips every rule that cannot apply (config.epa, a rule reference, would be evaluated for each).

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

deny contains "epa_public_room" if {
	data.tim.settings.variant == "epa"
	input.action == "room_create"
	room.public
}

# knock_restricted is a knock as well; fail closed on it.
deny contains "epa_join_rule_public_or_knock" if {
	data.tim.settings.variant == "epa"
	input.action == "room_create"
	open_join_rule
}

deny contains "epa_join_rule_public_or_knock" if {
	data.tim.settings.variant == "epa"
	input.action == "state_event"
	input.room.state_event_type == "m.room.join_rules"
	open_join_rule
}

open_join_rule if input.room.join_rule == "public"

open_join_rule if input.room.join_rule == "knock"

open_join_rule if input.room.join_rule == "knock_restricted"

deny contains "epa_world_readable" if {
	data.tim.settings.variant == "epa"
	input.action == "room_create"
	input.room.history_visibility == "world_readable"
}

deny contains "epa_world_readable" if {
	data.tim.settings.variant == "epa"
	input.action == "state_event"
	input.room.state_event_type == "m.room.history_visibility"
	input.room.history_visibility == "world_readable"
}

# A_28587
deny contains "epa_public_rooms_directory" if {
	data.tim.settings.variant == "epa"
	input.action == "public_rooms"
	not room.federation_surface
}

deny contains "epa_profile_no_shared_room" if {
	data.tim.settings.variant == "epa"
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
