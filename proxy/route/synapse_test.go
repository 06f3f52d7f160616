package route

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// synapsePython is the interpreter of the Synapse installation the e2e tests use (make setup).
func synapsePython(t *testing.T) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no home directory: %v", err)
	}
	p := filepath.Join(home, ".cache", "timstack", "synapse", "1.163.2", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("Synapse's Python is not installed (%v); run make setup", err)
	}
	return p
}

type crossRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

type crossResult struct {
	Targets []struct {
		Synapse       []string            `json:"synapse"`
		Twisted       []*string           `json:"twisted"`
		URLSplitPath  string              `json:"urlsplit_path"`
		URLSplitQuery string              `json:"urlsplit_query"`
		RawQuery      string              `json:"raw_query"`
		Args          map[string][]string `json:"args"`
	} `json:"targets"`
	Routes []struct {
		Status  string            `json:"status"`
		Groups  map[string]string `json:"groups"`
		Pattern string            `json:"pattern"`
	} `json:"routes"`
}

// notServedBySynapse are v1.11 routes Synapse 1.163 answers 404; they stay in the allow-list because the
// spec has them, and forwarding them costs nothing.
var notServedBySynapse = map[string]string{
	"/_matrix/client/r0/account/password/msisdn/requestToken": "Synapse has no msisdn password reset",
	"/_matrix/client/v3/account/password/msisdn/requestToken": "Synapse has no msisdn password reset",
}

// exampleTarget instantiates a route pattern with exampleParam values.
func exampleTarget(r *Route) string {
	segs := strings.Split(r.Pattern, "/")
	for i, s := range segs {
		if p, ok := strings.CutPrefix(s, "{"); ok {
			segs[i], _ = exampleParam(strings.TrimSuffix(strings.TrimSuffix(p, "}"), "?"))
		}
	}
	return strings.Join(segs, "/")
}

// TestSynapseReadsTargetsAndRoutesLikeWe asks Synapse's own code, through its Python, two questions:
// does it decode every accepted target into the same segments as CheckTarget (and does Twisted's resource
// traversal), and does its router send every allowed, forwarded route to a servlet with the same decoded
// parameters? A route the proxy forwards but Synapse does not serve, or a segment the two read differently,
// fails the test.
func TestSynapseReadsTargetsAndRoutesLikeWe(t *testing.T) {
	python := synapsePython(t)

	var targets []string
	for _, tc := range acceptedTargets {
		targets = append(targets, tc.target)
	}
	type routeCase struct {
		req   crossRequest
		route *Route
		tab   *Table
	}
	var cases []routeCase
	for _, tab := range []*Table{ClientTable(), FederationTable()} {
		for _, r := range tab.Routes() {
			if r.Flags.Has(Blocked) {
				continue // answered by the proxy; whether Synapse serves it does not matter
			}
			target := exampleTarget(r)
			targets = append(targets, target)
			methods := slices.Clone(r.Methods)
			if slices.Contains(methods, "GET") {
				methods = append(methods, "HEAD")
			}
			for _, m := range methods {
				cases = append(cases, routeCase{crossRequest{m, target}, r, tab})
			}
		}
	}
	// The empty state key, with and without its trailing slash.
	client := ClientTable()
	for _, p := range []string{"/_matrix/client/v3/rooms/!r:hs1/state/m.room.join_rules/", "/_matrix/client/v3/rooms/!r:hs1/state/m.room.join_rules"} {
		m, err := lookup(t, client, "PUT", p)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, routeCase{crossRequest{"PUT", p}, m.Route, client})
		targets = append(targets, p)
	}

	reqs := make([]crossRequest, len(cases))
	for i, c := range cases {
		reqs[i] = c.req
	}
	in, err := json.Marshal(map[string]any{"targets": targets, "routes": reqs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "synapse_crosscheck.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("synapse_crosscheck.py: %v\n%s", err, stderr.String())
	}
	var res crossResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decoding the cross-check result: %v", err)
	}
	if len(res.Targets) != len(targets) || len(res.Routes) != len(cases) {
		t.Fatalf("got %d targets and %d routes back; sent %d and %d", len(res.Targets), len(res.Routes), len(targets), len(cases))
	}

	for i, target := range targets {
		got, err := CheckTarget("GET", target)
		if err != nil {
			t.Errorf("CheckTarget(%q): %v", target, err)
			continue
		}
		py := res.Targets[i]
		if diff := cmp.Diff(py.Synapse, got.Segments); diff != "" {
			t.Errorf("%q: Synapse's segments differ (-synapse +go):\n%s", target, diff)
		}
		for j, s := range py.Twisted {
			if s == nil || *s != got.Segments[j] {
				t.Errorf("%q: Twisted's traversal reads segment %d as %v; Go reads %q", target, j, s, got.Segments[j])
			}
		}
		args, err := url.ParseQuery(got.RawQuery)
		if err != nil {
			t.Errorf("%q: accepted, but url.ParseQuery refuses the query: %v", target, err)
		}
		goArgs := map[string][]string{}
		for k, vs := range args {
			for _, v := range vs {
				goArgs[hex.EncodeToString([]byte(k))] = append(goArgs[hex.EncodeToString([]byte(k))], hex.EncodeToString([]byte(v)))
			}
		}
		if diff := cmp.Diff(py.Args, goArgs, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%q: Twisted's query arguments differ (-twisted +go, hex):\n%s", target, diff)
		}
		if py.URLSplitPath != got.Path || py.URLSplitQuery != got.RawQuery || py.RawQuery != got.RawQuery {
			t.Errorf("%q: Python splits path %q query %q (Twisted query %q); Go %q %q",
				target, py.URLSplitPath, py.URLSplitQuery, py.RawQuery, got.Path, got.RawQuery)
		}
	}

	for i, c := range cases {
		py := res.Routes[i]
		if py.Status == "tree" {
			if !strings.HasPrefix(c.req.Path, "/.well-known/") && !strings.HasPrefix(c.req.Path, "/_synapse/client/") {
				t.Errorf("%s %s: outside Synapse's regex-routed resources", c.req.Method, c.req.Path)
			}
			continue
		}
		if why, ok := notServedBySynapse[c.route.Pattern]; ok && py.Status == "404" {
			t.Logf("%s %s: not served by Synapse, listed anyway: %s", c.req.Method, c.req.Path, why)
			continue
		}
		if py.Status != "200" {
			t.Errorf("%s %s (%s): Synapse answers %s", c.req.Method, c.req.Path, c.route.ID, py.Status)
			continue
		}
		m, err := lookup(t, c.tab, c.req.Method, c.req.Path)
		if err != nil || m.Route != c.route {
			t.Errorf("%s %s: Go lookup %v, %v; want %s", c.req.Method, c.req.Path, m.Route, err, c.route.ID)
			continue
		}
		var synapseVals []string
		for k, v := range py.Groups {
			if k == "path" {
				// The push-rule servlet captures "pushrules/…" whole, unquotes it, then splits it on '/'.
				synapseVals = append(synapseVals, strings.Split(v, "/")...)
				continue
			}
			synapseVals = append(synapseVals, v)
		}
		for name, v := range m.Params {
			if v == "" {
				continue
			}
			if k := slices.Index(synapseVals, v); k >= 0 {
				synapseVals = slices.Delete(synapseVals, k, k+1)
			} else {
				t.Errorf("%s %s: parameter %s=%q not among Synapse's groups %v (%s)", c.req.Method, c.req.Path, name, v, py.Groups, py.Pattern)
			}
		}
	}
}
