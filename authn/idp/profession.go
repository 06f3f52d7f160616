package idp

import (
	"fmt"

	"github.com/timstack/timstack/certs"
)

// Use names what an identity is about to be used for; each use has its own profession allow-list (§7.5).
type Use string

// Uses.
const (
	// UseMatrixLogin admits persons (HBA professions, never the insured 1.2.276.0.76.4.49) and institutions
	// (SMC-B) to a TI-Messenger Pro login.
	UseMatrixLogin Use = "matrix-login"
	// UseOrgRegistrationPro admits institution OIDs (GS-A_4443) to register an organisation (AF_10103).
	UseOrgRegistrationPro Use = "org-registration-pro"
	// UseOrgRegistrationEPA admits only Betriebsstätte Kostenträger (1.2.276.0.76.4.59) to register an
	// organisation for TI-Messenger ePA.
	UseOrgRegistrationEPA Use = "org-registration-epa"
	// UsePractitionerOwner admits persons (HBA, never the insured) to maintain their own directory entry.
	UsePractitionerOwner Use = "practitioner-owner"
)

// CheckProfession applies the profession policy of use to id. It classifies id.ProfessionOID itself rather
// than trusting id.Kind, so a hand-built Identity cannot widen the policy. The error wraps
// ErrProfessionRefused.
func CheckProfession(id *Identity, use Use) error {
	if id == nil {
		return fmt.Errorf("%w: no identity", ErrProfessionRefused)
	}
	kind, name := certs.ClassifyProfessionOID(id.ProfessionOID)
	refuse := func(why string) error {
		return fmt.Errorf("%w: %s %s (%s, %q) for %s", ErrProfessionRefused, why, id.ProfessionOID, kind, name, use)
	}
	switch {
	case kind == certs.KindUnknown:
		return refuse("unknown profession OID")
	case kind == certs.KindInsured || id.ProfessionOID == certs.ProfessionVersicherter:
		return refuse("insured person, not a professional:")
	}
	switch use {
	case UseMatrixLogin:
		if kind == certs.KindPerson || kind == certs.KindInstitution {
			return nil
		}
		return refuse("neither a practitioner nor an institution:")
	case UseOrgRegistrationPro:
		if kind == certs.KindInstitution {
			return nil
		}
		return refuse("not an institution:")
	case UseOrgRegistrationEPA:
		if id.ProfessionOID == certs.InstitutionKostentraeger {
			return nil
		}
		return refuse("ePA organisations must be Betriebsstätte Kostenträger, not")
	case UsePractitionerOwner:
		if kind == certs.KindPerson {
			return nil
		}
		return refuse("not a practitioner:")
	default:
		return fmt.Errorf("%w: unknown use %q", ErrProfessionRefused, use)
	}
}
