package generate

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// out appends one resource as compact JSON. Resources are written by hand, not through encoding/json:
// full scale is 2.15M resources and reflection-based marshalling would dominate the run time; the shapes
// are fixed, so a small appender is simpler than maintaining structs for all six profiles.
type out struct{ b []byte }

func (o *out) raw(s string) { o.b = append(o.b, s...) }

// str appends s as a JSON string. Non-ASCII UTF-8 is written as is (JSON allows it; umlauts stay
// readable), control characters, quotes and backslashes are escaped, invalid UTF-8 becomes U+FFFD.
func (o *out) str(s string) {
	o.b = append(o.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				o.b = append(o.b, s[start:i]...)
				o.b = append(o.b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += n
			continue
		}
		o.b = append(o.b, s[start:i]...)
		switch c {
		case '"', '\\':
			o.b = append(o.b, '\\', c)
		case '\n':
			o.b = append(o.b, `\n`...)
		case '\t':
			o.b = append(o.b, `\t`...)
		default:
			o.b = append(o.b, `\u00`...)
			o.b = append(o.b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		}
		i++
		start = i
	}
	o.b = append(o.b, s[start:]...)
	o.b = append(o.b, '"')
}

// field appends ,"key":"value".
func (o *out) field(key, val string) {
	o.b = append(o.b, ',', '"')
	o.b = append(o.b, key...)
	o.b = append(o.b, '"', ':')
	o.str(val)
}

// id appends prefix-NNNNNN (at least six digits, so ids sort in generation order at every scale up to
// full).
func (o *out) id(prefix string, n int) {
	o.b = append(o.b, prefix...)
	o.b = append(o.b, '-')
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], int64(n), 10)
	for k := len(d); k < 6; k++ {
		o.b = append(o.b, '0')
	}
	o.b = append(o.b, d...)
}

// ref appends {"reference":"Type/prefix-N"}.
func (o *out) ref(typ, prefix string, n int) {
	o.raw(`{"reference":"`)
	o.raw(typ)
	o.b = append(o.b, '/')
	o.id(prefix, n)
	o.raw(`"}`)
}

func (o *out) coord(v float64) { o.b = strconv.AppendFloat(o.b, v, 'f', 5, 64) }

func (o *out) time(unix int64) {
	o.b = append(o.b, '"')
	o.b = time.Unix(unix, 0).UTC().AppendFormat(o.b, time.RFC3339)
	o.b = append(o.b, '"')
}

const (
	sysOrigin        = "https://gematik.de/fhir/directory/CodeSystem/Origin"
	sysTelematikID   = "https://gematik.de/fhir/sid/telematik-id"
	sysPractProf     = "https://gematik.de/fhir/directory/CodeSystem/PractitionerProfessionOID"
	sysOrgProf       = "https://gematik.de/fhir/directory/CodeSystem/OrganizationProfessionOID"
	sysConnType      = "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryConnectionType"
	sysPayloadType   = "https://gematik.de/fhir/directory/CodeSystem/EndpointDirectoryPayloadType"
	sysEndpointVisCS = "https://gematik.de/fhir/directory/CodeSystem/EndpointVisibilityCS"
	extEndpointVis   = "https://gematik.de/fhir/directory/StructureDefinition/EndpointVisibility"
	extHolderID      = "https://gematik.de/fhir/directory/StructureDefinition/holder-id-ex"
	extOwnerTID      = "https://gematik.de/fhir/directory/StructureDefinition/OwnerTelematikIdEx"
	sdBase           = "https://gematik.de/fhir/directory/StructureDefinition/"
	tagFdv           = `{"system":"https://gematik.de/fhir/directory/CodeSystem/ResourceTag","code":"fdv-relevant","display":"Relevant for ePA FdV"}`
)

// begin opens a resource: resourceType, id and meta (lastUpdated, Origin tag, Strict profile).
func (o *out) begin(typ, idPrefix string, n int, updated int64, origin, profile string, fdv bool) {
	o.raw(`{"resourceType":"`)
	o.raw(typ)
	o.raw(`","id":"`)
	o.id(idPrefix, n)
	o.raw(`","meta":{"lastUpdated":`)
	o.time(updated)
	o.raw(`,"tag":[{"system":"` + sysOrigin + `","code":"`)
	o.raw(origin)
	o.raw(`"}`)
	if fdv {
		o.raw("," + tagFdv)
	}
	o.raw(`],"profile":["` + sdBase)
	o.raw(profile)
	o.raw(`"]}`)
}

func (o *out) telematikID(v string) {
	o.raw(`{"system":"` + sysTelematikID + `","value":`)
	o.str(v)
	o.raw(`}`)
}

func (o *out) ident(system, v string) {
	o.raw(`{"system":`)
	o.str(system)
	o.raw(`,"value":`)
	o.str(v)
	o.raw(`}`)
}

// ownerExt writes the extension array for a resource: holder-id for synced resources, the owner's
// Telematik-ID for owner-created ones.
func (o *out) ownerExt(owner bool, holder, tid string) {
	if owner {
		o.raw(`,"extension":[{"url":"` + extOwnerTID + `","valueIdentifier":`)
		o.telematikID(tid)
		o.raw(`}]`)
		return
	}
	o.raw(`,"extension":[{"url":"` + extHolderID + `","valueCode":`)
	o.str(holder)
	o.raw(`}]`)
}
