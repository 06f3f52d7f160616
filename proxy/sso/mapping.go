package sso

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Mapping modes.
const (
	// MappingTable gives an account only to the cards listed in the table.
	MappingTable = "table"
	// MappingTelematikID derives the localpart from the Telematik-ID (table entries still override).
	MappingTelematikID = "telematik_id"
)

// ErrNotMapped means no Matrix account is mapped to the card's identity.
var ErrNotMapped = errors.New("no Matrix account is mapped to this card")

// MappingConfig says which Matrix account a smartcard identity logs into. The key is (Telematik-ID,
// profession OID) and never the token's sub: sub is pairwise per IDP client and changes with the client
// registration, the Telematik-ID stays with the card holder.
type MappingConfig struct {
	// Mode is MappingTable (default) or MappingTelematikID.
	Mode string `yaml:"mode"`
	// Users are explicit entries; the first entry matching both fields wins.
	Users []MappedUser `yaml:"users"`
}

// MappedUser maps one card identity to a localpart.
type MappedUser struct {
	TelematikID string `yaml:"telematik_id"`
	// ProfessionOID, when set, must equal the card's first profession OID; empty matches any.
	ProfessionOID string `yaml:"profession_oid"`
	Localpart     string `yaml:"localpart"`
}

// localpartRE is the Matrix v1.11 user ID grammar for new localparts.
var localpartRE = regexp.MustCompile(`^[a-z0-9._=\-/+]{1,200}$`)

// Validate checks the mapping at start-up; errors name the field.
func (m *MappingConfig) Validate() error {
	switch m.Mode {
	case "":
		m.Mode = MappingTable
	case MappingTable, MappingTelematikID:
	default:
		return fmt.Errorf("mapping.mode: %q is neither %q nor %q", m.Mode, MappingTable, MappingTelematikID)
	}
	seen := map[string]bool{}
	for i, u := range m.Users {
		if strings.TrimSpace(u.TelematikID) == "" {
			return fmt.Errorf("mapping.users[%d].telematik_id: required", i)
		}
		if !localpartRE.MatchString(u.Localpart) {
			return fmt.Errorf("mapping.users[%d].localpart: %q is not a valid Matrix localpart", i, u.Localpart)
		}
		key := u.TelematikID + "\x00" + u.ProfessionOID
		if seen[key] {
			return fmt.Errorf("mapping.users[%d]: duplicate entry for telematik_id %q", i, u.TelematikID)
		}
		seen[key] = true
	}
	if m.Mode == MappingTable && len(m.Users) == 0 {
		return errors.New("mapping.users: mode table needs at least one entry (or use mode telematik_id)")
	}
	return nil
}

// Localpart returns the localpart for a card identity.
func (m *MappingConfig) Localpart(telematikID, professionOID string) (string, error) {
	if telematikID == "" {
		return "", ErrNotMapped
	}
	for _, u := range m.Users {
		if u.TelematikID == telematikID && (u.ProfessionOID == "" || u.ProfessionOID == professionOID) {
			return u.Localpart, nil
		}
	}
	if m.Mode != MappingTelematikID {
		return "", ErrNotMapped
	}
	lp := EncodeLocalpart(telematikID)
	if !localpartRE.MatchString(lp) {
		return "", fmt.Errorf("%w: Telematik-ID too long for a localpart", ErrNotMapped)
	}
	return lp, nil
}

// EncodeLocalpart maps an arbitrary string to a Matrix localpart injectively, as the Matrix specification's
// appendix "Mapping from other character sets" suggests: an upper-case letter becomes "_" and its lower
// case, "_" becomes "__", and any other character outside [a-z0-9.\-/] becomes "=" and two hex digits per
// UTF-8 byte. Distinct Telematik-IDs ("1-HBA-x" and "1-hba-x") thus never share an account.
func EncodeLocalpart(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte('_')
			b.WriteByte(c + ('a' - 'A'))
		case c == '_':
			b.WriteString("__")
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '/':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02x", c)
		}
	}
	return b.String()
}
