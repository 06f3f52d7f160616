package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// TSL errors. A TSL that fails its signature check is never partially used.
var (
	// ErrTSLSignature wraps every failure of the XML signature itself: a digest that does not match, a
	// SignedInfo signature that does not verify, a shape we refuse (unknown algorithms or transforms,
	// references that do not cover the document).
	ErrTSLSignature = errors.New("TSL signature invalid")
	// ErrTSLStale means the list is past its NextUpdate (or closed, without one): TUC_PKI_001 requires a
	// current list, so the caller must fetch a new one or stop trusting it.
	ErrTSLStale = errors.New("TSL is past its NextUpdate")
)

// OIDExtKeyUsageTSLSigning is id-tsl-kp-tslSigning (ETSI TS 102 231): a TSL-CA may issue other certificates
// too, so only this extended key usage makes a certificate a TSL signer.
var OIDExtKeyUsageTSLSigning = asn1.ObjectIdentifier{0, 4, 0, 2231, 3, 0}

// TSL service type and status URIs (ETSI TS 102 231) that change what timstack trusts.
const (
	ServiceTypeCA   = "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"
	ServiceTypeOCSP = "http://uri.etsi.org/TrstSvc/Svctype/Certstatus/OCSP"

	tslStatusInAccord = "http://uri.etsi.org/TrstSvc/Svcstatus/inaccord"
	tslStatusRevoked  = "http://uri.etsi.org/TrstSvc/Svcstatus/revoked"
)

const (
	tslNS      = "http://uri.etsi.org/02231/v2#"
	tslDSigNS  = "http://www.w3.org/2000/09/xmldsig#"
	tslXAdESNS = "http://uri.etsi.org/01903/v1.3.2#"

	tslAlgExcC14N   = "http://www.w3.org/2001/10/xml-exc-c14n#"
	tslAlgC14N10    = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
	tslAlgEnveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	tslAlgSHA256    = "http://www.w3.org/2001/04/xmlenc#sha256"

	tslRefSignedProperties = "http://uri.etsi.org/01903#SignedProperties"

	// tslMaxSize bounds the input: the production ECC-RSA TSL is a few MB; anything far larger is not a TSL
	// and would only cost memory.
	tslMaxSize = 32 << 20
)

// TSL is a verified Trust-service Status List: the issuing CAs and OCSP responders gematik vouches for.
type TSL struct {
	SequenceNumber int
	IssueDate      time.Time
	// NextUpdate is zero for a closed list; CheckFresh refuses such a list.
	NextUpdate time.Time
	// Anchors are the issuing CAs of CA/PKC services, one per certificate. A certificate listed by several
	// services appears once, with the union of their permitted types and OCSP URLs.
	Anchors []*Anchor
	// OCSPResponders are the certificates of Certstatus/OCSP services in status "inaccord".
	OCSPResponders []*Certificate
	// Signer is the verified TSL signer certificate.
	Signer *Certificate
	// Skipped counts certificates of CA and OCSP services that were left out: unparseable (unsupported
	// algorithms, malformed DER) or in a service whose status timstack does not understand.
	Skipped int
}

// TSLOptions say whom a TSL must be signed by.
type TSLOptions struct {
	// SignerTrust holds the TSL-signer CAs (GEM.TSL-CA<n>). It must be configured separately from the TSL:
	// a TSL cannot vouch for its own signer.
	SignerTrust *TrustStore
	// At is the time at which the signer's chain is checked. It is deliberately separate from freshness
	// (CheckFresh): the signer certificate outlives many lists, and a stale list can still be read, for
	// example to replay a recorded flow with a fixed clock.
	At time.Time
}

