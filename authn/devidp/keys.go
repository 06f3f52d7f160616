package devidp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/timstack/timstack/certs"
)

// embedded holds gematik's published TEST-ONLY IDP keys and CA certificates (see gematik/README.md), so the
// binary runs the dev IDP outside the repository.
//
//go:embed gematik/LICENSE gematik/README.md gematik/idp gematik/ca gematik/cards
var embedded embed.FS

// KeyPair is one IDP key with its certificate.
type KeyPair struct {
	Cert *certs.Certificate
	Key  crypto.Signer
}

// Keys are the three keys of an IDP-Dienst: DiscSig signs the discovery document (puk_disc_sig), IDPSig
// signs challenges, codes and tokens (puk_idp_sig), IDPEnc receives the encrypted signed challenge and the
// key_verifier (puk_idp_enc). All three are brainpoolP256r1.
type Keys struct {
	DiscSig, IDPSig, IDPEnc KeyPair
}

// keyDirs names the sub-directories LoadKeys reads, in the layout of testdata/gematik/pki/idp.
var keyDirs = [...]string{"disc_sig", "idp_sig", "idp_enc"}

// LoadKeys reads dir/{disc_sig,idp_sig,idp_enc}/{cert.pem,key.pem}. It checks that each key belongs to its
// certificate and is brainpoolP256r1; New additionally refuses certificates that are not TEST-ONLY.
func LoadKeys(dir string) (*Keys, error) {
	return loadKeys(os.DirFS(dir), ".", dir)
}

// EmbeddedTestKeys returns gematik's published TEST-ONLY ref-IDP keys compiled into the binary.
func EmbeddedTestKeys() (*Keys, error) {
	return loadKeys(embedded, "gematik/idp", "embedded gematik/idp")
}

func loadKeys(fsys fs.FS, root, name string) (*Keys, error) {
	var pairs [len(keyDirs)]KeyPair
	for i, d := range keyDirs {
		certPEM, err := fs.ReadFile(fsys, path.Join(root, d, "cert.pem"))
		if err != nil {
			return nil, fmt.Errorf("devidp: keys %s: %w", name, err)
		}
		keyPEM, err := fs.ReadFile(fsys, path.Join(root, d, "key.pem"))
		if err != nil {
			return nil, fmt.Errorf("devidp: keys %s: %w", name, err)
		}
		kp, err := parseKeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("devidp: keys %s/%s: %w", name, d, err)
		}
		pairs[i] = kp
	}
	return &Keys{DiscSig: pairs[0], IDPSig: pairs[1], IDPEnc: pairs[2]}, nil
}

func parseKeyPair(certPEM, keyPEM []byte) (KeyPair, error) {
	c, err := certs.ParseCertificatePEMOrDER(certPEM)
	if err != nil {
		return KeyPair{}, fmt.Errorf("cert.pem: %w", err)
	}
	k, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return KeyPair{}, fmt.Errorf("key.pem: %w", err)
	}
	if err := matchKey(c, k); err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Cert: c, Key: k}, nil
}

// matchKey refuses a key that does not belong to the certificate: the IDP would otherwise publish a
// certificate for one key and sign with another.
func matchKey(c *certs.Certificate, k crypto.Signer) error {
	pub, err := certs.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return fmt.Errorf("key.pem: %w", err)
	}
	if !bytes.Equal(pub, c.RawSubjectPublicKeyInfo) {
		return errors.New("key.pem does not belong to cert.pem")
	}
	return nil
}

