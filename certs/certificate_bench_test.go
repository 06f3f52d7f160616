package certs

import "testing"

// BenchmarkParseCertificate parses a brainpoolP256r1 SMC-B card certificate, the kind every smartcard login
// and OCSP response brings along.
func BenchmarkParseCertificate(b *testing.B) {
	der := mustCert(b, gematikPath("pki", "cards", "80276883110000129068-2-C_SMCB_HCI_AUT_E256", "cert.pem")).Raw
	b.ReportAllocs()
	b.SetBytes(int64(len(der)))
	for b.Loop() {
		if _, err := ParseCertificate(der); err != nil {
			b.Fatal(err)
		}
	}
}
