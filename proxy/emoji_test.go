package proxy

import "testing"

func TestIsSingleEmoji(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"a thumbs up is one emoji", "👍", true},
		{"a thumbs up with skin tone is one emoji", "👍🏽", true},
		{"a heart with variation selector is one emoji", "❤️", true},
		{"a ZWJ family is one emoji", "👩‍👩‍👧", true},
		{"a technologist ZWJ sequence is one emoji", "👩🏻‍💻", true},
		{"a flag is one emoji", "🇩🇪", true},
		{"a keycap is one emoji", "1️⃣", true},
		{"a subdivision flag is one emoji", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", true},
		{"two emoji are refused", "👍👍", false},
		{"an emoji with text is refused", "👍 ok", false},
		{"plain text is refused", "ok", false},
		{"a digit alone is refused", "1", false},
		{"an empty key is refused", "", false},
		{"a lone regional indicator is refused", "🇩", false},
		{"three regional indicators are refused", "🇩🇪🇦", false},
		{"a dangling joiner is refused", "👍\u200d", false},
		{"invalid UTF-8 is refused", "\xff", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isSingleEmoji(tc.in); got != tc.want {
				t.Errorf("isSingleEmoji(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
