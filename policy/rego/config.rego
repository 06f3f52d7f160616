# Settings the operator configures (policy.Config), as the other modules read them.
package tim.config

# Go always supplies every key (policy.Config.Defaults); these defaults only matter when Rego runs without it
# (a hand-written test, a stripped data file), and then the strict TI-M values apply.
defaults := {
	"variant": "pro",
	"server_name": "",
	"allowed_room_versions": ["9", "10"],
	"default_room_version": "10",
	"max_invites": 1,
	"redaction_max_age_ms": 86400000,
	"status_msg_max": 250,
}

settings := object.union(defaults, given)

default given := {}

given := data.tim.settings

# pro is TI-M Pro (practitioners and organisations), epa is TI-M ePA (insured persons).
pro if settings.variant == "pro"

epa if settings.variant == "epa"

# local_domain reports whether domain is our own server name.
local_domain(domain) if lower(domain) == lower(settings.server_name)
