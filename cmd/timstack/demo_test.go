package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// freePortBlock finds n consecutive free loopback ports below the ephemeral range (the demo binds fixed
// offsets from its base).
func freePortBlock(t *testing.T, n int) int {
	t.Helper()
	for base := 21000; base+n < 32768; base += n + 7 {
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free block of ports")
	return 0
}

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
		"DEMO_BIN="+filepath.Join(dir, "timstack"), "DEMO_OCSP_ADDR="+addr, "DEMO_PORT_BASE="+strconv.Itoa(freePortBlock(t, 80)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"version":1650,"domains":277`, "signer revoked", "bad signature", "PKI walkthrough complete.",
		"registered praxis-agostino.tim.test", "display name \"Otís, Günther Graf\"", "→ @bea.biene:apotheke-sportzentrum.tim.test",
		"message delivered", "reasons [invitee_not_federated]", "Walkthrough complete."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
