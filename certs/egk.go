package certs

// KVNR returns the unchangeable part of the insured person's health-insurance number (Krankenversicherten-
// nummer, one capital letter and nine digits) from an eGK certificate, or "" when there is none.
//
// eGK certificates carry no Telematik-ID (their Admission has no registrationNumber); the KVNR is the stable
// identity of an insured person instead. It sits in a subject OU next to the insurer's IK number, which has
// nine digits and no letter, so the shape tells them apart. A subject with two KVNR-shaped OUs is ambiguous
// and yields "".
func (c *Certificate) KVNR() string {
	found := ""
	for _, ou := range c.Subject.OrganizationalUnit {
		if !cardIsKVNR(ou) {
			continue
		}
		if found != "" && found != ou {
			return ""
		}
		found = ou
	}
	return found
}

func cardIsKVNR(s string) bool {
	if len(s) != 10 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