// checkKeys enforces what New needs of the keys: brainpoolP256r1 everywhere (BP256R1, BP-256 ECDH-ES) and
// TEST-ONLY certificates, so that the dev IDP can never speak with a production identity.
func (k *Keys) check() error {
	for _, p := range []struct {
		name string
		kp   KeyPair
	}{{"disc_sig", k.DiscSig}, {"idp_sig", k.IDPSig}, {"idp_enc", k.IDPEnc}} {
		if p.kp.Cert == nil || p.kp.Key == nil {
			return fmt.Errorf("devidp: key %s missing", p.name)
		}
		if !isTestOnly(p.kp.Cert) {
			return fmt.Errorf("devidp: key %s: certificate %q (issuer %q) is not TEST-ONLY; the development IDP refuses production identities",
				p.name, p.kp.Cert.Subject.String(), p.kp.Cert.Issuer.String())
		}
		pub, ok := p.kp.Key.Public().(*ecdsa.PublicKey)
		if !ok || certs.CurveName(pub.Curve) != "brainpoolP256r1" {
			return fmt.Errorf("devidp: key %s: want a brainpoolP256r1 key", p.name)
		}
		if err := matchKey(p.kp.Cert, p.kp.Key); err != nil {
			return fmt.Errorf("devidp: key %s: %w", p.name, err)
		}
	}
	return nil
}

// isTestOnly reports whether the certificate's subject or issuer says TEST-ONLY, gematik's marker of test
// PKI material.
func isTestOnly(c *certs.Certificate) bool {
	return strings.Contains(c.Subject.String(), "TEST-ONLY") || strings.Contains(c.Issuer.String(), "TEST-ONLY")
}

// EmbeddedTestCAs returns gematik's TEST-ONLY issuing CAs compiled into the binary: HBA-CA41/51,
// SMCB-CA41/51, EGK-CA51 (the cards), KOMP-CA10/50/51 (IDP signers) and TSL-CA51.
func EmbeddedTestCAs() ([]*certs.Certificate, error) {
	entries, err := fs.ReadDir(embedded, "gematik/ca")
	if err != nil {
		return nil, fmt.Errorf("devidp: embedded CAs: %w", err)
	}
	var out []*certs.Certificate
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".pem" {
			continue
		}
		data, err := fs.ReadFile(embedded, "gematik/ca/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("devidp: embedded CAs: %w", err)
		}
		c, err := certs.ParseCertificatePEMOrDER(data)
		if err != nil {
			return nil, fmt.Errorf("devidp: embedded CA %s: %w", e.Name(), err)
		}
		out = append(out, c)
	}
	return out, nil
}

// EmbeddedTestTrust returns a new trust store holding EmbeddedTestCAs: what the dev IDP checks cards
// against and what a relying party needs to accept the dev IDP's signers (GEM.KOMP-CA51).
func EmbeddedTestTrust() (*certs.TrustStore, error) {
	cas, err := EmbeddedTestCAs()
	if err != nil {
		return nil, err
	}
	return certs.NewTrustStore(cas...), nil
}

// EmbeddedTestCards returns gematik's published test cards compiled into the binary, by the names of
// smartcard-auth-spec.md §7.8: hba-arzt (HBA Arzt 1.2.276.0.76.4.30), smcb-praxis (…4.50),
// smcb-apotheke (…4.54) and smcb-krankenhaus (…4.53). Pass them as Config.DevIdentities.
func EmbeddedTestCards() (map[string]*Card, error) {
	entries, err := fs.ReadDir(embedded, "gematik/cards")
	if err != nil {
		return nil, fmt.Errorf("devidp: embedded cards: %w", err)
	}
	out := map[string]*Card{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := "gematik/cards/" + e.Name()
		certPEM, err := fs.ReadFile(embedded, dir+"/cert.pem")
		if err != nil {
			return nil, fmt.Errorf("devidp: embedded card %s: %w", e.Name(), err)
		}
		keyPEM, err := fs.ReadFile(embedded, dir+"/key.pem")
		if err != nil {
			return nil, fmt.Errorf("devidp: embedded card %s: %w", e.Name(), err)
		}
		kp, err := parseKeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("devidp: embedded card %s: %w", e.Name(), err)
		}
		out[e.Name()] = &Card{Cert: kp.Cert, Key: kp.Key}
	}
	return out, nil
}
