package directory

import "errors"

// ValidateIK checks an Institutionskennzeichen as gematik's provider API requires for insurance domains:
// nine digits, classification prefix 10, 16 or 95, and the check digit (ninth digit) computed from digits
// 3–8 by the Modulo-10 method with weights 2-1-2-1-2-1 on the digit sums of the products (ARGE IK,
// Gemeinsames Rundschreiben IK). Lists in the wild carry IKs that fail it (test data); the check applies
// when a domain is registered, never when a signed list is read.
func ValidateIK(ik string) error {
	if len(ik) != 9 {
		return errors.New("IK must have exactly 9 digits")
	}
	for i := 0; i < 9; i++ {
		if ik[i] < '0' || ik[i] > '9' {
			return errors.New("IK must consist of digits only")
		}
	}
	switch ik[:2] {
	case "10", "16", "95":
	default:
		return errors.New("IK must start with 10, 16 or 95")
	}
	sum := 0
	for i, w := 2, 2; i < 8; i++ {
		p := int(ik[i]-'0') * w
		sum += p/10 + p%10
		w = 3 - w // 2,1,2,1,2,1
	}
	if byte('0'+sum%10) != ik[8] {
		return errors.New("IK check digit is wrong")
	}
	return nil
}
