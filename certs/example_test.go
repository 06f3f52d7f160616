package certs_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/timstack/timstack/certs"
)

// Verifying gematik's signed TU federation list against the component CA that issued its signer, at a time
// inside the signer's validity, and looking up a domain.
func ExampleVerifyFederationList() {
	trust, err := certs.LoadTrustStoreDir("../testdata/gematik/pki/ca")
	if err != nil {
		panic(err)
	}
	jws, err := os.ReadFile("../testdata/gematik/vzd/samples/federationList-TU-v1650.jws")
	if err != nil {
		panic(err)
	}
	list, err := certs.VerifyFederationList(context.Background(), jws, certs.FederationListOptions{
		Trust: trust,
		At:    time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
		// Revocation: &certs.OCSPChecker{Trust: trust}, in production (OCSP "require").
	})
	if err != nil {
		panic(err)
	}
	d, ok := list.Lookup("one-bob.ujumbelabs.com")
	fmt.Println(list.Version, list.Len(), list.Signer.Subject.CommonName)
	fmt.Println(ok, d.TelematikID, d.IsInsurance)
	// Output:
	// 1650 277 VZD-FHIR-FList-Signer
	// true 1-SMC-B-Testkarte--883110000153155 false
}

// Reading who a smartcard certificate belongs to: certificate type, Telematik-ID and profession.
func ExampleParseCertificatePEMOrDER() {
	data, err := os.ReadFile("../testdata/gematik/pki/cards/80276883110000129084-2-C_HP_AUT_E256/cert.pem")
	if err != nil {
		panic(err)
	}
	c, err := certs.ParseCertificatePEMOrDER(data)
	if err != nil {
		panic(err)
	}
	kind, name := certs.ClassifyProfessionOID(c.ProfessionOIDs()[0])
	fmt.Println(c.CertificateType(), c.TelematikID(), c.Curve())
	fmt.Println(c.ProfessionOIDs()[0], kind, name)
	// Output:
	// C.HP.AUT 1-HBA-Testkarte-883110000129084 brainpoolP256r1
	// 1.2.276.0.76.4.30 person Ärztin/Arzt
}
