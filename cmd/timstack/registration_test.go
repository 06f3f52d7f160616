package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistrationCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run([]string{"registration", "dev-signer", "--out", filepath.Join(dir, "signer")}, &out, &errb); err != nil {
		t.Fatalf("dev-signer: %v %s", err, errb.String())
	}
	chain, err := os.ReadFile(filepath.Join(dir, "signer", "signer", "cert.pem"))
	if err != nil || bytes.Count(chain, []byte("BEGIN CERTIFICATE")) != 2 {
		t.Fatalf("signer chain: %v (%d certificates)", err, bytes.Count(chain, []byte("BEGIN CERTIFICATE")))
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(extra string) string {
		p := filepath.Join(t.TempDir(), "registration.yaml")
		body := `listen: 127.0.0.1:0
public_url: https://reg.tim.test
variant: pro
database: ` + filepath.Join(dir, "reg.db") + `
directory: {url: http://127.0.0.1:1, client_id: reg, client_secret_file: ` + filepath.Join(dir, "secret") + `}
federation_list: {trust_dir: ` + filepath.Join(dir, "signer", "ca") + `}
signer: {cert_file: ` + filepath.Join(dir, "signer", "signer", "cert.pem") + `, key_file: ` + filepath.Join(dir, "signer", "signer", "key.pem") + `}
idp: {issuer: http://127.0.0.1:2, client_id: reg, redirect_uri: https://reg.tim.test/registration/v1/callback, trust_dir: ` + filepath.Join(dir, "signer", "ca") + `}
` + extra
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		args    []string
		code    int // 0 = success
		message string
	}{
		{"a complete configuration with the dev signer is valid", []string{"--config", config(""), "--check-config"}, 0, ""},
		{"an unknown key is refused", []string{"--config", config("colour: blue\n"), "--check-config"}, 1, "colour"},
		{"a session lifetime beyond 24 h names its field", []string{"--config", config("session_lifetime: 48h\n"), "--check-config"}, 1, "session_lifetime"},
		{"a negative deletion delay names its field", []string{"--config", config("federation_check: {delete_after: -1h}\n"), "--check-config"}, 1, "federation_check.delete_after"},
		{"no configuration is a usage error", nil, 2, "--config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(append([]string{"registration"}, tc.args...), &out, &errb)
			if tc.code == 0 {
				if err != nil || !strings.Contains(out.String(), "configuration valid") {
					t.Fatalf("err %v, out %q", err, out.String())
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tc.code || !strings.Contains(ee.msg, tc.message) {
				t.Fatalf("err %v, want exit %d mentioning %q", err, tc.code, tc.message)
			}
		})
	}

	// A signer key that is not the certificate's is refused at start.
	other := filepath.Join(dir, "other")
	if err := run([]string{"registration", "dev-signer", "--out", other}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	bad := config("")
	raw, _ := os.ReadFile(bad)
	raw = bytes.Replace(raw, []byte(filepath.Join(dir, "signer", "signer", "key.pem")), []byte(filepath.Join(other, "signer", "key.pem")), 1)
	_ = os.WriteFile(bad, raw, 0o600)
	err = run([]string{"registration", "--config", bad, "--check-config"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "key does not belong") {
		t.Fatalf("foreign signer key: %v", err)
	}
}