// ParseTSL verifies the enveloped XAdES signature of a TSL and returns its content.
//
// The signature must cover the whole document (a Reference with URI "" and the enveloped-signature
// transform) and the XAdES SignedProperties, use SHA-256 digests, and be made by a certificate with the
// TSL-signing extended key usage that chains to opts.SignerTrust at opts.At. The content is read from the
// same tree the digest was computed over, so nothing outside the signed bytes can be smuggled in (XML
// signature wrapping). Freshness is not judged here: call CheckFresh.
func ParseTSL(data []byte, opts TSLOptions) (*TSL, error) {
	if opts.SignerTrust == nil {
		return nil, errors.New("tsl: no signer trust store configured")
	}
	if opts.At.IsZero() {
		return nil, errors.New("tsl: no time given for the signer check")
	}
	root, sig, ids, err := tslReadDocument(data)
	if err != nil {
		return nil, fmt.Errorf("tsl: %w", err)
	}
	signer, extra, err := tslVerifySignature(root, sig, ids)
	if err != nil {
		return nil, fmt.Errorf("tsl: %w", err)
	}
	if !slices.ContainsFunc(signer.ExtKeyUsage, OIDExtKeyUsageTSLSigning.Equal) {
		return nil, fmt.Errorf("tsl: signer %q: %w: not a TSL signer (no id-tsl-kp-tslSigning)", signer.Subject.String(), ErrKeyUsage)
	}
	if _, err := opts.SignerTrust.Verify(context.Background(), signer, VerifyOptions{
		At:            opts.At,
		Intermediates: extra,
		KeyUsage:      KeyUsageContentCommitment,
	}); err != nil {
		return nil, fmt.Errorf("tsl: signer: %w", err)
	}
	t, err := tslExtract(root)
	if err != nil {
		return nil, fmt.Errorf("tsl: %w", err)
	}
	t.Signer = signer
	return t, nil
}

