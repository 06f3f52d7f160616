package policy

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"
)

// regoTestDirs hold Rego modules with their *_test.rego files: the shipped policy and the operator example.
var regoTestDirs = []string{"rego", "examples/operator"}

// runRegoTests runs the Rego unit tests in dir, the same ones `opa test` runs (scripts/opa.sh), with tracer
// collecting coverage when non-nil.
func runRegoTests(t *testing.T, dir string, tracer *cover.Cover) {
	t.Helper()
	modules, store, err := tester.Load([]string{dir}, nil)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	runner := tester.NewRunner().SetStore(store).SetModules(modules).SetTimeout(time.Minute)
	if tracer != nil {
		runner = runner.SetCoverageQueryTracer(tracer)
	}
	ch, err := runner.RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("run %s: %v", dir, err)
	}
	n := 0
	for r := range ch {
		n++
		if !r.Pass() {
			var failed []string
			for name, sub := range r.SubResults {
				if sub.Fail {
					failed = append(failed, name)
				}
			}
			sort.Strings(failed)
			t.Errorf("%s.%s (%s): fail=%v error=%v failing cases=%q", r.Package, r.Name, r.Location, r.Fail, r.Error, failed)
		}
	}
	if n == 0 {
		t.Fatalf("%s: no Rego tests found", dir)
	}
}

func TestRegoUnitTestsPass(t *testing.T) {
	for _, dir := range regoTestDirs {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			runRegoTests(t, dir, nil)
		})
	}
}

// TestRegoCoverage keeps the Rego tests honest: at least 90 % of the lines of every module directory (test
// files not counted) are exercised.
func TestRegoCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("coverage tracing is slow; covered by scripts/opa.sh too")
	}
	for _, dir := range regoTestDirs {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			cov := cover.New()
			runRegoTests(t, dir, cov)
			modules, _, err := tester.Load([]string{dir}, nil)
			if err != nil {
				t.Fatal(err)
			}
			report := cov.Report(modules)
			covered, notCovered := 0, 0
			for name, f := range report.Files {
				if strings.HasSuffix(name, "_test.rego") {
					continue
				}
				covered += f.CoveredLines
				notCovered += f.NotCoveredLines
				if f.NotCoveredLines > 0 {
					t.Logf("%s: %.1f %% (%d lines not covered)", name, f.Coverage, f.NotCoveredLines)
				}
			}
			if covered == 0 {
				t.Fatalf("%s: no covered lines at all", dir)
			}
			pct := 100 * float64(covered) / float64(covered+notCovered)
			t.Logf("%s: %.1f %% of %d lines covered", dir, pct, covered+notCovered)
			if pct < 90 {
				t.Errorf("%s: Rego coverage %.1f %% is below 90 %%", dir, pct)
			}
		})
	}
}
