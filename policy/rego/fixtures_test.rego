# Shared fixtures for the policy tests: a small federation list, both variants' settings and a few users.
package tim.fixtures_test

domains := {
	"pro.example": {"telematikID": "1-pro", "isInsurance": false, "ik": []},
	"other.example": {"telematikID": "1-other", "isInsurance": false, "ik": []},
	"kasse.example": {"telematikID": "8-kasse", "isInsurance": true, "ik": ["109500969"]},
	"kasse2.example": {"telematikID": "8-kasse2", "isInsurance": true, "ik": ["101575519"]},
}

pro := {
	"variant": "pro",
	"server_name": "pro.example",
	"allowed_room_versions": ["9", "10"],
	"default_room_version": "10",
	"max_invites": 1,
	"redaction_max_age_ms": 86400000,
	"status_msg_max": 250,
}

epa := object.union(pro, {"variant": "epa", "server_name": "kasse.example"})

# alice is local on the Pro server, bob is on another federated Pro server, eve's server is not federated.
alice := {"user_id": "@alice:pro.example", "domain": "pro.example", "local": true}

bob := {"user_id": "@bob:other.example", "domain": "other.example", "local": false}

eve := {"user_id": "@eve:evil.example", "domain": "evil.example", "local": false}

# karl and kim are insured persons on two insurances' servers.
karl := {"user_id": "@karl:kasse.example", "domain": "kasse.example", "local": true}

kim := {"user_id": "@kim:kasse2.example", "domain": "kasse2.example", "local": false}
