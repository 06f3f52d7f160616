# Settings the operator configures (policy.Config), as the other modules read them. Go always supplies every
# key in data.tim.settings (policy.Config.Defaults); the modules read them directly, without per-decision
# merging, because this lookup sits on every decision's path.
package tim.config

settings := data.tim.settings

# pro is TI-M Pro (practitioners and organisations), epa is TI-M ePA (insured persons).
pro if data.tim.settings.variant == "pro"

epa if data.tim.settings.variant == "epa"

# local_domain reports whether domain is our own server name.
local_domain(domain) if lower(domain) == data.tim.settings.server_name
