package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoWalkthrough runs `make demo`'s script with DEMO_EXIT=1, so the README's demo command cannot rot.
func TestDemoWalkthrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "demo.sh"))
	cmd.Env = append(cmd.Environ(), "DEMO_EXIT=1", "DEMO_DIR="+filepath.Join(dir, "demo"),
		"DEMO_BIN="+filepath.Join(dir, "timstack"), "DEMO_OCSP_ADDR="+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"version":1650,"domains":277`, "signer revoked", "bad signature", "Walkthrough complete."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
