package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrintProblemsShowsOnlyWarningsAndErrorsOfEveryLog(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.test/proxy.log", `{"level":"INFO","msg":"listening"}`+"\n"+`{"level":"WARN","msg":"key fetch failed"}`+"\n")
	write("a.test/synapse/homeserver.log", "2026 - synapse.x - 1 - INFO - fine\n2026 - synapse.federation - 2 - ERROR - backoff kk2\n")
	s := &Stack{Dir: dir, Nodes: map[string]*Node{"a.test": nil}}
	var out strings.Builder
	s.PrintProblems(&out, 10)
	got := out.String()
	for _, want := range []string{"key fetch failed", "backoff kk2", "a.test/proxy.log", "a.test/synapse/homeserver.log"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"listening", "fine"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output shows the info line %q:\n%s", unwanted, got)
		}
	}
}
