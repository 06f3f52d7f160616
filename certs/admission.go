package certs

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Admission is the Common PKI / ISIS-MTT Admission extension (1.3.36.8.3.3). In TI card certificates it
// carries the profession ("Ärztin/Arzt", OID 1.2.276.0.76.4.30) and the Telematik-ID as registration number.
type Admission struct {
	// AuthorityRaw is the DER of the optional outer admissionAuthority GeneralName (RSA HBAs carry one).
	AuthorityRaw []byte
	Contents     []Admissions
}

// Admissions is one entry of contentsOfAdmissions.
type Admissions struct {
	ProfessionInfos []ProfessionInfo
}

// ProfessionInfo holds one profession of the holder.
type ProfessionInfo struct {
	ProfessionItems    []string
	ProfessionOIDs     []string
	RegistrationNumber string
}

// first returns contentsOfAdmissions[0].professionInfos[0], the entry gematik's IDP reads.
func (a *Admission) first() *ProfessionInfo {
	if a == nil || len(a.Contents) == 0 || len(a.Contents[0].ProfessionInfos) == 0 {
		return nil
	}
	return &a.Contents[0].ProfessionInfos[0]
}

// ParseAdmission decodes the extension value (the content of the extnValue OCTET STRING).
func ParseAdmission(der []byte) (*Admission, error) {
	a := &Admission{}
	in := cryptobyte.String(der)
	var syntax cryptobyte.String
	if !in.ReadASN1(&syntax, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("admission: malformed AdmissionSyntax")
	}
	// admissionAuthority is a GeneralName: always context-tagged, so anything but a universal SEQUENCE.
	if !syntax.Empty() && !syntax.PeekASN1Tag(cbasn1.SEQUENCE) {
		var auth cryptobyte.String
		var tag cbasn1.Tag
		if !syntax.ReadAnyASN1Element(&auth, &tag) {
			return nil, errors.New("admission: malformed admissionAuthority")
		}
		a.AuthorityRaw = auth
	}
	var contents cryptobyte.String
	if !syntax.ReadASN1(&contents, cbasn1.SEQUENCE) || !syntax.Empty() {
		return nil, errors.New("admission: malformed contentsOfAdmissions")
	}
	for !contents.Empty() {
		var adm cryptobyte.String
		if !contents.ReadASN1(&adm, cbasn1.SEQUENCE) {
			return nil, errors.New("admission: malformed Admissions")
		}
		for _, tag := range []cbasn1.Tag{cbasn1.Tag(0).Constructed().ContextSpecific(), cbasn1.Tag(1).Constructed().ContextSpecific()} {
			if !adm.SkipOptionalASN1(tag) {
				return nil, errors.New("admission: malformed admissionAuthority/namingAuthority")
			}
		}
		var infos cryptobyte.String
		if !adm.ReadASN1(&infos, cbasn1.SEQUENCE) || !adm.Empty() {
			return nil, errors.New("admission: malformed professionInfos")
		}
		var entry Admissions
		for !infos.Empty() {
			pi, err := parseProfessionInfo(&infos)
			if err != nil {
				return nil, err
			}
			entry.ProfessionInfos = append(entry.ProfessionInfos, pi)
		}
		a.Contents = append(a.Contents, entry)
	}
	return a, nil
}

