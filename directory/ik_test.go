package directory

import "testing"

func TestValidateIK(t *testing.T) {
	tests := []struct {
		ik   string
		ok   bool
		name string
	}{
		{"260326822", false, "the ARGE IK example is valid but its class 26 is not an insurer prefix"},
		{"109500969", true, "a GKV test IK from a gematik eGK card is valid"},
		{"101575519", true, "an IK from gematik's TU federation list is valid"},
		{"104940005", true, "another IK from the TU list is valid"},
		{"101575518", false, "a wrong check digit is refused (TU list test data)"},
		{"109991908", false, "a wrong check digit is refused (TU list test data)"},
		{"10157551", false, "eight digits are refused"},
		{"1015755190", false, "ten digits are refused"},
		{"10157551x", false, "a letter is refused"},
		{"201575519", false, "class 20 is not an insurer prefix"},
		{"", false, "an empty IK is refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateIK(tc.ik)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateIK(%q) = %v, want ok=%v", tc.ik, err, tc.ok)
			}
		})
	}
}
