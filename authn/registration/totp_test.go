package registration

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// RFC 6238 Appendix B, SHA-1 column: the seed is the ASCII string "12345678901234567890", eight digits.
func TestTOTPMatchesRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	cases := []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	}
	for _, tc := range cases {
		got := HOTP(secret, TOTPStepAt(time.Unix(tc.unix, 0)), 8)
		if got != tc.want {
			t.Errorf("T=%d: got %s, want %s", tc.unix, got, tc.want)
		}
		if six := TOTPAt(secret, time.Unix(tc.unix, 0)); six != tc.want[2:] {
			t.Errorf("T=%d six digits: got %s, want %s", tc.unix, six, tc.want[2:])
		}
	}
}

// RFC 4226 Appendix D: HOTP values for counters 0…9.
func TestHOTPMatchesRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		if got := HOTP([]byte("12345678901234567890"), int64(i), 6); got != w {
			t.Errorf("counter %d: got %s, want %s", i, got, w)
		}
	}
}

func TestVerifyTOTP(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	cur := TOTPStepAt(now)
	code := func(step int64) string { return HOTP(secret, step, 6) }
	cases := []struct {
		name     string
		code     string
		last     int64
		wantStep int64
		wantErr  bool
	}{
		{"the current step's code is accepted", code(cur), 0, cur, false},
		{"the previous step's code is accepted (clock drift)", code(cur - 1), 0, cur - 1, false},
		{"the next step's code is accepted (clock drift)", code(cur + 1), 0, cur + 1, false},
		{"a code two steps old is refused", code(cur - 2), 0, 0, true},
		{"a code two steps ahead is refused", code(cur + 2), 0, 0, true},
		{"a step already used is refused again", code(cur), cur, 0, true},
		{"an older step than the one last used is refused", code(cur - 1), cur, 0, true},
		{"a later step after a used one is accepted", code(cur + 1), cur, cur + 1, false},
		{"a wrong code is refused", "000000", 0, 0, true},
		{"a short code is refused", "12345", 0, 0, true},
		{"a non-numeric code is refused", "12a456", 0, 0, true},
		{"spaces around the code are tolerated", " " + code(cur) + " ", 0, cur, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			step, err := VerifyTOTP(secret, tc.code, now, tc.last)
			if tc.wantErr {
				if !errors.Is(err, ErrTOTPInvalid) {
					t.Fatalf("err = %v, want ErrTOTPInvalid", err)
				}
				return
			}
			if err != nil || step != tc.wantStep {
				t.Fatalf("step %d err %v, want %d", step, err, tc.wantStep)
			}
		})
	}
}

func TestTOTPURIIsScannable(t *testing.T) {
	u := TOTPURI("timstack", "1-SMC-B-Test", []byte("12345678901234567890"))
	for _, want := range []string{"otpauth://totp/timstack:1-SMC-B-Test?", "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "period=30", "digits=6", "algorithm=SHA1"} {
		if !strings.Contains(u, want) {
			t.Errorf("%s lacks %s", u, want)
		}
	}
}
