package certs

import "encoding/asn1"

// Algorithm and curve identifiers.
var (
	OIDPublicKeyECDSA = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	OIDPublicKeyRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}

	OIDCurveBrainpoolP256r1 = asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7}
	OIDCurveBrainpoolP384r1 = asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 11}
	OIDCurveBrainpoolP512r1 = asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 13}
	OIDCurveP256            = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	OIDCurveP384            = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	OIDCurveP521            = asn1.ObjectIdentifier{1, 3, 132, 0, 35}

	OIDSignatureECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	OIDSignatureECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	OIDSignatureECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	OIDSignatureSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	OIDSignatureSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	OIDSignatureSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	OIDSignatureRSAPSS          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	OIDDigestSHA256             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	OIDDigestSHA384             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	OIDDigestSHA512             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	OIDDigestSHA1               = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	OIDMGF1                     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
)

// X.509 extension identifiers.
var (
	OIDExtSubjectKeyID         = asn1.ObjectIdentifier{2, 5, 29, 14}
	OIDExtKeyUsage             = asn1.ObjectIdentifier{2, 5, 29, 15}
	OIDExtSubjectAltName       = asn1.ObjectIdentifier{2, 5, 29, 17}
	OIDExtBasicConstraints     = asn1.ObjectIdentifier{2, 5, 29, 19}
	OIDExtCertificatePolicies  = asn1.ObjectIdentifier{2, 5, 29, 32}
	OIDExtAuthorityKeyID       = asn1.ObjectIdentifier{2, 5, 29, 35}
	OIDExtExtendedKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 37}
	OIDExtAuthorityInfoAccess  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	OIDExtAdmission            = asn1.ObjectIdentifier{1, 3, 36, 8, 3, 3}
	OIDExtOCSPNoCheck          = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	OIDAccessMethodOCSP        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
	OIDAccessMethodCAIssuers   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 2}
	OIDExtKeyUsageServerAuth   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	OIDExtKeyUsageClientAuth   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	OIDExtKeyUsageEmailProtect = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}
	OIDExtKeyUsageOCSPSigning  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}
)

// CertificateType is a TI certificate profile, identified by a certificate policy OID (gemSpec_OID,
// GS-A_4445). Type detection uses the policy, never the issuer name.
type CertificateType string

// TI certificate types.
const (
	CertHPAUT   CertificateType = "C.HP.AUT"   // eHBA authentication (practitioner)
	CertHPENC   CertificateType = "C.HP.ENC"   // eHBA encryption
	CertHPQES   CertificateType = "C.HP.QES"   // eHBA qualified signature
	CertHCIAUT  CertificateType = "C.HCI.AUT"  // SMC-B authentication (institution)
	CertHCIENC  CertificateType = "C.HCI.ENC"  // SMC-B encryption
	CertHCIOSIG CertificateType = "C.HCI.OSIG" // SMC-B organisational signature
	CertCHAUT   CertificateType = "C.CH.AUT"   // eGK authentication (insured person)
	CertFDSIG   CertificateType = "C.FD.SIG"   // Fachdienst signature (IDP, VZD, RegService)
	CertFDAUT   CertificateType = "C.FD.AUT"   // Fachdienst authentication
	CertFDTLSS  CertificateType = "C.FD.TLS-S" // Fachdienst TLS server
	CertFDTLSC  CertificateType = "C.FD.TLS-C" // Fachdienst TLS client
)

// certificateTypeOIDs maps policy OIDs to certificate types (GemLibPki CertificateType).
var certificateTypeOIDs = map[string]CertificateType{
	"1.2.276.0.76.4.72":  CertHPQES,
	"1.2.276.0.76.4.74":  CertHPENC,
	"1.2.276.0.76.4.75":  CertHPAUT,
	"1.2.276.0.76.4.76":  CertHCIENC,
	"1.2.276.0.76.4.77":  CertHCIAUT,
	"1.2.276.0.76.4.78":  CertHCIOSIG,
	"1.2.276.0.76.4.70":  CertCHAUT,
	"1.2.276.0.76.4.203": CertFDSIG,
	"1.2.276.0.76.4.155": CertFDAUT,
	"1.2.276.0.76.4.169": CertFDTLSS,
	"1.2.276.0.76.4.168": CertFDTLSC,
}

// CertificateTypeOID returns the policy OID of a certificate type, or "" when unknown.
func CertificateTypeOID(t CertificateType) string {
	for oid, ct := range certificateTypeOIDs {
		if ct == t {
			return oid
		}
	}
	return ""
}