// CheckFresh reports ErrTSLStale when now is past NextUpdate, or when the list is closed (no NextUpdate).
func (t *TSL) CheckFresh(now time.Time) error {
	if t.NextUpdate.IsZero() {
		return fmt.Errorf("tsl %d: %w: closed list without NextUpdate", t.SequenceNumber, ErrTSLStale)
	}
	if now.After(t.NextUpdate) {
		return fmt.Errorf("tsl %d: %w: NextUpdate %s is before %s", t.SequenceNumber, ErrTSLStale,
			t.NextUpdate.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// TrustStore returns a new store holding the TSL's anchors and OCSP responders.
func (t *TSL) TrustStore() *TrustStore {
	s := NewTrustStore()
	s.AddTSL(t)
	return s
}

// AddTSL adds the anchors and OCSP responders of a verified TSL. The anchors are copied, so later changes
// to the TSL value do not reach the store.
func (s *TrustStore) AddTSL(t *TSL) {
	for _, a := range t.Anchors {
		cp := *a
		cp.PermittedTypes = slices.Clone(a.PermittedTypes)
		cp.OCSPURLs = slices.Clone(a.OCSPURLs)
		s.AddAnchor(&cp)
	}
	for _, r := range t.OCSPResponders {
		if !s.IsTrustedOCSPResponder(r) {
			s.AddOCSPResponder(r)
		}
	}
}

// AddTSLFile verifies the TSL in file against the signer CAs in anchorDir (PEM) at `at` and adds its CAs.
// A TSL past its NextUpdate (checked against now) is refused unless allowStale — the switch for gematik's
// long-expired test TSL, never for production.
func (s *TrustStore) AddTSLFile(file, anchorDir string, at, now time.Time, allowStale bool) error {
	anchors, err := LoadTrustStoreDir(anchorDir)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	tsl, err := ParseTSL(data, TSLOptions{SignerTrust: anchors, At: at})
	if err != nil {
		return err
	}
	if err := tsl.CheckFresh(now); err != nil && !allowStale {
		return err
	}
	s.AddTSL(tsl)
	return nil
}

// tslReadDocument parses the XML and finds the one enveloped signature. It refuses DOCTYPEs (entity
// tricks), top-level content other than the root (which the URI "" digest would not see the same way), and
// documents with more or fewer than one ds:Signature, so there is no second signature to confuse with the
// verified one.
func tslReadDocument(data []byte) (root, sig *etree.Element, ids map[string][]*etree.Element, err error) {
	if len(data) > tslMaxSize {
		return nil, nil, nil, fmt.Errorf("document larger than %d bytes", tslMaxSize)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, nil, nil, fmt.Errorf("xml: %w", err)
	}
	for _, tok := range doc.Child {
		switch tok := tok.(type) {
		case *etree.Element:
			if root != nil {
				return nil, nil, nil, errors.New("xml: more than one root element")
			}
			root = tok
		case *etree.ProcInst:
			if tok.Target != "xml" {
				return nil, nil, nil, fmt.Errorf("xml: unexpected processing instruction %q", tok.Target)
			}
		case *etree.CharData:
			if !tok.IsWhitespace() {
				return nil, nil, nil, errors.New("xml: text outside the root element")
			}
		case *etree.Comment:
		default:
			return nil, nil, nil, fmt.Errorf("xml: unexpected %T outside the root element", tok)
		}
	}
	if root == nil {
		return nil, nil, nil, errors.New("xml: no root element")
	}
	if root.Tag != "TrustServiceStatusList" || root.NamespaceURI() != tslNS {
		return nil, nil, nil, fmt.Errorf("xml: root element is %q, not a TrustServiceStatusList", root.FullTag())
	}
	ids = map[string][]*etree.Element{}
	var sigs []*etree.Element
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		if id := el.SelectAttrValue("Id", ""); id != "" {
			ids[id] = append(ids[id], el)
		}
		if el.Tag == "Signature" && el.NamespaceURI() == tslDSigNS {
			sigs = append(sigs, el)
		}
		for _, tok := range el.Child {
			switch tok := tok.(type) {
			case *etree.Element:
				if err := walk(tok); err != nil {
					return err
				}
			case *etree.Directive:
				return errors.New("xml: DOCTYPE and other directives are not allowed")
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, nil, nil, err
	}
	if len(sigs) != 1 {
		return nil, nil, nil, fmt.Errorf("%w: document has %d ds:Signature elements, want exactly 1", ErrTSLSignature, len(sigs))
	}
	if sigs[0].Parent() != root {
		return nil, nil, nil, fmt.Errorf("%w: ds:Signature is not a child of the root element", ErrTSLSignature)
	}
	return root, sigs[0], ids, nil
}

// tslVerifySignature checks every Reference digest, then the SignedInfo signature, and returns the
// KeyInfo signer certificate (and any further KeyInfo certificates, usable as intermediates). It does not
// judge whom the signer belongs to; ParseTSL does.
//
// goxmldsig's validator cannot be used because it wants an *x509.Certificate, which crypto/x509 refuses for
// brainpool keys; only its canonicalisers are reused.
func tslVerifySignature(root, sig *etree.Element, ids map[string][]*etree.Element) (*Certificate, []*Certificate, error) {
	kids := sig.ChildElements()
	if len(kids) < 2 || !tslIs(kids[0], tslDSigNS, "SignedInfo") || !tslIs(kids[1], tslDSigNS, "SignatureValue") {
		return nil, nil, fmt.Errorf("%w: Signature must start with SignedInfo and SignatureValue", ErrTSLSignature)
	}
	signedInfo, sigValueEl := kids[0], kids[1]
	var keyInfo *etree.Element
	for _, k := range kids[2:] {
		switch {
		case tslIs(k, tslDSigNS, "KeyInfo") && keyInfo == nil:
			keyInfo = k
		case tslIs(k, tslDSigNS, "Object"):
		default:
			return nil, nil, fmt.Errorf("%w: unexpected %s in Signature", ErrTSLSignature, k.FullTag())
		}
	}
	if keyInfo == nil {
		return nil, nil, fmt.Errorf("%w: no KeyInfo", ErrTSLSignature)
	}
	certs, err := tslKeyInfoCerts(keyInfo)
	if err != nil {
		return nil, nil, err
	}
	signer := certs[0]

	si := signedInfo.ChildElements()
	if len(si) < 3 || !tslIs(si[0], tslDSigNS, "CanonicalizationMethod") || !tslIs(si[1], tslDSigNS, "SignatureMethod") {
		return nil, nil, fmt.Errorf("%w: malformed SignedInfo", ErrTSLSignature)
	}
	refs := si[2:]
	coversRoot := false
	var signedProps *etree.Element
	for _, ref := range refs {
		if !tslIs(ref, tslDSigNS, "Reference") {
			return nil, nil, fmt.Errorf("%w: unexpected %s in SignedInfo", ErrTSLSignature, ref.FullTag())
		}
		target, err := tslCheckReference(ref, root, sig, ids)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case target == root && ref.SelectAttrValue("URI", "-") == "":
			coversRoot = true
		case ref.SelectAttrValue("Type", "") == tslRefSignedProperties:
			if !tslIs(target, tslXAdESNS, "SignedProperties") || !tslIsDescendant(target, sig) {
				return nil, nil, fmt.Errorf("%w: SignedProperties reference does not point into the signature", ErrTSLSignature)
			}
			signedProps = target
		}
	}
	if !coversRoot {
		return nil, nil, fmt.Errorf("%w: no Reference with URI \"\" covers the document", ErrTSLSignature)
	}
	if signedProps == nil {
		return nil, nil, fmt.Errorf("%w: no Reference covers the XAdES SignedProperties", ErrTSLSignature)
	}
	if err := tslCheckSigningCertificate(signedProps, signer); err != nil {
		return nil, nil, err
	}

	canon, err := tslCanonicalizer(si[0])
	if err != nil {
		return nil, nil, err
	}
	signedBytes, err := tslCanonicalizeDetached(signedInfo, canon)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: canonicalize SignedInfo: %v", ErrTSLSignature, err)
	}
	sigValue, err := tslBase64(sigValueEl)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: SignatureValue: %v", ErrTSLSignature, err)
	}
	if err := tslVerifySignedInfo(signer, si[1].SelectAttrValue("Algorithm", ""), signedBytes, sigValue); err != nil {
		return nil, nil, fmt.Errorf("%w: SignedInfo: %w", ErrTSLSignature, err)
	}
	return signer, certs[1:], nil
}

// tslCheckReference recomputes one Reference digest and returns the element it covers.
func tslCheckReference(ref, root, sig *etree.Element, ids map[string][]*etree.Element) (*etree.Element, error) {
	uriAttr := ref.SelectAttr("URI")
	if uriAttr == nil {
		return nil, fmt.Errorf("%w: Reference without URI", ErrTSLSignature)
	}
	var target *etree.Element
	switch uri := uriAttr.Value; {
	case uri == "":
		target = root
	case strings.HasPrefix(uri, "#") && len(uri) > 1:
		// Exactly one element may carry the Id: with two, the digest and a later reader could pick
		// different ones.
		if els := ids[uri[1:]]; len(els) == 1 {
			target = els[0]
		} else {
			return nil, fmt.Errorf("%w: Reference %q matches %d elements", ErrTSLSignature, uri, len(els))
		}
	default:
		return nil, fmt.Errorf("%w: unsupported Reference URI %q", ErrTSLSignature, uri)
	}

	var transformsEl, digestMethod, digestValue *etree.Element
	for _, c := range ref.ChildElements() {
		switch {
		case tslIs(c, tslDSigNS, "Transforms") && transformsEl == nil:
			transformsEl = c
		case tslIs(c, tslDSigNS, "DigestMethod") && digestMethod == nil:
			digestMethod = c
		case tslIs(c, tslDSigNS, "DigestValue") && digestValue == nil:
			digestValue = c
		default:
			return nil, fmt.Errorf("%w: unexpected %s in Reference", ErrTSLSignature, c.FullTag())
		}
	}
	if digestMethod == nil || digestValue == nil {
		return nil, fmt.Errorf("%w: Reference without DigestMethod or DigestValue", ErrTSLSignature)
	}
	if alg := digestMethod.SelectAttrValue("Algorithm", ""); alg != tslAlgSHA256 {
		return nil, fmt.Errorf("%w: unsupported digest %q", ErrTSLSignature, alg)
	}

	// Work on a copy: the canonicaliser rewrites namespace declarations in place, and the enveloped
	// transform removes the signature. The copy carries the in-scope namespaces of its ancestors.
	el, err := tslDetach(target)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTSLSignature, err)
	}
	var transforms []*etree.Element
	if transformsEl != nil {
		transforms = transformsEl.ChildElements()
	}
	var canon dsig.Canonicalizer
	enveloped := false
	for i, tr := range transforms {
		if !tslIs(tr, tslDSigNS, "Transform") {
			return nil, fmt.Errorf("%w: unexpected %s in Transforms", ErrTSLSignature, tr.FullTag())
		}
		if canon != nil {
			return nil, fmt.Errorf("%w: transform after canonicalization", ErrTSLSignature)
		}
		if tr.SelectAttrValue("Algorithm", "") == tslAlgEnveloped {
			if enveloped || i != 0 {
				return nil, fmt.Errorf("%w: enveloped-signature transform must come first, once", ErrTSLSignature)
			}
			path, ok := tslPath(target, sig)
			if !ok || !tslRemoveAt(el, path) {
				return nil, fmt.Errorf("%w: enveloped-signature transform on an element that does not contain the signature", ErrTSLSignature)
			}
			enveloped = true
			continue
		}
		if canon, err = tslCanonicalizer(tr); err != nil {
			return nil, err
		}
	}
	if canon == nil {
		// XMLDSig: a node-set left at the end is serialised with inclusive C14N 1.0.
		canon = dsig.MakeC14N10RecCanonicalizer()
	}
	if !enveloped && tslIsDescendant(sig, target) {
		return nil, fmt.Errorf("%w: Reference covers its own signature without the enveloped-signature transform", ErrTSLSignature)
	}
	c14n, err := canon.Canonicalize(el)
	if err != nil {
		return nil, fmt.Errorf("%w: canonicalize %q: %v", ErrTSLSignature, uriAttr.Value, err)
	}
	want, err := tslBase64(digestValue)
	if err != nil {
		return nil, fmt.Errorf("%w: DigestValue: %v", ErrTSLSignature, err)
	}
	got := sha256.Sum256(c14n)
	if !bytes.Equal(got[:], want) {
		return nil, fmt.Errorf("%w: digest mismatch for Reference %q", ErrTSLSignature, uriAttr.Value)
	}
	return target, nil
}

