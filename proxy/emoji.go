package proxy

import "unicode/utf8"

// isSingleEmoji reports whether s is exactly one emoji as users type it (A_26228-01): one base emoji with
// optional variation selector and skin-tone modifier, a ZWJ sequence of such (👩‍💻), a keycap (1️⃣), a flag
// (two regional indicators) or a subdivision flag (tag sequence). Plain text, two emoji or an emoji with
// trailing text are not.
func isSingleEmoji(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	rs := []rune(s)
	// Flags: exactly two regional indicators.
	if isRegionalIndicator(rs[0]) {
		return len(rs) == 2 && isRegionalIndicator(rs[1])
	}
	// Keycaps: [0-9#*] FE0F? 20E3.
	if rs[0] == '#' || rs[0] == '*' || (rs[0] >= '0' && rs[0] <= '9') {
		switch {
		case len(rs) == 2 && rs[1] == 0x20E3:
			return true
		case len(rs) == 3 && rs[1] == 0xFE0F && rs[2] == 0x20E3:
			return true
		}
		return false
	}
	i := 0
	for {
		// One element: base emoji, then optional FE0F, optional skin tone, optional tag sequence.
		if i >= len(rs) || !isEmojiBase(rs[i]) {
			return false
		}
		i++
		if i < len(rs) && rs[i] == 0xFE0F {
			i++
		}
		if i < len(rs) && rs[i] >= 0x1F3FB && rs[i] <= 0x1F3FF {
			i++
		}
		for i < len(rs) && rs[i] >= 0xE0020 && rs[i] <= 0xE007E {
			i++
			if i < len(rs) && rs[i] == 0xE007F {
				i++
				break
			}
		}
		if i == len(rs) {
			return true
		}
		if rs[i] != 0x200D { // anything but a zero-width joiner ends the single emoji
			return false
		}
		i++
	}
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// isEmojiBase covers the Unicode blocks that hold emoji presentation characters plus the older symbols
// commonly used as emoji (♥, ✔, ☺ …). It errs on the side of the blocks; text characters are outside them.
func isEmojiBase(r rune) bool {
	switch {
	case r >= 0x1F300 && r <= 0x1FAFF: // pictographs, emoticons, transport, supplemental, extended-A
		return true
	case r >= 0x2600 && r <= 0x27BF: // misc symbols, dingbats
		return true
	case r >= 0x2300 && r <= 0x23FF: // misc technical (⌚, ⏰)
		return true
	case r >= 0x2B00 && r <= 0x2BFF: // arrows (⬆, ⭐)
		return true
	case r >= 0x1F000 && r <= 0x1F02F, r >= 0x1F0A0 && r <= 0x1F0FF: // mahjong, cards
		return true
	case r >= 0x1F100 && r <= 0x1F1FF: // enclosed alphanumeric supplement (🅰, 🆗)
		return true
	case r == 0x00A9 || r == 0x00AE || r == 0x203C || r == 0x2049 || r == 0x2122 || r == 0x2139:
		return true
	case r >= 0x2194 && r <= 0x21AA, r == 0x24C2, r >= 0x25AA && r <= 0x25FE, r == 0x3030, r == 0x303D, r == 0x3297, r == 0x3299:
		return true
	}
	return false
}
