package registration

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 defaults, which every authenticator app understands): HMAC-SHA1, 30 s steps,
// six digits. The secret is 20 bytes, the HMAC-SHA1 block-size recommendation of RFC 4226 §4.
const (
	TOTPStep      = 30 * time.Second
	TOTPDigits    = 6
	TOTPSecretLen = 20
	// TOTPSkew is how many steps before and after the current one are accepted (clock drift of the phone).
	TOTPSkew = 1
)

// ErrTOTPInvalid is returned when a code matches no acceptable step, or only steps already used.
var ErrTOTPInvalid = errors.New("totp: code invalid or already used")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a fresh random secret.
func NewTOTPSecret() ([]byte, error) {
	s := make([]byte, TOTPSecretLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("totp: %w", err)
	}
	return s, nil
}

// TOTPSecretBase32 renders a secret as authenticator apps expect it (RFC 4648 base32, no padding).
func TOTPSecretBase32(secret []byte) string { return b32.EncodeToString(secret) }

// TOTPStepAt is the RFC 6238 time counter T = floor(unix / 30).
func TOTPStepAt(t time.Time) int64 { return t.Unix() / int64(TOTPStep/time.Second) }

// HOTP computes the RFC 4226 value for counter with digits digits, HMAC-SHA1.
func HOTP(secret []byte, counter int64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// TOTPAt is the six-digit code for the step containing t.
func TOTPAt(secret []byte, t time.Time) string { return HOTP(secret, TOTPStepAt(t), TOTPDigits) }

// VerifyTOTP checks code against the steps around now (±TOTPSkew) that are newer than lastStep, and returns
// the matching step. The caller must persist it as the new lastStep (conditionally, so that two concurrent
// uses of one code cannot both succeed): a step once used is never accepted again (RFC 6238 §5.2).
func VerifyTOTP(secret []byte, code string, now time.Time, lastStep int64) (int64, error) {
	code = strings.TrimSpace(code)
	if len(code) != TOTPDigits || strings.Trim(code, "0123456789") != "" {
		return 0, ErrTOTPInvalid
	}
	cur := TOTPStepAt(now)
	match := int64(-1)
	// Every candidate is computed and compared in constant time so the answer time does not say which
	// step matched.
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		if subtle.ConstantTimeCompare([]byte(HOTP(secret, s, TOTPDigits)), []byte(code)) == 1 && s > lastStep && match < 0 {
			match = s
		}
	}
	if match < 0 {
		return 0, ErrTOTPInvalid
	}
	return match, nil
}

// TOTPURI is the otpauth:// key URI authenticator apps scan (Google Authenticator Key Uri Format).
func TOTPURI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer + ":" + account)
	q := url.Values{}
	q.Set("secret", TOTPSecretBase32(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(TOTPDigits))
	q.Set("period", fmt.Sprint(int(TOTPStep/time.Second)))
	return "otpauth://totp/" + label + "?" + q.Encode()
}
