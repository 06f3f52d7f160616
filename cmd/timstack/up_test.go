package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/timstack/timstack/proxy/appservice"
)

func TestUpConfigIsStrictAndNamesTheBadField(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"an unknown key is refused", "nodes: [{server_name: a.test, homeserver_url: http://127.0.0.1:8008}]\nprots: 1\n", "prots"},
		{"a stack without homeservers is refused", "dir: x\n", "nodes"},
		{"a node without its homeserver URL is refused", "nodes: [{server_name: a.test}]\n", "nodes[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "up.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runCLI(t, "up", "--config", p, "--prepare")
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 naming %q", code, stderr, tc.want)
			}
		})
	}
}

// `up --prepare` writes what a homeserver must be configured with before it starts, at stable ports.
func TestUpPrepareWritesTheHomeserverArtifacts(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "up.yaml")
	cfg := "dir: " + filepath.Join(dir, "state") + "\nnodes:\n" +
		"  - server_name: praxis.tim.test\n    homeserver_url: http://127.0.0.1:8008\n" +
		"    users: [{telematik_id: 1-HBA-Testkarte-883110000129084, localpart: dr.otis}]\n" +
		"  - server_name: apotheke.tim.test\n    homeserver_url: http://127.0.0.1:8009\n"
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "up", "--config", p, "--prepare")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"praxis.tim.test:", "https_proxy=http://127.0.0.1:8602", "https_proxy=http://127.0.0.1:8612", "federation_custom_ca_list"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	reg, err := appservice.LoadRegistration(filepath.Join(dir, "state", "praxis.tim.test", "appservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if reg.URL != "http://127.0.0.1:8603" {
		t.Fatalf("appservice URL %s, want the proxy's internal listener on 8603", reg.URL)
	}
	// A second prepare keeps the registration (the homeserver was configured with its tokens).
	if _, _, code := runCLI(t, "up", "--config", p, "--prepare"); code != 0 {
		t.Fatal("second prepare failed")
	}
	again, err := appservice.LoadRegistration(filepath.Join(dir, "state", "praxis.tim.test", "appservice.yaml"))
	if err != nil || again.ASToken != reg.ASToken {
		t.Fatalf("registration changed between runs: %v", err)
	}
}

func TestUpExampleConfigLoads(t *testing.T) {
	c, err := loadUpConfig("up.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 2 || len(c.Organizations) != 2 || c.Nodes[1].ClientPort != 8610 || c.IDPPort != 8580 {
		t.Fatalf("example config: %+v", c)
	}
}
