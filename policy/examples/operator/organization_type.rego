# Example operator module: federate only with domains whose organisation types in the directory (VZD) include an
# allowed one. Copy it into the folder named by policy.operator_dir and edit the list below, or set
# operator_settings.allowed_organization_types in the policy configuration.
#
# Operator modules live in package tim.operator.<name> and add reasons to their deny set; data.tim.decision
# collects them. Go fills input.peer.organization_types from the directory before evaluating.
package tim.operator.organization_type

# Organisation type codes (gemSpec_OID professionOID) admitted when operator_settings names none.
default allowed := {
	"1.2.276.0.76.4.50", # Betriebsstätte Arzt
	"1.2.276.0.76.4.51", # Zahnarztpraxis
	"1.2.276.0.76.4.53", # Krankenhaus
	"1.2.276.0.76.4.54", # Öffentliche Apotheke
	"1.2.276.0.76.4.59", # Kostenträger
}

allowed := {t | some t in configured} if {
	configured := data.tim.operator_settings.allowed_organization_types
}

# The rule applies to whatever reaches another domain's organisation: federation traffic and invites.
actions := {"federation_inbound", "federation_outbound", "invite", "federation_invite"}

deny contains "organization_type_not_allowed" if {
	input.action in actions
	count(input.peer.organization_types) > 0
	not any_allowed
}

any_allowed if {
	some t in input.peer.organization_types
	t in allowed
}