// tslCanonicalizer maps a CanonicalizationMethod or Transform element to a canonicaliser; anything else is
// refused rather than skipped, since an ignored transform changes what was signed.
func tslCanonicalizer(method *etree.Element) (dsig.Canonicalizer, error) {
	switch alg := method.SelectAttrValue("Algorithm", ""); alg {
	case tslAlgExcC14N:
		prefixes := ""
		for _, c := range method.ChildElements() {
			if !tslIs(c, tslAlgExcC14N, "InclusiveNamespaces") {
				return nil, fmt.Errorf("%w: unexpected %s in exclusive c14n", ErrTSLSignature, c.FullTag())
			}
			prefixes = c.SelectAttrValue("PrefixList", "")
		}
		return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList(prefixes), nil
	case tslAlgC14N10:
		if len(method.ChildElements()) != 0 {
			return nil, fmt.Errorf("%w: unexpected parameters for c14n", ErrTSLSignature)
		}
		return dsig.MakeC14N10RecCanonicalizer(), nil
	default:
		return nil, fmt.Errorf("%w: unsupported transform or canonicalization %q", ErrTSLSignature, alg)
	}
}

// tslDetach copies el with the namespace declarations in scope at its position, so that it canonicalises
// as it would in place.
func tslDetach(el *etree.Element) (*etree.Element, error) {
	if p := el.Parent(); p == nil || p.Parent() == nil {
		// The root (its parent is the document node): nothing above it to inherit, and NSDetatch's
		// traversal limit is meant for small subtrees, not the whole list.
		return el.Copy(), nil
	}
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, err
	}
	return etreeutils.NSDetatch(ctx, el)
}

