package tim.config_test

import data.tim.config
import data.tim.fixtures_test as fx

test_variant_selects_pro_or_epa if {
	config.pro with data.tim.settings as fx.pro
	not config.epa with data.tim.settings as fx.pro
	config.epa with data.tim.settings as fx.epa
	not config.pro with data.tim.settings as fx.epa
}

test_settings_are_the_given_settings if {
	config.settings.status_msg_max == 250 with data.tim.settings as fx.pro
}

test_local_domain_ignores_case if {
	config.local_domain("PRO.example") with data.tim.settings as fx.pro
	not config.local_domain("other.example") with data.tim.settings as fx.pro
}

test_nothing_is_local_without_settings if {
	not config.local_domain("pro.example") with data.tim.settings as {}
}
