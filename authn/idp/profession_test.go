package idp

import (
	"errors"
	"testing"
)

func TestCheckProfession(t *testing.T) {
	const (
		arzt        = "1.2.276.0.76.4.30"
		hebamme     = "1.2.276.0.76.4.235"
		versicherte = "1.2.276.0.76.4.49"
		praxis      = "1.2.276.0.76.4.50"
		apotheke    = "1.2.276.0.76.4.54"
		kostentr    = "1.2.276.0.76.4.59"
		idpDienst   = "1.2.276.0.76.4.260"
		invalid     = "1.2.276.0.76.1"
		unknownArc  = "1.2.276.0.76.4.9999"
	)
	for _, tc := range []struct {
		name string
		oid  string
		use  Use
		ok   bool
	}{
		{"a physician may log in to Matrix", arzt, UseMatrixLogin, true},
		{"a pharmacy may log in to Matrix", apotheke, UseMatrixLogin, true},
		{"an insured person may not log in to TI-Messenger Pro", versicherte, UseMatrixLogin, false},
		{"a technical role may not log in to Matrix", idpDienst, UseMatrixLogin, false},
		{"an invalid profession OID is refused", invalid, UseMatrixLogin, false},
		{"an unknown arc under the gematik branch is refused", unknownArc, UseMatrixLogin, false},
		{"a medical practice may register an organisation", praxis, UseOrgRegistrationPro, true},
		{"a Kostenträger may register a Pro organisation", kostentr, UseOrgRegistrationPro, true},
		{"a physician's HBA may not register an organisation", arzt, UseOrgRegistrationPro, false},
		{"an insured person may not register an organisation", versicherte, UseOrgRegistrationPro, false},
		{"a Kostenträger may register an ePA organisation", kostentr, UseOrgRegistrationEPA, true},
		{"a pharmacy may not register an ePA organisation", apotheke, UseOrgRegistrationEPA, false},
		{"a midwife may maintain her own directory entry", hebamme, UsePractitionerOwner, true},
		{"an SMC-B may not act as a practitioner", praxis, UsePractitionerOwner, false},
		{"an insured person may not act as a practitioner", versicherte, UsePractitionerOwner, false},
		{"an unknown use is refused", arzt, Use("anything"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckProfession(&Identity{ProfessionOID: tc.oid}, tc.use)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrProfessionRefused) {
				t.Errorf("got %v, want ErrProfessionRefused", err)
			}
		})
	}
	t.Run("a nil identity is refused", func(t *testing.T) {
		if err := CheckProfession(nil, UseMatrixLogin); !errors.Is(err, ErrProfessionRefused) {
			t.Errorf("got %v", err)
		}
	})
}
