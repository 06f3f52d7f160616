# Federation membership (AF_10064-02, A_25534, A_25537): every domain taking part must be on the verified
# federation list, and a list that is stale or missing blocks everything that involves another domain.
package tim.federation

import data.tim.config

# federated reports whether domain is on the federation list. data.tim.federation.domains is an object keyed by
# lower-case domain (a keyed lookup, not a scan), filled by Go from the verified list.
federated(domain) if data.tim.federation.domains[lower(domain)]

# insured reports whether domain belongs to a health insurance (isInsurance), which makes its users insured
# persons (ePA). There is no per-user flag.
insured(domain) if data.tim.federation.domains[lower(domain)].isInsurance == true

deny contains "origin_not_federated" if {
	input.action == "federation_inbound"
	not origin_federated
}

deny contains "origin_not_federated" if {
	input.action == "federation_invite"
	not origin_federated
}

deny contains "destination_not_federated" if {
	input.action == "federation_outbound"
	not destination_federated
}

# A_26328: media paths name a server; its media is served only if it federates with us.
deny contains "media_server_not_federated" if {
	input.action == "media_remote"
	not media_server_federated
}

# Helper rules rather than `not federated(input.x)`: a missing field must deny, and the rule is undefined for
# it, where the call's argument would be hoisted out of the negation and make the deny rule undefined instead.
# They look the list up themselves instead of calling federated(): this is the hottest path of all, and a
# function call is a third of its cost.
origin_federated if data.tim.federation.domains[lower(input.origin)]

destination_federated if data.tim.federation.domains[lower(input.destination)]

media_server_federated if data.tim.federation.domains[lower(input.request.media_server)]

# data.tim.federation.status is "fresh", "stale" or "unavailable"; Go maps anything else to "unavailable"
# (policy.Engine.SetFederation), so both rules compare with a constant and the rule index skips them when the
# list is fresh.
deny contains "federation_list_stale" if {
	data.tim.federation.status == "stale"
	involves_other_domain
}

deny contains "federation_list_unavailable" if {
	data.tim.federation.status == "unavailable"
	involves_other_domain
}

involves_other_domain if input.action == "federation_inbound"

involves_other_domain if input.action == "federation_outbound"

involves_other_domain if input.action == "federation_invite"

involves_other_domain if {
	some domain in named_domains
	domain != ""
	not config.local_domain(domain)
}

# named_domains are the domains an input names; one that is not ours means the action reaches another domain.
named_domains contains input.origin

named_domains contains input.destination

named_domains contains input.actor.domain

named_domains contains input.target.domain

named_domains contains input.request.media_server

named_domains contains input.room.creator_domain

named_domains contains input.peer.domain
