# The one entry point: data.tim.decision is {"allow", "reasons", "obligations"}. Every rule that fires names
# itself in reasons; the request is allowed only when none did. Status codes are Go's business.
package tim.decision

default allow := false

allow if count(reasons) == 0

reasons contains reason if some reason in data.tim.federation.deny

reasons contains reason if some reason in data.tim.invite.deny

reasons contains reason if some reason in data.tim.room.deny

reasons contains reason if some reason in data.tim.epa.deny

# Operator modules (package tim.operator.<name>) add reasons through their own deny set.
reasons contains reason if {
	some reason in data.tim.operator[_].deny
	is_string(reason)
}

obligations[name] := value if some name, value in data.tim.room.obligations

obligations[name] := value if some name, value in data.tim.epa.obligations
