package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func gematik(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata", "gematik"}, parts...)...)
}

// runCLI runs the command in-process and returns stdout, stderr and the exit code main would use.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(args, &stdout, &stderr)
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		stderr.WriteString("timstack: " + err.Error() + "\n")
	}
	return stdout.String(), stderr.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestPKIInspectPrintsStableJSON(t *testing.T) {
	tests := []struct{ name, file string }{
		{"inspect-hba-ecc.json", gematik("pki", "cards", "80276883110000129084-2-C_HP_AUT_E256", "cert.pem")},
		{"inspect-hba-rsa.json", gematik("pki", "cards", "80276883110000139364-C_HP_AUT_R2048", "cert.pem")},
		{"inspect-smcb.json", gematik("pki", "cards", "80276883110000129068-2-C_SMCB_HCI_AUT_E256", "cert.pem")},
		{"inspect-egk.json", gematik("pki", "cards", "80276883110000129089-2-C_CH_AUT_E256", "cert.pem")},
		{"inspect-komp-ca50.json", gematik("pki", "ca", "GEM.KOMP-CA50-TEST-ONLY.pem")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, "pki", "inspect", tc.file)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, tc.name, out)
		})
	}
}

func TestPKIInspectReadsDER(t *testing.T) {
	pemOut, _, _ := runCLI(t, "pki", "inspect", gematik("pki", "ca", "GEM.KOMP-CA50-TEST-ONLY.pem"))
	der := filepath.Join(t.TempDir(), "ca.der")
	data, err := os.ReadFile(gematik("pki", "ca", "GEM.KOMP-CA50-TEST-ONLY.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(der, pemToDER(t, data), 0o644); err != nil {
		t.Fatal(err)
	}
	derOut, stderr, code := runCLI(t, "pki", "inspect", der)
	if code != 0 || derOut != pemOut {
		t.Fatalf("DER inspect differs from PEM inspect (exit %d, %s)", code, stderr)
	}
}

func TestPKIInspectRefusesGarbage(t *testing.T) {
	f := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(f, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "pki", "inspect", f)
	if code == 0 || !strings.Contains(stderr, "certificate") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestFlistVerify(t *testing.T) {
	list := gematik("vzd", "samples", "federationList-TU-v1650.jws")
	ca := gematik("pki", "ca")
	hbaOnly := t.TempDir()
	copyFile(t, gematik("pki", "ca", "GEM.HBA-CA51-TEST-ONLY.pem"), filepath.Join(hbaOnly, "hba.pem"))
	tampered := filepath.Join(t.TempDir(), "tampered.jws")
	data, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSpace(string(data)), ".")
	sig := []byte(parts[2])
	sig[5] ^= 1 // stays within the base64url alphabet for letters
	parts[2] = string(sig)
	if err := os.WriteFile(tampered, []byte(strings.Join(parts, ".")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("the real TU list verifies at 2024-06-01 with OCSP off", func(t *testing.T) {
		out, stderr, code := runCLI(t, "flist", "verify", list, "--trust", ca, "--at", "2024-06-01T00:00:00Z", "--ocsp", "off")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		golden(t, "flist-verify-tu-1650.json", out)
	})
	failures := []struct {
		name   string
		args   []string
		reason string
	}{
		{"an expired signer is named in the reason", []string{list, "--trust", ca, "--at", "2028-06-01T00:00:00Z", "--ocsp", "off"}, "signer expired"},
		{"OCSP require fails closed when the TI-internal responder is unreachable", []string{list, "--trust", ca, "--at", "2024-06-01T00:00:00Z", "--timeout", "2s"}, "ocsp"},
		{"a trust store without the KOMP CA is an untrusted chain", []string{list, "--trust", hbaOnly, "--at", "2024-06-01T00:00:00Z", "--ocsp", "off"}, "untrusted chain"},
		{"one changed signature byte is a bad signature", []string{tampered, "--trust", ca, "--at", "2024-06-01T00:00:00Z", "--ocsp", "off"}, "bad signature"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, append([]string{"flist", "verify"}, tc.args...)...)
			if code == 0 || out != "" {
				t.Fatalf("exit %d, stdout %q", code, out)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines != 0 {
				t.Errorf("reason is not one line: %q", stderr)
			}
			if !strings.Contains(stderr, tc.reason) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.reason)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func pemToDER(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

// TestPKIInspectMatchesCardTable runs `pki inspect` on every card of certs/testdata/cards.tsv (the table the
// certs tests cross-check with OpenSSL) and requires the same identity fields.
func TestPKIInspectMatchesCardTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "certs", "testdata", "cards.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "dir\t") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 5 {
			t.Fatalf("short row %q", line)
		}
		dir, id, professionOID, typ, issuerCN := f[0], f[1], f[2], f[3], f[4]
		rows++
		t.Run(dir, func(t *testing.T) {
			out, stderr, code := runCLI(t, "pki", "inspect", gematik("pki", filepath.FromSlash(dir), "cert.pem"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got inspectResult
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			gotID := got.TelematikID
			if typ == "C.CH.AUT" {
				gotID = got.KVNR
			}
			if id == "-" {
				id = ""
			}
			if gotID != id || len(got.ProfessionOIDs) == 0 || got.ProfessionOIDs[0] != professionOID ||
				got.CertificateType != typ || !strings.HasPrefix(got.Issuer, "CN="+issuerCN+",") {
				t.Errorf("inspect = id %q, professions %v, type %q, issuer %q; table = %q, %s, %s, CN=%s",
					gotID, got.ProfessionOIDs, got.CertificateType, got.Issuer, id, professionOID, typ, issuerCN)
			}
		})
	}
	if rows < 40 {
		t.Fatalf("only %d card rows read", rows)
	}
}

// TestTestCAIssuesAFederationListSignerWhoseListsVerify walks the operator path: a new test root, brainpool
// and P-256 federation-list signers, signed lists, and `flist verify` — and a signer without the
// oid_vzd_ti role whose list is refused with "wrong role".
func TestTestCAIssuesAFederationListSignerWhoseListsVerify(t *testing.T) {
	dir := t.TempDir()
	p := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }
	mustRun := func(args ...string) string {
		t.Helper()
		out, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		return out
	}
	mustRun("pki", "issue", "--profile", "root", "--cn", "Demo Root", "--out", p("root"))
	mustRun("pki", "issue", "--ca", p("root"), "--profile", "flist-signer", "--out", p("signer-bp"))
	mustRun("pki", "issue", "--ca", p("root"), "--profile", "flist-signer", "--key", "P-256", "--out", p("signer-p256"))
	out := mustRun("pki", "issue", "--ca", p("root"), "--profile", "smcb", "--telematik-id", "5-SMC-B-Testkarte-KT-1",
		"--profession-oid", "1.2.276.0.76.4.59", "--cn", "Krankenkasse", "--out", p("kostentraeger"))
	var smcb inspectResult
	if err := json.Unmarshal([]byte(out), &smcb); err != nil {
		t.Fatal(err)
	}
	if smcb.CertificateType != "C.HCI.AUT" || smcb.TelematikID != "5-SMC-B-Testkarte-KT-1" ||
		len(smcb.ProfessionOIDs) != 1 || smcb.ProfessionOIDs[0] != "1.2.276.0.76.4.59" || !strings.Contains(smcb.Subject, "TEST-ONLY") {
		t.Errorf("Kostenträger SMC-B: %+v", smcb)
	}
	trust := p("trust")
	if err := os.MkdirAll(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, p("root", "cert.pem"), filepath.Join(trust, "root.pem"))
	domains := p("domains.json")
	if err := os.WriteFile(domains, []byte(`[{"domain":"hs1.tim.test","telematikID":"1-SMC-B-Testkarte-883110000129077"},
		{"domain":"kasse.tim.test","telematikID":"5-SMC-B-Testkarte-KT-1","isInsurance":true,"ik":["109500969"]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ signer, alg string }{{"signer-bp", "BP256R1"}, {"signer-p256", "ES256"}} {
		t.Run(tc.alg, func(t *testing.T) {
			list := p(tc.alg + ".jws")
			mustRun("flist", "sign", "--signer", p(tc.signer), "--domains", domains, "--version", "42", "--alg", tc.alg, "--out", list)
			got := mustRun("flist", "verify", list, "--trust", trust, "--ocsp", "off")
			if !strings.HasPrefix(got, `{"valid":true,"version":42,"domains":2,`) {
				t.Errorf("verify: %s", got)
			}
		})
	}
	t.Run("a BP256R1 list claimed as ES256 is refused", func(t *testing.T) {
		_, stderr, code := runCLI(t, "flist", "sign", "--signer", p("signer-bp"), "--domains", domains, "--version", "1", "--alg", "ES256", "--out", p("x.jws"))
		if code == 0 {
			t.Fatalf("signing with a brainpool key as ES256 succeeded: %s", stderr)
		}
	})
	t.Run("a C.FD.SIG signer with role oid_tim instead of oid_vzd_ti is refused as wrong role", func(t *testing.T) {
		mustRun("pki", "issue", "--ca", p("root"), "--profile", "fd-sig-tim", "--out", p("fd-sig-tim"))
		list := p("wrong-role.jws")
		mustRun("flist", "sign", "--signer", p("fd-sig-tim"), "--domains", domains, "--version", "43", "--out", list)
		_, stderr, code := runCLI(t, "flist", "verify", list, "--trust", trust, "--ocsp", "off")
		if code != 1 || !strings.Contains(stderr, "wrong role") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("an SMC-B is not a federation-list signer", func(t *testing.T) {
		list := p("smcb.jws")
		mustRun("flist", "sign", "--signer", p("kostentraeger"), "--domains", domains, "--version", "44", "--out", list)
		_, stderr, code := runCLI(t, "flist", "verify", list, "--trust", trust, "--ocsp", "off")
		if code != 1 || !strings.Contains(stderr, "type check failed") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}