// Well-known admission role and profession OIDs (gemSpec_OID GS-A_4442/4443/4446).
const (
	RoleVZDTI                = "1.2.276.0.76.4.171" // oid_vzd_ti: federation-list signer
	RoleIDPDienst            = "1.2.276.0.76.4.260" // IDP-Dienst: IDP signing keys
	RoleTIM                  = "1.2.276.0.76.4.294" // oid_tim: RegService-OpenID-Token signer
	RoleTSLDienst            = "1.2.276.0.76.4.189"
	ProfessionVersicherter   = "1.2.276.0.76.4.49" // insured person (eGK), never a professional
	ProfessionArzt           = "1.2.276.0.76.4.30"
	InstitutionKostentraeger = "1.2.276.0.76.4.59" // Betriebsstätte Kostenträger: only ePA org registration
	InstitutionTIMAnbieter   = "1.2.276.0.76.4.295"
)

// ProfessionKind classifies an admission OID.
type ProfessionKind string

// Kinds of admission OIDs.
const (
	KindPerson      ProfessionKind = "person"      // HBA holder (GS-A_4442), excluding insured persons
	KindInstitution ProfessionKind = "institution" // SMC-B holder (GS-A_4443)
	KindInsured     ProfessionKind = "insured"     // eGK holder
	KindTechnical   ProfessionKind = "technical"   // component role (GS-A_4446)
	KindUnknown     ProfessionKind = "unknown"
)

