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

# list_status is data.tim.federation.status: "fresh", "stale" or "unavailable"; anything else, or nothing, counts
# as unavailable.
default list_status := "unavailable"

list_status := data.tim.federation.status

deny contains "origin_not_federated" if {
	input.action == "federation_inbound"
	not federated(object.get(input, "origin", ""))
}

deny contains "origin_not_federated" if {
	input.action == "federation_invite"
	not federated(object.get(input, "origin", ""))
}

deny contains "destination_not_federated" if {
	input.action == "federation_outbound"
	not federated(object.get(input, "destination", ""))
}

# A_26328: media paths name a server; its media is served only if it federates with us.
deny contains "media_server_not_federated" if {
	input.action == "media_remote"
	not federated(object.get(input, ["request", "media_server"], ""))
}

deny contains "federation_list_stale" if {
	list_status == "stale"
	involves_other_domain
}

deny contains "federation_list_unavailable" if {
	list_status != "fresh"
	list_status != "stale"
	involves_other_domain
}

federation_actions := {"federation_inbound", "federation_outbound", "federation_invite"}

involves_other_domain if input.action in federation_actions

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
