package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesPointInward keeps house-style's layout rules true: certs is a leaf, policy reaches no
// timstack package, authn and directory do not reach each other, proxy never reaches directory's storage,
// and nothing imports cmd.
func TestDependenciesPointInward(t *testing.T) {
	const mod = "github.com/timstack/timstack/"
	rules := []struct {
		tree      string
		forbidden []string
	}{
		{"certs", []string{mod + "cmd", mod + "authn", mod + "directory", mod + "policy", mod + "proxy",
			"github.com/go-chi/", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/open-policy-agent/"}},
		{"policy", []string{mod + "cmd", mod + "authn", mod + "directory", mod + "proxy", mod + "certs"}},
		{"authn", []string{mod + "cmd", mod + "directory", mod + "policy", mod + "proxy"}},
		{"directory", []string{mod + "cmd", mod + "authn", mod + "policy", mod + "proxy"}},
		{"proxy", []string{mod + "cmd", mod + "directory/", "github.com/jackc/pgx", "modernc.org/sqlite"}},
	}
	for _, r := range rules {
		t.Run(r.tree, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../"+r.tree+"/...").CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if strings.HasPrefix(dep, mod+r.tree) {
					continue
				}
				for _, f := range r.forbidden {
					if strings.HasPrefix(dep, f) || dep+"/" == f {
						t.Errorf("%s depends on %s", r.tree, dep)
					}
				}
			}
		})
	}
}