func parseProfessionInfo(s *cryptobyte.String) (ProfessionInfo, error) {
	var pi ProfessionInfo
	var info cryptobyte.String
	if !s.ReadASN1(&info, cbasn1.SEQUENCE) {
		return pi, errors.New("admission: malformed ProfessionInfo")
	}
	if !info.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return pi, errors.New("admission: malformed namingAuthority")
	}
	var items cryptobyte.String
	if !info.ReadASN1(&items, cbasn1.SEQUENCE) {
		return pi, errors.New("admission: malformed professionItems")
	}
	for !items.Empty() {
		str, err := readDirectoryString(&items)
		if err != nil {
			return pi, fmt.Errorf("admission: professionItem: %w", err)
		}
		pi.ProfessionItems = append(pi.ProfessionItems, str)
	}
	if info.PeekASN1Tag(cbasn1.SEQUENCE) {
		var oids cryptobyte.String
		info.ReadASN1(&oids, cbasn1.SEQUENCE)
		for !oids.Empty() {
			var oid asn1.ObjectIdentifier
			if !oids.ReadASN1ObjectIdentifier(&oid) {
				return pi, errors.New("admission: malformed professionOID")
			}
			pi.ProfessionOIDs = append(pi.ProfessionOIDs, oid.String())
		}
	}
	if !info.Empty() && !info.PeekASN1Tag(cbasn1.OCTET_STRING) {
		str, err := readDirectoryString(&info)
		if err != nil {
			return pi, fmt.Errorf("admission: registrationNumber: %w", err)
		}
		pi.RegistrationNumber = str
	}
	if !info.SkipOptionalASN1(cbasn1.OCTET_STRING) || !info.Empty() {
		return pi, errors.New("admission: trailing data in ProfessionInfo")
	}
	return pi, nil
}

// readDirectoryString reads one of the ASN.1 string types allowed in DirectoryString (and, leniently,
// IA5String, which some issuers use for registration numbers).
func readDirectoryString(s *cryptobyte.String) (string, error) {
	var val cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&val, &tag) {
		return "", errors.New("malformed string")
	}
	return decodeASN1String(tag, val)
}

func decodeASN1String(tag cbasn1.Tag, val []byte) (string, error) {
	switch tag {
	case cbasn1.UTF8String:
		if !utf8.Valid(val) {
			return "", errors.New("invalid UTF8String")
		}
		return string(val), nil
	case cbasn1.PrintableString, cbasn1.IA5String, cbasn1.Tag(18): // 18: NumericString
		for _, b := range val {
			if b >= utf8.RuneSelf {
				return "", errors.New("non-ASCII byte in ASCII string")
			}
		}
		return string(val), nil
	case cbasn1.T61String: // decoded as Latin-1, as most implementations do
		r := make([]rune, len(val))
		for i, b := range val {
			r[i] = rune(b)
		}
		return string(r), nil
	case cbasn1.Tag(30): // BMPString, UCS-2 big endian
		if len(val)%2 != 0 {
			return "", errors.New("odd-length BMPString")
		}
		u := make([]uint16, len(val)/2)
		for i := range u {
			u[i] = uint16(val[2*i])<<8 | uint16(val[2*i+1])
		}
		return string(utf16.Decode(u)), nil
	}
	return "", fmt.Errorf("unsupported string type %d", tag)
}

// MarshalAdmission encodes an Admission extension value (used by the test CA).
func MarshalAdmission(a *Admission) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if len(a.AuthorityRaw) > 0 {
			b.AddBytes(a.AuthorityRaw)
		}
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, adm := range a.Contents {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, pi := range adm.ProfessionInfos {
							addProfessionInfo(b, pi)
						}
					})
				})
			}
		})
	})
	return b.Bytes()
}

func addProfessionInfo(b *cryptobyte.Builder, pi ProfessionInfo) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, item := range pi.ProfessionItems {
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(item)) })
			}
		})
		if len(pi.ProfessionOIDs) > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, o := range pi.ProfessionOIDs {
					oid, err := ParseOID(o)
					if err != nil {
						b.SetError(err)
						return
					}
					b.AddASN1ObjectIdentifier(oid)
				}
			})
		}
		if pi.RegistrationNumber != "" {
			b.AddASN1(cbasn1.PrintableString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(pi.RegistrationNumber)) })
		}
	})
}

// ParseOID parses dotted-decimal notation ("1.2.276.0.76.4.30").
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	n, digits := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 {
				return nil, fmt.Errorf("invalid OID %q", s)
			}
			oid = append(oid, n)
			n, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || n > 1<<28 {
			return nil, fmt.Errorf("invalid OID %q", s)
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if len(oid) < 2 || oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("invalid OID %q", s)
	}
	return oid, nil
}