// professions lists every admission OID timstack knows, by last arc under 1.2.276.0.76.4.
var professions = map[int]struct {
	kind ProfessionKind
	name string
}{
	30: {KindPerson, "Ärztin/Arzt"}, 31: {KindPerson, "Zahnärztin/Zahnarzt"}, 32: {KindPerson, "Apotheker/-in"},
	33: {KindPerson, "Apothekerassistent/-in"}, 34: {KindPerson, "Pharmazieingenieur/-in"},
	35: {KindPerson, "pharmazeutisch-technische/-r Assistent/-in"},
	36: {KindPerson, "pharmazeutisch-kaufmännische/-r Angestellte"}, 37: {KindPerson, "Apothekenhelfer/-in"},
	38: {KindPerson, "Apothekenassistent/-in"}, 39: {KindPerson, "Pharmazeutische/-r Assistent/-in"},
	40: {KindPerson, "Apothekenfacharbeiter/-in"}, 41: {KindPerson, "Pharmaziepraktikant/-in"},
	42: {KindPerson, "Stud.pharm./Famulant/-in"}, 43: {KindPerson, "PTA-Praktikant/-in"},
	44: {KindPerson, "PKA Auszubildende/-r"}, 45: {KindPerson, "Psychotherapeut/-in"},
	46: {KindPerson, "Psychologische/-r Psychotherapeut/-in"},
	47: {KindPerson, "Kinder- und Jugendlichenpsychotherapeut/-in"}, 48: {KindPerson, "Rettungsassistent/-in"},
	49:  {KindInsured, "Versicherte/-r"},
	178: {KindPerson, "Notfallsanitäter/-in"}, 232: {KindPerson, "Gesundheits- und (Kinder)Krankenpfleger/-in"},
	233: {KindPerson, "Altenpfleger/-in"}, 234: {KindPerson, "Pflegefachfrau/-mann"}, 235: {KindPerson, "Hebamme"},
	236: {KindPerson, "Physiotherapeut/-in"}, 237: {KindPerson, "Augenoptiker/-in/Optometrist/-in"},
	238: {KindPerson, "Hörakustiker/-in"}, 239: {KindPerson, "Orthopädieschuhmacher/-in"},
	240: {KindPerson, "Orthopädietechniker/-in"}, 241: {KindPerson, "Zahntechniker/-in"},
	274: {KindPerson, "Ergotherapeut/-in"}, 275: {KindPerson, "Logopäde/-in"}, 276: {KindPerson, "Podologe/-in"},
	277: {KindPerson, "Ernährungstherapie"},

	50: {KindInstitution, "Betriebsstätte Arzt"}, 51: {KindInstitution, "Zahnarztpraxis"},
	52: {KindInstitution, "Betriebsstätte Psychotherapeut"}, 53: {KindInstitution, "Krankenhaus"},
	54: {KindInstitution, "Öffentliche Apotheke"}, 55: {KindInstitution, "Krankenhausapotheke"},
	56: {KindInstitution, "Bundeswehrapotheke"}, 57: {KindInstitution, "Mobile Einrichtung Rettungsdienst"},
	58: {KindInstitution, "Betriebsstätte gematik"}, 59: {KindInstitution, "Betriebsstätte Kostenträger"},
	187: {KindInstitution, "LEO Vertragszahnärzte"}, 190: {KindInstitution, "AdV-Umgebung bei Kostenträger"},
	210: {KindInstitution, "LEO Kassenärztliche Vereinigung"}, 223: {KindInstitution, "GKV-Spitzenverband"},
	224: {KindInstitution, "Apothekerverband"}, 225: {KindInstitution, "DAV"},
	226: {KindInstitution, "Krankenhaus-Mitgliedsverband"}, 227: {KindInstitution, "DKTIG"},
	228: {KindInstitution, "DKG"}, 229: {KindInstitution, "BÄK"}, 230: {KindInstitution, "Ärztekammer"},
	231: {KindInstitution, "Zahnärztekammer"}, 242: {KindInstitution, "KBV"}, 243: {KindInstitution, "BZÄK"},
	244: {KindInstitution, "KZBV"}, 245: {KindInstitution, "Gesundheits-, Kranken- und Altenpflege"},
	246: {KindInstitution, "Geburtshilfe"}, 247: {KindInstitution, "Physiotherapie"},
	248: {KindInstitution, "Augenoptiker"}, 249: {KindInstitution, "Hörakustiker"},
	250: {KindInstitution, "Orthopädieschuhmacher"}, 251: {KindInstitution, "Orthopädietechniker"},
	252: {KindInstitution, "Zahntechniker"}, 253: {KindInstitution, "Rettungsleitstelle"},
	254: {KindInstitution, "Sanitätsdienst Bundeswehr"}, 255: {KindInstitution, "ÖGD"},
	256: {KindInstitution, "Arbeitsmedizin"}, 257: {KindInstitution, "Vorsorge/Reha"},
	262: {KindInstitution, "Pflegeberatung §7a SGB XI"}, 263: {KindInstitution, "Psychotherapeutenkammer"},
	264: {KindInstitution, "BPtK"}, 265: {KindInstitution, "Landesapothekerkammer"},
	266: {KindInstitution, "Bundesapothekerkammer"}, 267: {KindInstitution, "eGBR"},
	268: {KindInstitution, "Handwerkskammer"}, 269: {KindInstitution, "Register für Gesundheitsdaten"},
	270: {KindInstitution, "Abrechnungsdienstleister"}, 271: {KindInstitution, "PKV-Verband"},
	273: {KindInstitution, "ePA KTR-Zugriffsautorisierung"}, 278: {KindInstitution, "Ergotherapiepraxis"},
	279: {KindInstitution, "Logopädische Praxis"}, 280: {KindInstitution, "Podologiepraxis"},
	281: {KindInstitution, "Ernährungstherapeutische Praxis"}, 282: {KindInstitution, "DiGA-Hersteller"},
	284: {KindInstitution, "Weitere Kostenträger"}, 285: {KindInstitution, "Weitere Organisationen der Gesundheitsversorgung"},
	286: {KindInstitution, "KIM-Hersteller/-Anbieter"}, 292: {KindInstitution, "NCPeH"},
	295: {KindInstitution, "TIM-Hersteller und -Anbieter"},

	171: {KindTechnical, "VZD-TI"}, 189: {KindTechnical, "TSL-Dienst"}, 259: {KindTechnical, "E-Rezept"},
	260: {KindTechnical, "IDP-Dienst"}, 294: {KindTechnical, "TI-Messenger"},
}

const professionPrefix = "1.2.276.0.76.4."

// ClassifyProfessionOID says what kind of holder an admission OID names; an OID outside the gematik
// tables is KindUnknown and must be refused wherever a profession is required.
func ClassifyProfessionOID(oid string) (ProfessionKind, string) {
	if len(oid) <= len(professionPrefix) || oid[:len(professionPrefix)] != professionPrefix {
		return KindUnknown, ""
	}
	arc := 0
	for _, c := range oid[len(professionPrefix):] {
		if c < '0' || c > '9' || arc > 1<<20 {
			return KindUnknown, ""
		}
		arc = arc*10 + int(c-'0')
	}
	p, ok := professions[arc]
	if !ok {
		return KindUnknown, ""
	}
	return p.kind, p.name
}