func tslCanonicalizeDetached(el *etree.Element, canon dsig.Canonicalizer) ([]byte, error) {
	det, err := tslDetach(el)
	if err != nil {
		return nil, err
	}
	return canon.Canonicalize(det)
}

// tslPath returns the child-element indices leading from ancestor to el.
func tslPath(ancestor, el *etree.Element) ([]int, bool) {
	var path []int
	for cur := el; cur != ancestor; cur = cur.Parent() {
		if cur == nil || cur.Parent() == nil {
			return nil, false
		}
		path = append(path, cur.Index())
	}
	slices.Reverse(path)
	return path, true
}

func tslRemoveAt(el *etree.Element, path []int) bool {
	if len(path) == 0 {
		return false
	}
	for _, i := range path[:len(path)-1] {
		if i < 0 || i >= len(el.Child) {
			return false
		}
		next, ok := el.Child[i].(*etree.Element)
		if !ok {
			return false
		}
		el = next
	}
	i := path[len(path)-1]
	if i < 0 || i >= len(el.Child) {
		return false
	}
	if _, ok := el.Child[i].(*etree.Element); !ok {
		return false
	}
	el.RemoveChildAt(i)
	return true
}

func tslIsDescendant(el, ancestor *etree.Element) bool {
	for cur := el; cur != nil; cur = cur.Parent() {
		if cur == ancestor {
			return true
		}
	}
	return false
}

