package certs

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

// Name is a distinguished name with the attributes TI certificates use pulled out.
type Name struct {
	RDNs pkix.RDNSequence

	CommonName         string
	SerialNumber       string
	Organization       string
	OrganizationalUnit []string
	Country            string
	Locality           string
	PostalCode         string
	Street             string
	GivenName          string
	Surname            string
}

// Distinguished-name attribute types (X.520) used by TI certificates.
var (
	oidAttrCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidAttrSurname      = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidAttrSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidAttrCountry      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidAttrLocality     = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidAttrState        = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidAttrStreet       = asn1.ObjectIdentifier{2, 5, 4, 9}
	oidAttrOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidAttrOrgUnit      = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidAttrTitle        = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidAttrPostalCode   = asn1.ObjectIdentifier{2, 5, 4, 17}
	oidAttrGivenName    = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidAttrEmail        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

var attributeNames = []struct {
	oid   asn1.ObjectIdentifier
	short string
}{
	{oidAttrCommonName, "CN"},
	{oidAttrSurname, "SN"},
	{oidAttrSerialNumber, "serialNumber"},
	{oidAttrCountry, "C"},
	{oidAttrLocality, "L"},
	{oidAttrState, "ST"},
	{oidAttrStreet, "street"},
	{oidAttrOrganization, "O"},
	{oidAttrOrgUnit, "OU"},
	{oidAttrTitle, "title"},
	{oidAttrPostalCode, "postalCode"},
	{oidAttrGivenName, "GN"},
	{oidAttrEmail, "emailAddress"},
}

func shortName(oid asn1.ObjectIdentifier) string {
	for _, a := range attributeNames {
		if a.oid.Equal(oid) {
			return a.short
		}
	}
	return oid.String()
}

// ParseName decodes a DER Name (RDNSequence). Attribute values must be strings.
func ParseName(der []byte) (Name, error) {
	var n Name
	rest, err := asn1.Unmarshal(der, &n.RDNs)
	if err != nil {
		return n, fmt.Errorf("name: %w", err)
	}
	if len(rest) != 0 {
		return n, errors.New("name: trailing data")
	}
	for _, rdn := range n.RDNs {
		for _, atv := range rdn {
			v, ok := atv.Value.(string)
			if !ok {
				return n, fmt.Errorf("name: attribute %s is not a string", atv.Type)
			}
			switch shortName(atv.Type) {
			case "CN":
				n.CommonName = v
			case "serialNumber":
				n.SerialNumber = v
			case "O":
				n.Organization = v
			case "OU":
				n.OrganizationalUnit = append(n.OrganizationalUnit, v)
			case "C":
				n.Country = v
			case "L":
				n.Locality = v
			case "postalCode":
				n.PostalCode = v
			case "street":
				n.Street = v
			case "GN":
				n.GivenName = v
			case "SN":
				n.Surname = v
			}
		}
	}
	return n, nil
}

// String renders the name in RFC 4514 form (most specific RDN first, multi-valued RDNs joined by '+'),
// as `openssl x509 -nameopt RFC2253,-esc_msb` prints it.
func (n Name) String() string {
	var sb strings.Builder
	for i := len(n.RDNs) - 1; i >= 0; i-- {
		if i != len(n.RDNs)-1 {
			sb.WriteByte(',')
		}
		for j, atv := range n.RDNs[i] {
			if j > 0 {
				sb.WriteByte('+')
			}
			sb.WriteString(shortName(atv.Type))
			sb.WriteByte('=')
			v, _ := atv.Value.(string)
			sb.WriteString(escapeDNValue(v))
		}
	}
	return sb.String()
}

func escapeDNValue(v string) string {
	var sb strings.Builder
	for i, r := range v {
		switch {
		case strings.ContainsRune(",+\"\\<>;", r),
			i == 0 && (r == '#' || r == ' '),
			i == len(v)-1 && r == ' ':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}
