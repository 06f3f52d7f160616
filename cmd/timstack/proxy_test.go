package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/forward"
)

func TestProxyCheckConfig(t *testing.T) {
	out, errOut, code := runCLI(t, "proxy", "--check-config", "--config", "../../proxy/config.example.yaml")
	if code != 0 || !strings.Contains(out, "configuration valid") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	raw, _ := os.ReadFile("../../proxy/config.example.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(raw), "variant: pro", "variant: pr0", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "proxy", "--check-config", "--config", bad)
	if code != 1 || !strings.Contains(errOut, "variant: must be pro or epa") {
		t.Fatalf("bad variant: exit %d, stderr %q", code, errOut)
	}
}

// The set-up helpers write what the homeserver and the proxy then load.
func TestProxySetupHelpers(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "appservice.yaml")
	if _, errOut, code := runCLI(t, "proxy", "appservice-registration", "--server-name", "hs1.tim.test", "--url", "http://127.0.0.1:8091", "--out", reg); code != 0 {
		t.Fatalf("appservice-registration: %d %s", code, errOut)
	}
	r, err := appservice.LoadRegistration(reg)
	if err != nil {
		t.Fatal(err)
	}
	if r.URL != "http://127.0.0.1:8091" || len(r.ASToken) < 32 || r.ASToken == r.HSToken {
		t.Errorf("registration %+v", r)
	}
	if fi, _ := os.Stat(reg); fi.Mode().Perm() != 0o600 {
		t.Errorf("registration mode %v, want 0600 (it holds secrets)", fi.Mode().Perm())
	}
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if _, errOut, code := runCLI(t, "proxy", "gen-ca", "--cert", certFile, "--key", keyFile); code != 0 {
		t.Fatalf("gen-ca: %d %s", code, errOut)
	}
	c, _ := os.ReadFile(certFile)
	k, _ := os.ReadFile(keyFile)
	if _, err := forward.LoadCA(c, k); err != nil {
		t.Fatalf("gen-ca output does not load: %v", err)
	}
}
