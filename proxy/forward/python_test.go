package forward

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeCA writes the proxy CA certificate as the homeserver would find it in federation_custom_ca_list.
func writeCA(t *testing.T, e *env) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "proxy-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.proxy.ca.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runPython(t *testing.T, python string, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(python, args...)
	cmd.Stdin = strings.NewReader(stdin)
	// The proxy is named explicitly; environment proxies must not interfere.
	cmd.Env = append(os.Environ(), "NO_PROXY=", "no_proxy=", "HTTPS_PROXY=", "https_proxy=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func TestPythonURLLibThroughProxy(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		skipUnlessRequired(t, "python3 not installed")
	}
	e, r, s := federationSetup(t, Config{})
	caFile := writeCA(t, e)
	target := "https://hs2.tim.test:8448/_matrix/federation/v1/send/py1"

	t.Run("urllib trusting the proxy CA reaches the remote with identical bytes", func(t *testing.T) {
		out, err := runPython(t, python, federationBody, "testdata/urllib_client.py", e.proxyURL.String(), caFile, target)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if want := fmt.Sprintf(`200 {"seen":%d}`, len(federationBody)); out != want {
			t.Errorf("python printed %q, want %q", out, want)
		}
		got := r.requests()
		if len(got) != 1 || string(got[0].Body) != federationBody || got[0].RequestURI != "/_matrix/federation/v1/send/py1" {
			t.Fatalf("remote saw %+v", got)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.targets) != 1 || s.targets[0] != (Target{Host: "hs2.tim.test", Port: 8448}) {
			t.Errorf("handler targets %v", s.targets)
		}
	})
	t.Run("urllib trusting another CA refuses the minted certificate", func(t *testing.T) {
		other := startProxy(t, Config{}, http.NotFoundHandler())
		out, err := runPython(t, python, "{}", "testdata/urllib_client.py", e.proxyURL.String(), writeCA(t, other), target)
		if err == nil || !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED") {
			t.Errorf("python with the wrong CA: err=%v output=%s", err, out)
		}
	})
}

// TestSynapseConnectEndpointThroughProxy uses the CONNECT client Synapse itself uses for outbound federation
// (synapse.http.connectproxyclient) over Twisted TLS, from the project's Synapse venv when it exists.
func TestSynapseConnectEndpointThroughProxy(t *testing.T) {
	t.Parallel()
	home, _ := os.UserHomeDir()
	python := filepath.Join(home, ".cache/timstack/synapse/1.163.2/bin/python")
	if _, err := os.Stat(python); err != nil {
		skipUnlessRequired(t, "Synapse venv not installed (scripts/synapse.sh)")
	}
	e, r, _ := federationSetup(t, Config{})
	host, port, _ := net.SplitHostPort(e.proxyURL.Host)
	out, err := runPython(t, python, federationBody, "testdata/twisted_client.py", host, port, writeCA(t, e),
		"https://hs2.tim.test:8448/_matrix/federation/v1/send/tw", "3")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := strings.Repeat(fmt.Sprintf("200 {\"seen\":%d}\n", len(federationBody)), 3)
	if out != want {
		t.Errorf("twisted printed %q, want %q", out, want)
	}
	if n := len(r.requests()); n != 3 {
		t.Errorf("remote saw %d requests, want 3", n)
	}
	if n := e.connects.Load(); n != 1 {
		t.Errorf("%d CONNECTs for 3 pooled requests, want 1", n)
	}
}

// skipUnlessRequired skips for want of Python, except in CI (TIMSTACK_TEST_REQUIRE_HS=1), where the Synapse
// venv and python3 are installed by the project's scripts and a skip would hide a broken install step.
func skipUnlessRequired(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("TIMSTACK_TEST_REQUIRE_HS") == "1" {
		t.Fatalf("%s, and TIMSTACK_TEST_REQUIRE_HS=1", why)
	}
	t.Skip(why)
}
