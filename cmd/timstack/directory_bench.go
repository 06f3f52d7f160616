package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store"
)

// runDirectoryBench implements `timstack directory bench --db DSN`: it serves the directory in-process on
// loopback over an already imported data set and measures each query class of the spec's performance
// table with concurrent clients for a fixed time, printing p50/p95/p99 and requests/s as JSON. Used by
// `make bench-directory`; not part of `make test`.
func runDirectoryBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("directory bench", stderr)
	dsn := fs.String("db", defaultDirectoryDB, "sqlite:PATH or postgres://… holding generated data")
	duration := fs.Duration("duration", 15*time.Second, "measuring time per query class")
	clients := fs.Int("clients", 4, "concurrent clients per class")
	signerDir := fs.String("list-signer", "", "federation-list signer (pki issue --profile flist-signer); a throw-away one when empty")
	only := fs.String("only", "", "measure only the classes whose name contains this text (all when empty)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	ctx := context.Background()
	st, err := openStore(ctx, *dsn)
	if err != nil {
		return failure("directory bench: %v", err)
	}
	defer st.Close()
	if a, ok := st.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(ctx); err != nil {
			return failure("directory bench: analyze: %v", err)
		}
	}
	signers, err := benchSigners(*signerDir)
	if err != nil {
		return failure("directory bench: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return failure("directory bench: %v", err)
	}
	base := "http://" + ln.Addr().String()
	srv, err := directory.New(ctx, directory.Config{BaseURL: base}, directory.Deps{
		Store: st, NotFound: notFound, ListSigners: signers, Log: slog.New(slog.DiscardHandler), Version: version(),
	})
	if err != nil {
		return failure("directory bench: %v", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	pool, err := benchPool(ctx, st)
	if err != nil {
		return failure("directory bench: %v", err)
	}
	searchTok, _, err := srv.Tokens().Issue(directory.TokenSearch, "@bench:hs1.tim.test", directory.Claims{})
	if err != nil {
		return failure("directory bench: %v", err)
	}
	provTok, _, err := srv.Tokens().Issue(directory.TokenProvider, "bench", directory.Claims{ClientID: "bench"})
	if err != nil {
		return failure("directory bench: %v", err)
	}
	counts := map[string]int{}
	for _, typ := range index.ResourceTypes {
		if n, err := st.Count(ctx, typ); err == nil {
			counts[typ] = n
		}
	}
	classes := []benchClass{
		{"read by id", searchTok, func(r *rand.Rand) string {
			return "/search/Practitioner/" + pool.practitionerIDs[r.IntN(len(pool.practitionerIDs))]
		}},
		{"read by Telematik-ID (Practitioner?identifier=)", searchTok, func(r *rand.Rand) string {
			return "/search/Practitioner?identifier=" + url.QueryEscape("https://gematik.de/fhir/sid/telematik-id|"+pool.telematikIDs[r.IntN(len(pool.telematikIDs))])
		}},
		{"#5 roles by Telematik-ID + 3 _include", searchTok, func(r *rand.Rand) string {
			return "/search/PractitionerRole?_include=PractitionerRole:practitioner&_include=PractitionerRole:location&_include=PractitionerRole:endpoint&practitioner.identifier=" + url.QueryEscape("https://gematik.de/fhir/sid/telematik-id|"+pool.telematikIDs[r.IntN(len(pool.telematikIDs))])
		}},
		{"chained name search + 3 _include (_count=20)", searchTok, func(r *rand.Rand) string {
			return "/search/PractitionerRole?practitioner.name=" + url.QueryEscape(pool.families[r.IntN(len(pool.families))]) +
				"&_include=PractitionerRole:practitioner&_include=PractitionerRole:location&_include=PractitionerRole:endpoint&_count=20"
		}},
		{"_text two words + includes", searchTok, func(r *rand.Rand) string {
			return "/search/PractitionerRole?_text=" + url.QueryEscape(pool.families[r.IntN(len(pool.families))]+" "+pool.cities[r.IntN(len(pool.cities))]) +
				"&_include=PractitionerRole:practitioner&_include=PractitionerRole:location&_count=20"
		}},
		{"location.near 10 km + 2 _include (_count=20)", searchTok, func(r *rand.Rand) string {
			p := pool.positions[r.IntN(len(pool.positions))]
			return "/search/HealthcareService?location.near=" + url.QueryEscape(fmt.Sprintf("%.4f|%.4f|10|km", p[0], p[1])) +
				"&_include=HealthcareService:organization&_include=HealthcareService:location&_count=20"
		}},
		{"_summary=count of active roles", searchTok, func(*rand.Rand) string {
			return "/search/PractitionerRole?_summary=count"
		}},
		{"federation list (precomputed JWS)", provTok, func(*rand.Rand) string {
			return "/tim-provider-services/FederationList/federationList.jws?version=0"
		}},
		{"federation list, caller current (204)", provTok, func(*rand.Rand) string {
			return "/tim-provider-services/FederationList/federationList.jws?version=999999999"
		}},
	}
	results := make([]benchResult, 0, len(classes))
	for _, c := range classes {
		if *only != "" && !strings.Contains(c.name, *only) {
			continue
		}
		res, err := c.run(base, *clients, *duration)
		if err != nil {
			return failure("directory bench: %s: %v", c.name, err)
		}
		fmt.Fprintf(stderr, "%-48s p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  %8.0f req/s  (%d requests, %d errors)\n",
			res.Class, res.P50ms, res.P95ms, res.P99ms, res.RPS, res.Requests, res.Errors)
		results = append(results, res)
	}
	return writeJSON(stdout, map[string]any{"db": redactDSN(*dsn), "resources": counts, "clients": *clients, "durationPerClass": duration.String(), "results": results})
}

func benchSigners(dir string) ([]directory.ListSigner, error) {
	if dir != "" {
		return listSigners([]string{dir})
	}
	now := time.Now()
	ca, err := certs.NewTestCA("bench root", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, KeyAlgorithm: certs.KeyBrainpoolP256r1, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(23 * time.Hour)})
	if err != nil {
		return nil, err
	}
	return []directory.ListSigner{{Alg: certs.AlgBP256R1, Signer: key, Chain: []*certs.Certificate{cert}}}, nil
}

// benchData holds values drawn from the imported data, so queries hit real rows.
type benchData struct {
	practitionerIDs, telematikIDs, families, cities []string
	positions                                       [][2]float64 // latitude, longitude
}

// benchPool samples up to 2,000 active practitioners (ids, Telematik-IDs, family names) and cities of
// Locations from the store.
func benchPool(ctx context.Context, st store.Store) (*benchData, error) {
	res, err := st.Search(ctx, index.Query{Type: index.Practitioner, Limit: 2000,
		Where: index.Token{Param: "active", AnySystem: true, Code: "true"}})
	if err != nil {
		return nil, err
	}
	if len(res.IDs) == 0 {
		return nil, fmt.Errorf("no active Practitioner in the store: import data first (directory generate + import)")
	}
	refs := make([]index.Ref, len(res.IDs))
	for i, id := range res.IDs {
		refs[i] = index.Ref{Type: index.Practitioner, ID: id}
	}
	prs, err := st.GetMany(ctx, refs)
	if err != nil {
		return nil, err
	}
	d := &benchData{}
	seenFamily := map[string]bool{}
	for _, r := range prs {
		var p struct {
			Identifier []struct{ System, Value string } `json:"identifier"`
			Name       []struct{ Family string }        `json:"name"`
		}
		if json.Unmarshal(r.JSON, &p) != nil {
			continue
		}
		d.practitionerIDs = append(d.practitionerIDs, r.ID)
		for _, id := range p.Identifier {
			if id.System == "https://gematik.de/fhir/sid/telematik-id" {
				d.telematikIDs = append(d.telematikIDs, id.Value)
			}
		}
		if len(p.Name) > 0 && p.Name[0].Family != "" && !seenFamily[p.Name[0].Family] {
			seenFamily[p.Name[0].Family] = true
			d.families = append(d.families, p.Name[0].Family)
		}
	}
	locs, err := st.Search(ctx, index.Query{Type: index.Location, Limit: 500})
	if err != nil {
		return nil, err
	}
	lrefs := make([]index.Ref, len(locs.IDs))
	for i, id := range locs.IDs {
		lrefs[i] = index.Ref{Type: index.Location, ID: id}
	}
	ls, err := st.GetMany(ctx, lrefs)
	if err != nil {
		return nil, err
	}
	seenCity := map[string]bool{}
	for _, l := range ls {
		var loc struct {
			Address  struct{ City string } `json:"address"`
			Position *struct {
				Latitude  float64 `json:"latitude"`
				Longitude float64 `json:"longitude"`
			} `json:"position"`
		}
		if json.Unmarshal(l.JSON, &loc) != nil {
			continue
		}
		if loc.Address.City != "" && !seenCity[loc.Address.City] {
			seenCity[loc.Address.City] = true
			d.cities = append(d.cities, loc.Address.City)
		}
		if loc.Position != nil {
			d.positions = append(d.positions, [2]float64{loc.Position.Latitude, loc.Position.Longitude})
		}
	}
	if len(d.telematikIDs) == 0 || len(d.families) == 0 || len(d.cities) == 0 || len(d.positions) == 0 {
		return nil, fmt.Errorf("sampled data lacks Telematik-IDs, names, cities or positions")
	}
	return d, nil
}

type benchClass struct {
	name  string
	token string
	path  func(r *rand.Rand) string
}

type benchResult struct {
	Class    string  `json:"class"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
}

// run drives the class with n clients for d (after a short warm-up) and reports latency percentiles.
// Every loop is bounded by the deadline; only loopback is contacted.
func (c benchClass) run(base string, n int, d time.Duration) (benchResult, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n * 2}, Timeout: 30 * time.Second}
	one := func(r *rand.Rand) (time.Duration, bool) {
		req, _ := http.NewRequest(http.MethodGet, base+c.path(r), nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), resp.StatusCode == 200 || resp.StatusCode == 204
	}
	warm := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		one(warm)
	}
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, seed*7+1))
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				t, ok := one(r)
				if !ok {
					bad++
					continue
				}
				mine = append(mine, t)
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}(uint64(i + 1))
	}
	wg.Wait()
	if len(lat) == 0 {
		return benchResult{}, fmt.Errorf("no successful request (%d errors)", errs)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	return benchResult{Class: c.name, Requests: len(lat), Errors: errs, RPS: float64(len(lat)) / d.Seconds(),
		P50ms: pct(0.50), P95ms: pct(0.95), P99ms: pct(0.99)}, nil
}