// tslKeyInfoCerts returns the X509Certificates of KeyInfo/X509Data; the first is the signer.
func tslKeyInfoCerts(keyInfo *etree.Element) ([]*Certificate, error) {
	var out []*Certificate
	for _, xd := range keyInfo.ChildElements() {
		if !tslIs(xd, tslDSigNS, "X509Data") {
			continue
		}
		for _, c := range xd.ChildElements() {
			if !tslIs(c, tslDSigNS, "X509Certificate") {
				continue
			}
			der, err := tslBase64(c)
			if err != nil {
				return nil, fmt.Errorf("%w: KeyInfo certificate: %v", ErrTSLSignature, err)
			}
			cert, err := ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("%w: KeyInfo: %v", ErrTSLSignature, err)
			}
			out = append(out, cert)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no X509Certificate in KeyInfo", ErrTSLSignature)
	}
	return out, nil
}

// tslCheckSigningCertificate requires the signed XAdES SigningCertificate to name the KeyInfo certificate
// (by SHA-256), so the signer cannot be swapped for another certificate on the same key.
func tslCheckSigningCertificate(signedProps *etree.Element, signer *Certificate) error {
	fp := signer.Fingerprint()
	for _, ssp := range signedProps.ChildElements() {
		if !tslIs(ssp, tslXAdESNS, "SignedSignatureProperties") {
			continue
		}
		for _, sc := range ssp.ChildElements() {
			if !tslIs(sc, tslXAdESNS, "SigningCertificate") && !tslIs(sc, tslXAdESNS, "SigningCertificateV2") {
				continue
			}
			for _, cert := range sc.ChildElements() {
				for _, cd := range cert.ChildElements() {
					if !tslIs(cd, tslXAdESNS, "CertDigest") {
						continue
					}
					var alg string
					var val []byte
					for _, c := range cd.ChildElements() {
						switch {
						case tslIs(c, tslDSigNS, "DigestMethod"):
							alg = c.SelectAttrValue("Algorithm", "")
						case tslIs(c, tslDSigNS, "DigestValue"):
							val, _ = tslBase64(c)
						}
					}
					if alg == tslAlgSHA256 && bytes.Equal(val, fp[:]) {
						return nil
					}
				}
			}
		}
	}
	return fmt.Errorf("%w: XAdES SigningCertificate does not name the KeyInfo certificate by SHA-256", ErrTSLSignature)
}

// tslVerifySignedInfo checks the SignatureValue. XMLDSig ECDSA values are raw r‖s, not DER.
func tslVerifySignedInfo(signer *Certificate, method string, signed, sig []byte) error {
	var alg SignatureAlgorithm
	switch method {
	case "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256":
		alg = ECDSAWithSHA256
	case "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384":
		alg = ECDSAWithSHA384
	case "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512":
		alg = ECDSAWithSHA512
	case "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":
		alg = SHA256WithRSA
	case "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1":
		alg = SHA256WithRSAPSS
	default:
		return fmt.Errorf("unsupported signature method %q", method)
	}
	if alg.isECDSA() {
		pub, ok := signer.PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: ECDSA signature method with a %s key", ErrBadSignature, signer.KeyAlgorithm())
		}
		if size := (pub.Curve.Params().BitSize + 7) / 8; len(sig) != 2*size {
			return fmt.Errorf("%w: signature has %d bytes, want %d", ErrBadSignature, len(sig), 2*size)
		}
		der, err := ECDSARawToDER(sig)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		sig = der
	}
	return verifyWithKey(signer.PublicKey, alg, signed, sig)
}

