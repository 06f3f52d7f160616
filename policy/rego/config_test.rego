package tim.config_test

import data.tim.config

test_defaults_apply_without_settings if {
	config.settings.max_invites == 1 with data.tim.settings as {}
	config.pro with data.tim.settings as {}
	not config.epa with data.tim.settings as {}
}

test_given_settings_override_defaults if {
	config.settings.status_msg_max == 10 with data.tim.settings as {"status_msg_max": 10}
	config.epa with data.tim.settings as {"variant": "epa"}
	not config.pro with data.tim.settings as {"variant": "epa"}
}

test_local_domain_ignores_case if {
	config.local_domain("PRO.example") with data.tim.settings as {"server_name": "pro.example"}
	not config.local_domain("other.example") with data.tim.settings as {"server_name": "pro.example"}
}