// tslExtract reads the list content. It only descends through TSL-namespace elements from the root, so the
// ds:Signature (the one part the URI "" digest excludes) is never read as data.
func tslExtract(root *etree.Element) (*TSL, error) {
	scheme, err := tslOne(root, "SchemeInformation")
	if err != nil {
		return nil, err
	}
	t := &TSL{}
	seq, err := tslOneText(scheme, "TSLSequenceNumber")
	if err != nil {
		return nil, err
	}
	if t.SequenceNumber, err = strconv.Atoi(seq); err != nil || t.SequenceNumber < 0 {
		return nil, fmt.Errorf("TSLSequenceNumber %q is not a number", seq)
	}
	issue, err := tslOneText(scheme, "ListIssueDateTime")
	if err != nil {
		return nil, err
	}
	if t.IssueDate, err = time.Parse(time.RFC3339Nano, issue); err != nil {
		return nil, fmt.Errorf("ListIssueDateTime: %w", err)
	}
	next, err := tslOpt(scheme, "NextUpdate")
	if err != nil {
		return nil, err
	}
	if next != nil {
		dt, err := tslOpt(next, "dateTime")
		if err != nil {
			return nil, err
		}
		if dt != nil {
			if t.NextUpdate, err = time.Parse(time.RFC3339Nano, tslText(dt)); err != nil {
				return nil, fmt.Errorf("NextUpdate: %w", err)
			}
		}
	}

	source := "tsl:" + strconv.Itoa(t.SequenceNumber)
	byCert := map[[32]byte]*Anchor{}
	providers, err := tslOpt(root, "TrustServiceProviderList")
	if err != nil || providers == nil {
		return t, err
	}
	for _, tsp := range tslAll(providers, "TrustServiceProvider") {
		services, err := tslOpt(tsp, "TSPServices")
		if err != nil {
			return nil, err
		}
		if services == nil {
			continue
		}
		for _, svc := range tslAll(services, "TSPService") {
			info, err := tslOne(svc, "ServiceInformation")
			if err != nil {
				return nil, err
			}
			if err := t.addService(info, source, byCert); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// addService turns one ServiceInformation into anchors or OCSP responders.
func (t *TSL) addService(info *etree.Element, source string, byCert map[[32]byte]*Anchor) error {
	typ, err := tslOneText(info, "ServiceTypeIdentifier")
	if err != nil {
		return err
	}
	if typ != ServiceTypeCA && typ != ServiceTypeOCSP {
		return nil
	}
	var certs []*Certificate
	if sdi, err := tslOpt(info, "ServiceDigitalIdentity"); err != nil {
		return err
	} else if sdi != nil {
		for _, id := range tslAll(sdi, "DigitalId") {
			for _, x := range tslAll(id, "X509Certificate") {
				der, err := base64.StdEncoding.DecodeString(tslStripSpace(tslText(x)))
				if err != nil {
					t.Skipped++
					continue
				}
				c, err := ParseCertificate(der)
				if err != nil {
					t.Skipped++
					continue
				}
				certs = append(certs, c)
			}
		}
	}
	status, err := tslOneText(info, "ServiceStatus")
	if err != nil {
		return err
	}
	var revokedSince time.Time
	switch status {
	case tslStatusInAccord:
	case tslStatusRevoked:
		// TUC_PKI_018: certificates issued before the revocation stay valid, so the time is essential; a
		// revoked service without one cannot be used at all.
		start, err := tslOneText(info, "StatusStartingTime")
		if err == nil {
			revokedSince, err = time.Parse(time.RFC3339Nano, start)
		}
		if err != nil || typ == ServiceTypeOCSP {
			t.Skipped += len(certs)
			return nil
		}
	default:
		t.Skipped += len(certs)
		return nil
	}
	if typ == ServiceTypeOCSP {
		for _, c := range certs {
			if !slices.ContainsFunc(t.OCSPResponders, c.Equal) {
				t.OCSPResponders = append(t.OCSPResponders, c)
			}
		}
		return nil
	}

	var supply []string
	if sp, err := tslOpt(info, "ServiceSupplyPoints"); err != nil {
		return err
	} else if sp != nil {
		for _, p := range tslAll(sp, "ServiceSupplyPoint") {
			if u := tslText(p); u != "" {
				supply = append(supply, u)
			}
		}
	}
	types, usable, err := tslPermittedTypes(info)
	if err != nil {
		return err
	}
	if !usable {
		t.Skipped += len(certs)
		return nil
	}
	for _, c := range certs {
		fp := c.Fingerprint()
		if a, ok := byCert[fp]; ok {
			tslMergeAnchor(a, types, supply, revokedSince)
			continue
		}
		a := &Anchor{Cert: c, Source: source, PermittedTypes: slices.Clone(types), RevokedSince: revokedSince, OCSPURLs: slices.Clone(supply)}
		byCert[fp] = a
		t.Anchors = append(t.Anchors, a)
	}
	return nil
}

// tslMergeAnchor folds a second listing of the same CA certificate into a. An unrestricted listing keeps the
// anchor unrestricted; the earliest revocation wins.
func tslMergeAnchor(a *Anchor, types, supply []string, revokedSince time.Time) {
	switch {
	case len(a.PermittedTypes) == 0:
	case len(types) == 0:
		a.PermittedTypes = nil
	default:
		for _, ty := range types {
			if !slices.Contains(a.PermittedTypes, ty) {
				a.PermittedTypes = append(a.PermittedTypes, ty)
			}
		}
	}
	for _, u := range supply {
		if !slices.Contains(a.OCSPURLs, u) {
			a.OCSPURLs = append(a.OCSPURLs, u)
		}
	}
	if !revokedSince.IsZero() && (a.RevokedSince.IsZero() || revokedSince.Before(a.RevokedSince)) {
		a.RevokedSince = revokedSince
	}
}

// tslPermittedTypes reads the ExtensionOID values of ServiceInformationExtensions: gematik lists there the
// certificate-type policy OIDs (oid_hba_aut 1.2.276.0.76.4.75, …) the CA may issue. No extensions means no
// restriction. A critical extension timstack cannot read makes the service unusable (ETSI TS 102 231
// 5.5.9), reported as usable == false.
func tslPermittedTypes(info *etree.Element) (types []string, usable bool, err error) {
	exts, err := tslOpt(info, "ServiceInformationExtensions")
	if err != nil || exts == nil {
		return nil, err == nil, err
	}
	for _, ext := range tslAll(exts, "Extension") {
		oidEl, err := tslOpt(ext, "ExtensionOID")
		if err != nil {
			return nil, false, err
		}
		oid := ""
		if oidEl != nil {
			oid = tslText(oidEl)
		}
		if !tslIsOID(oid) {
			if ext.SelectAttrValue("Critical", "false") == "true" {
				return nil, false, nil
			}
			continue
		}
		if !slices.Contains(types, oid) {
			types = append(types, oid)
		}
	}
	return types, true, nil
}

func tslIsOID(s string) bool {
	arcs := strings.Split(s, ".")
	if len(arcs) < 2 {
		return false
	}
	for _, a := range arcs {
		if a == "" || strings.Trim(a, "0123456789") != "" {
			return false
		}
	}
	return true
}

func tslIs(el *etree.Element, ns, tag string) bool {
	return el.Tag == tag && el.NamespaceURI() == ns
}

// tslAll returns the children of el in the TSL namespace with the given local name.
func tslAll(el *etree.Element, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if tslIs(c, tslNS, tag) {
			out = append(out, c)
		}
	}
	return out
}

// tslOpt returns the single child with that name, nil when absent; a duplicate is an error, because the
// list would mean two different things to two readers.
func tslOpt(el *etree.Element, tag string) (*etree.Element, error) {
	all := tslAll(el, tag)
	switch len(all) {
	case 0:
		return nil, nil
	case 1:
		return all[0], nil
	}
	return nil, fmt.Errorf("%s: %d %s elements, want at most 1", el.Tag, len(all), tag)
}

func tslOne(el *etree.Element, tag string) (*etree.Element, error) {
	c, err := tslOpt(el, tag)
	if err == nil && c == nil {
		err = fmt.Errorf("%s: missing %s", el.Tag, tag)
	}
	return c, err
}

func tslOneText(el *etree.Element, tag string) (string, error) {
	c, err := tslOne(el, tag)
	if err != nil {
		return "", err
	}
	return tslText(c), nil
}

// tslText joins all character data of el. etree's Text stops at the first comment, but comments are not
// covered by the digest, so `4<!---->2` must read as "42", exactly what was signed.
func tslText(el *etree.Element) string {
	var sb strings.Builder
	for _, tok := range el.Child {
		if cd, ok := tok.(*etree.CharData); ok {
			sb.WriteString(cd.Data)
		}
	}
	return strings.TrimSpace(sb.String())
}

func tslStripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
}

func tslBase64(el *etree.Element) ([]byte, error) {
	return base64.StdEncoding.DecodeString(tslStripSpace(tslText(el)))
}
