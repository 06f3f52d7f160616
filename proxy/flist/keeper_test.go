package flist

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

func TestFreshListIsAcceptedFromEverySource(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	bp := pki.sign(t, certs.AlgBP256R1, 7, "a.example", "kk.example")
	es := pki.sign(t, certs.AlgES256, 7, "a.example", "kk.example")

	prov := newProviderServer(t)
	prov.set(7, map[string][]byte{"BP256R1": bp, "ES256": es})
	reg := newRegServer(t)
	reg.set(7, bp, 0)
	file := filepath.Join(t.TempDir(), "list.jws")
	if err := os.WriteFile(file, bp, 0o600); err != nil {
		t.Fatal(err)
	}
	esSource := prov.source()
	esSource.SigAlg = "ES256"

	tests := []struct {
		name    string
		src     Source
		wantAlg certs.JWSAlgorithm
	}{
		{name: "a BP256R1 list from the directory's provider API is accepted", src: prov.source(), wantAlg: certs.AlgBP256R1},
		{name: "an ES256 list from the directory's provider API is accepted", src: esSource, wantAlg: certs.AlgES256},
		{name: "a list from the registration service is accepted", src: &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, wantAlg: certs.AlgBP256R1},
		{name: "a list from a file is accepted", src: &FileSource{Path: file}, wantAlg: certs.AlgBP256R1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			k := mustNew(t, cfg, tc.src, pki.verifier(), clock, nil)
			if s := k.Snapshot(); s.Status != StatusUnavailable || s.List != nil {
				t.Fatalf("before the first fetch: status %q, list %v", s.Status, s.List)
			}
			if err := k.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			s := k.Snapshot()
			if s.Status != StatusFresh || s.Version != 7 || !s.LastContact.Equal(clock.Now()) {
				t.Fatalf("status %q version %d contact %v; want fresh, 7, %v (%s)", s.Status, s.Version, s.LastContact, clock.Now(), s.Reason)
			}
			if s.List.Algorithm != tc.wantAlg {
				t.Errorf("algorithm %q, want %q", s.List.Algorithm, tc.wantAlg)
			}
			d, ok, _ := k.Lookup(context.Background(), "KK.example")
			if !ok || !d.IsInsurance || d.TelematikID != "1-kk.example" {
				t.Errorf("lookup kk.example = %+v, %v", d, ok)
			}
			if k.Version() != 7 || k.Age() != 0 {
				t.Errorf("Version %d Age %s", k.Version(), k.Age())
			}
			disk, err := os.ReadFile(filepath.Join(cfg.CacheDir, listFile))
			if err != nil || !bytes.Equal(disk, s.List.JWS) {
				t.Errorf("cached list differs from the verified bytes (err %v)", err)
			}
		})
	}
}

func TestProviderAPISourceSendsVersionAndSigAlg(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	prov := newProviderServer(t)
	prov.set(3, map[string][]byte{"BP256R1": pki.sign(t, certs.AlgBP256R1, 3, "a.example")})
	k := mustNew(t, testConfig(t), prov.source(), pki.verifier(), clock, nil)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if prov.lastQuery != "sigAlg=BP256R1" {
		t.Errorf("first query %q: without a list no version is sent", prov.lastQuery)
	}
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if prov.lastQuery != "sigAlg=BP256R1&version=3" {
		t.Errorf("second query %q, want the held version", prov.lastQuery)
	}
}

func TestRefusedListsKeepTheOldList(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	v5 := pki.sign(t, certs.AlgBP256R1, 5, "a.example")
	otherCA, err := certs.NewTestCA("unrelated Root-CA", certs.KeyBrainpoolP256r1, testStart.AddDate(-1, 0, 0), testStart.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, foreignKey, err := otherCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := certs.SignFederationList(foreignKey, certs.AlgBP256R1, []*certs.Certificate{foreignCert}, 9, []certs.FederationDomain{{Domain: "evil.example"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		offer   []byte
		version int64
		wantErr error
		wantLog string
	}{
		{name: "a list with one changed payload byte is refused", offer: tamper(pki.sign(t, certs.AlgBP256R1, 6, "a.example", "b.example")), version: 6, wantErr: certs.ErrFederationListSignature, wantLog: "federation list refused"},
		{name: "a list signed by an untrusted CA is refused", offer: foreign, version: 9, wantErr: certs.ErrUnknownIssuer, wantLog: "federation list refused"},
		{name: "an older, correctly signed version is refused as a possible rollback", offer: pki.sign(t, certs.AlgBP256R1, 4, "a.example", "old.example"), version: 6, wantErr: ErrRollback, wantLog: "possible rollback"},
		{name: "garbage is refused", offer: []byte("not a jws"), version: 6, wantErr: certs.ErrFederationListMalformed, wantLog: "federation list refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock(testStart)
			reg := newRegServer(t)
			reg.set(5, v5, 0)
			cfg := testConfig(t)
			logs := &logBuffer{}
			k := mustNew(t, cfg, &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, pki.verifier(), clock, logs)
			if err := k.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := k.Snapshot()
			rec := &recorder{}
			k.Subscribe(rec.record)
			clock.Advance(time.Hour)
			reg.set(tc.version, tc.offer, 0)
			err := k.Refresh(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			after := k.Snapshot()
			if after.List != before.List || after.Version != 5 {
				t.Fatalf("the list changed to version %d", after.Version)
			}
			if !after.LastContact.Equal(before.LastContact) {
				t.Errorf("a refused list counted as contact: %v → %v", before.LastContact, after.LastContact)
			}
			if after.Status != StatusFresh {
				t.Errorf("status %q", after.Status)
			}
			if len(rec.all()) != 0 {
				t.Errorf("subscribers were called for a refused list: %+v", rec.all())
			}
			if disk, _ := os.ReadFile(filepath.Join(cfg.CacheDir, listFile)); !bytes.Equal(disk, before.List.JWS) {
				t.Error("the cached list on disk was replaced")
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

func TestRevokedSignerIsRefused(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	pki.responder.SetStatus(pki.bpCert.SerialNumber, certs.OCSPStatusEntry{Status: certs.OCSPRevoked, RevokedAt: testStart.Add(-time.Hour), Reason: 1})
	reg := newRegServer(t)
	reg.set(1, pki.sign(t, certs.AlgBP256R1, 1, "a.example"), 0)
	k := mustNew(t, testConfig(t), &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, pki.verifier(), clock, nil)
	err := k.Refresh(context.Background())
	if !errors.Is(err, certs.ErrRevoked) {
		t.Fatalf("err = %v, want ErrRevoked", err)
	}
	s := k.Snapshot()
	if s.Status != StatusUnavailable || s.List != nil {
		t.Fatalf("status %q with list %v", s.Status, s.List)
	}
	if !strings.HasPrefix(s.Reason, "no federation list yet: verify: ") || !strings.Contains(s.Reason, "revoked") {
		t.Errorf("reason %q", s.Reason)
	}
}

func TestContactAndStaleness(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, newClock(testStart))
	tests := []struct {
		name       string
		steps      func(t *testing.T, k *Keeper, clock *fakeClock, prov *providerServer)
		wantStatus string
		wantReason string
	}{
		{
			name: "a 204 from the source counts as verified contact",
			steps: func(t *testing.T, k *Keeper, clock *fakeClock, prov *providerServer) {
				clock.Advance(71 * time.Hour)
				if err := k.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := k.Snapshot().LastContact; !got.Equal(testStart.Add(71 * time.Hour)) {
					t.Fatalf("last contact %v after 204", got)
				}
				clock.Advance(2 * time.Hour)
			},
			wantStatus: StatusFresh, wantReason: "verified contact with the source 2h ago",
		},
		{
			name: "without contact for 73h12m the list is stale and says why",
			steps: func(t *testing.T, k *Keeper, clock *fakeClock, prov *providerServer) {
				prov.setDown(true)
				clock.Advance(73*time.Hour + 12*time.Minute + 30*time.Second)
				if err := k.Refresh(context.Background()); err == nil {
					t.Fatal("a source that is down gave no error")
				}
			},
			wantStatus: StatusStale, wantReason: "no verified contact with the source for 73h12m (max 72h); last error: fetch: provider API: federation list: unexpected HTTP status 503",
		},
		{
			name: "at exactly 72h without contact the list is still fresh",
			steps: func(t *testing.T, k *Keeper, clock *fakeClock, prov *providerServer) {
				clock.Advance(72 * time.Hour)
			},
			wantStatus: StatusFresh, wantReason: "verified contact with the source 72h ago",
		},
		{
			name: "a failing source does not reset the contact time",
			steps: func(t *testing.T, k *Keeper, clock *fakeClock, prov *providerServer) {
				prov.set(2, map[string][]byte{"BP256R1": tamper(pki.sign(t, certs.AlgBP256R1, 2, "a.example"))})
				for i := 0; i < 4; i++ {
					clock.Advance(20 * time.Hour)
					prov.setDown(i%2 == 0) // alternately down and offering a tampered list
					_ = k.Refresh(context.Background())
				}
			},
			wantStatus: StatusStale, wantReason: "no verified contact with the source for 80h (max 72h); last error: verify:",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock(testStart)
			prov := newProviderServer(t)
			prov.set(1, map[string][]byte{"BP256R1": pki.sign(t, certs.AlgBP256R1, 1, "a.example")})
			k := mustNew(t, testConfig(t), prov.source(), verifierAt(pki.verifier()), clock, nil)
			if err := k.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			k.Subscribe(rec.record)
			tc.steps(t, k, clock, prov)
			s := k.Snapshot()
			if s.Status != tc.wantStatus || !strings.HasPrefix(s.Reason, tc.wantReason) {
				t.Fatalf("status %q reason %q; want %q, %q…", s.Status, s.Reason, tc.wantStatus, tc.wantReason)
			}
			if tc.wantStatus == StatusStale {
				got := rec.all()
				if len(got) != 1 || got[0].Status != StatusStale {
					t.Errorf("subscribers saw %+v, want exactly one stale snapshot", got)
				}
				if s.List == nil || s.Version != 1 {
					t.Errorf("a stale snapshot lost its list (version %d)", s.Version)
				}
			}
		})
	}
}

// verifierAt pins OCSP and chain checks to the PKI's start, so that tests that move the keeper's clock by
// days need no fresh OCSP answers; the keeper's own bookkeeping still follows the moved clock.
func verifierAt(v Verifier) Verifier {
	return func(ctx context.Context, jws []byte, _ time.Time) (*certs.FederationList, error) {
		return v(ctx, jws, testStart)
	}
}

func TestEqualVersionCountsAsContactWithoutSwap(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	reg := newRegServer(t)
	reg.set(5, pki.sign(t, certs.AlgBP256R1, 5, "a.example"), 0)
	k := mustNew(t, testConfig(t), &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, pki.verifier(), clock, nil)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := k.Snapshot()
	rec := &recorder{}
	k.Subscribe(rec.record)
	clock.Advance(time.Hour)
	// A re-signed copy of the same version (ECDSA signatures differ each time), sent with 200 anyway.
	reg.set(4, pki.sign(t, certs.AlgBP256R1, 5, "a.example"), 0)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := k.Snapshot()
	if after.List != before.List {
		t.Error("the list was swapped for an equal version")
	}
	if !after.LastContact.Equal(clock.Now()) {
		t.Errorf("contact %v, want %v", after.LastContact, clock.Now())
	}
	if len(rec.all()) != 0 {
		t.Errorf("subscribers called without a change: %+v", rec.all())
	}
}

func TestNewerListNotifiesSubscribersOnce(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	reg := newRegServer(t)
	reg.set(1, pki.sign(t, certs.AlgBP256R1, 1, "a.example"), 0)
	k := mustNew(t, testConfig(t), &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, pki.verifier(), clock, nil)
	rec := &recorder{}
	unsubscribe := k.Subscribe(rec.record)
	k.Subscribe(func(Snapshot) { panic("a broken subscriber must not break the keeper") })
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg.set(2, pki.sign(t, certs.AlgBP256R1, 2, "a.example", "b.example"), 0)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := k.Refresh(context.Background()); err != nil { // 304: nothing changes
		t.Fatal(err)
	}
	got := rec.all()
	if len(got) != 2 || got[0].Version != 1 || got[0].Status != StatusFresh || got[1].Version != 2 || got[1].List.Len() != 2 {
		t.Fatalf("subscriber saw %+v", got)
	}
	unsubscribe()
	reg.set(3, pki.sign(t, certs.AlgBP256R1, 3, "a.example"), 0)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.all()) != 2 {
		t.Error("an unsubscribed function was called")
	}
}

func TestRestartLoadsAndReverifiesTheCache(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, newClock(testStart))
	v3 := pki.sign(t, certs.AlgBP256R1, 3, "a.example")

	// prepare runs a first keeper against a working source, then returns its cache directory.
	prepare := func(t *testing.T) string {
		clock := newClock(testStart)
		reg := newRegServer(t)
		reg.set(3, v3, 0)
		cfg := testConfig(t)
		k := mustNew(t, cfg, &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, verifierAt(pki.verifier()), clock, nil)
		if err := k.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		return cfg.CacheDir
	}
	writeMeta := func(t *testing.T, dir, content string) {
		if err := os.WriteFile(filepath.Join(dir, metaFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		damage     func(t *testing.T, dir string)
		after      time.Duration
		wantStatus string
		wantReason string
	}{
		{name: "a restart within the max age serves the re-verified cached list as fresh", after: time.Hour,
			wantStatus: StatusFresh, wantReason: "verified contact with the source 1h ago"},
		{name: "a cached list whose last contact is older than the max age is stale", after: 72*time.Hour + time.Minute,
			wantStatus: StatusStale, wantReason: "no verified contact with the source for 72h1m (max 72h); last error: fetch: registration service:"},
		{name: "a tampered cached list is refused and the keeper is unavailable", after: time.Hour,
			damage: func(t *testing.T, dir string) {
				p := filepath.Join(dir, listFile)
				b, _ := os.ReadFile(p)
				if err := os.WriteFile(p, tamper(b), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantStatus: StatusUnavailable, wantReason: "no federation list yet: fetch: registration service:"},
		{name: "a missing meta file makes the cached list stale", after: time.Hour,
			damage:     func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, metaFile)) },
			wantStatus: StatusStale, wantReason: "no verified contact with the source since the cached list (version 3) was loaded"},
		{name: "a meta file for another version makes the cached list stale", after: time.Hour,
			damage: func(t *testing.T, dir string) {
				writeMeta(t, dir, `{"version":4,"last_verified_contact":"2026-03-01T12:00:00Z","fetched_at":"2026-03-01T12:00:00Z"}`)
			},
			wantStatus: StatusStale, wantReason: "no verified contact with the source since the cached list (version 3)"},
		{name: "a meta file claiming contact in the future makes the cached list stale", after: time.Hour,
			damage: func(t *testing.T, dir string) {
				writeMeta(t, dir, `{"version":3,"last_verified_contact":"2030-01-01T00:00:00Z","fetched_at":"2026-03-01T12:00:00Z"}`)
			},
			wantStatus: StatusStale, wantReason: "no verified contact with the source since the cached list (version 3)"},
		{name: "a corrupt meta file makes the cached list stale", after: time.Hour,
			damage:     func(t *testing.T, dir string) { writeMeta(t, dir, `{"version":3,`) },
			wantStatus: StatusStale, wantReason: "no verified contact with the source since the cached list (version 3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := prepare(t)
			if tc.damage != nil {
				tc.damage(t, dir)
			}
			clock := newClock(testStart.Add(tc.after))
			var calls int
			var mu sync.Mutex
			verify := func(ctx context.Context, jws []byte, at time.Time) (*certs.FederationList, error) {
				mu.Lock()
				calls++
				mu.Unlock()
				return verifierAt(pki.verifier())(ctx, jws, at)
			}
			down := newRegServer(t)
			down.set(0, nil, http.StatusServiceUnavailable)
			cfg := testConfig(t)
			cfg.CacheDir = dir
			k := mustNew(t, cfg, &RegServiceSource{URL: down.URL, HTTP: down.Client()}, verify, clock, nil)
			if calls != 1 {
				t.Errorf("the cached list was verified %d times on load, want 1", calls)
			}
			if s := k.Snapshot(); s.Status == StatusUnavailable && !strings.HasPrefix(s.Reason, "no federation list yet: cached list refused: ") {
				t.Errorf("reason after loading %q", s.Reason)
			}
			_ = k.Refresh(context.Background())
			s := k.Snapshot()
			if s.Status != tc.wantStatus || !strings.HasPrefix(s.Reason, tc.wantReason) {
				t.Fatalf("status %q reason %q; want %q, %q…", s.Status, s.Reason, tc.wantStatus, tc.wantReason)
			}
			if tc.wantStatus != StatusUnavailable && (s.Version != 3 || s.List == nil) {
				t.Errorf("version %d", s.Version)
			}
			if tc.wantStatus == StatusUnavailable && s.List != nil {
				t.Error("an unavailable snapshot carries a list")
			}
		})
	}
}

func TestUnknownDomainTriggersOneRateLimitedRefetch(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	prov := newProviderServer(t)
	prov.set(1, map[string][]byte{"BP256R1": pki.sign(t, certs.AlgBP256R1, 1, "a.example")})
	k := mustNew(t, testConfig(t), prov.source(), pki.verifier(), clock, nil)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A_25537: the domain was registered after our last poll.
	prov.set(2, map[string][]byte{"BP256R1": pki.sign(t, certs.AlgBP256R1, 2, "a.example", "new.example")})

	var wg sync.WaitGroup
	start := make(chan struct{})
	found := make([]bool, 50)
	for i := range found {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, found[i], _ = k.Lookup(context.Background(), "new.example")
		}()
	}
	close(start)
	wg.Wait()
	for i, ok := range found {
		if !ok {
			t.Fatalf("lookup %d did not find the newly registered domain", i)
		}
	}
	if _, _, lists := prov.counts(); lists != 2 {
		t.Fatalf("%d list fetches for 50 concurrent misses, want 1 forced refetch (2 in total)", lists)
	}
	if _, ok, s := k.Lookup(context.Background(), "unknown.example"); ok || s.Status != StatusFresh {
		t.Fatalf("unknown domain found=%v status %q", ok, s.Status)
	}
	if _, _, lists := prov.counts(); lists != 2 {
		t.Fatalf("a miss within the rate-limit window fetched again (%d fetches)", lists)
	}
	clock.Advance(DefaultMissRefreshMinInterval + time.Second)
	if _, ok, _ := k.Lookup(context.Background(), "unknown.example"); ok {
		t.Fatal("unknown domain found")
	}
	if _, _, lists := prov.counts(); lists != 3 {
		t.Fatalf("%d fetches after the window passed, want 3", lists)
	}
	if _, ok, _ := k.Lookup(context.Background(), "a.example"); !ok {
		t.Fatal("a listed domain was not found")
	}
	if _, _, lists := prov.counts(); lists != 3 {
		t.Fatal("a hit caused a fetch")
	}
}

func TestLookupWaitIsBounded(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	release := make(chan struct{})
	slow := sourceFunc(func(ctx context.Context, _ int64) ([]byte, bool, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, false, errors.New("slow source gave up")
	})
	cfg := testConfig(t)
	cfg.FetchTimeout = 100 * time.Millisecond
	k := mustNew(t, cfg, slow, func(context.Context, []byte, time.Time) (*certs.FederationList, error) {
		return nil, errors.New("unused")
	}, clock, nil)
	defer close(release)
	begin := time.Now()
	_, ok, s := k.Lookup(context.Background(), "a.example")
	if ok || s.Status != StatusUnavailable {
		t.Fatalf("found %v status %q", ok, s.Status)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("lookup waited %s", d)
	}
}

type sourceFunc func(ctx context.Context, have int64) ([]byte, bool, error)

func (f sourceFunc) Fetch(ctx context.Context, have int64) ([]byte, bool, error) { return f(ctx, have) }

func TestSourceDownAtStartIsUnavailable(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	prov := newProviderServer(t)
	prov.setDown(true)
	logs := &logBuffer{}
	k := mustNew(t, testConfig(t), prov.source(), pki.verifier(), clock, logs)
	var se *StatusError
	if err := k.Refresh(context.Background()); !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want a 503 StatusError", err)
	}
	d, ok, s := k.Lookup(context.Background(), "a.example")
	if ok || d.Domain != "" || s.Status != StatusUnavailable || s.List != nil || s.Version != 0 {
		t.Fatalf("lookup %+v %v, snapshot %+v", d, ok, s)
	}
	if want := "no federation list yet: fetch: provider API: client credentials: unexpected HTTP status 503"; !strings.HasPrefix(s.Reason, want) {
		t.Errorf("reason %q, want %q", s.Reason, want)
	}
	if !strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), testClientSecret) {
		t.Errorf("log:\n%s", logs.String())
	}
	if k.Version() != 0 {
		t.Errorf("Version %d", k.Version())
	}
	clock.Advance(time.Hour)
	if k.Age() != time.Hour {
		t.Errorf("Age %s without any contact, want the time since start", k.Age())
	}
}

func TestCurrentWithoutAListIsAnError(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	src := sourceFunc(func(context.Context, int64) ([]byte, bool, error) { return nil, true, nil })
	k := mustNew(t, testConfig(t), src, func(context.Context, []byte, time.Time) (*certs.FederationList, error) {
		return nil, errors.New("unused")
	}, clock, nil)
	if err := k.Refresh(context.Background()); err == nil {
		t.Fatal("a 'current' answer without a held list was accepted")
	}
	if s := k.Snapshot(); s.Status != StatusUnavailable || !s.LastContact.IsZero() {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestRunRefreshesAndStops(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	reg := newRegServer(t)
	reg.set(1, pki.sign(t, certs.AlgBP256R1, 1, "a.example"), 0)
	cfg := testConfig(t)
	cfg.RefreshInterval = time.Second
	k := mustNew(t, cfg, &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, pki.verifier(), clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		reg.mu.Lock()
		calls := reg.calls
		reg.mu.Unlock()
		if calls >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run made %d calls in 10s with a 1s interval", calls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := k.Snapshot(); s.Status != StatusFresh || s.Version != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestProviderTokenIsCachedAndRenewedOn401(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	prov := newProviderServer(t)
	prov.set(1, map[string][]byte{"BP256R1": pki.sign(t, certs.AlgBP256R1, 1, "a.example")})
	src := prov.source()
	src.Now = clock.Now
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if _, _, err := src.Fetch(ctx, -1); err != nil {
			t.Fatal(err)
		}
	}
	if tok, auth, lists := prov.counts(); tok != 1 || auth != 1 || lists != 3 {
		t.Fatalf("token/auth/list calls %d/%d/%d, want the provider token reused: 1/1/3", tok, auth, lists)
	}

	prov.revokeProviderTokens()
	if _, _, err := src.Fetch(ctx, -1); err != nil {
		t.Fatalf("a revoked token was not renewed: %v", err)
	}
	if tok, auth, lists := prov.counts(); tok != 2 || auth != 2 || lists != 5 {
		t.Fatalf("after a 401: token/auth/list calls %d/%d/%d, want 2/2/5 (one retry)", tok, auth, lists)
	}

	clock.Advance(24*time.Hour - 30*time.Second) // within the renewal margin of the 24 h token
	if _, _, err := src.Fetch(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if tok, auth, _ := prov.counts(); tok != 3 || auth != 3 {
		t.Fatalf("a token about to expire was reused (token/auth calls %d/%d)", tok, auth)
	}

	prov.mu.Lock()
	prov.rejectAll = true
	prov.mu.Unlock()
	_, _, err := src.Fetch(ctx, -1)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || se.Op != "federation list" {
		t.Fatalf("err = %v, want a 401 StatusError from the list", err)
	}
	if tok, auth, lists := prov.counts(); tok != 4 || auth != 4 || lists != 8 {
		t.Fatalf("a persistent 401 was retried more than once: token/auth/list calls %d/%d/%d", tok, auth, lists)
	}
}

func TestProviderAPISourceRefusals(t *testing.T) {
	t.Parallel()
	prov := newProviderServer(t)
	prov.set(1, map[string][]byte{"BP256R1": bytes.Repeat([]byte("a"), 2048)})
	tests := []struct {
		name   string
		modify func(s *ProviderAPISource)
		want   string
	}{
		{name: "a wrong client secret is refused by the token endpoint", modify: func(s *ProviderAPISource) { s.ClientSecret = "wrong" },
			want: "client credentials: unexpected HTTP status 401"},
		{name: "missing client credentials are refused before any call", modify: func(s *ProviderAPISource) { s.ClientID = "" },
			want: "client id and secret are required"},
		{name: "an unknown sigAlg is refused", modify: func(s *ProviderAPISource) { s.SigAlg = "RS256" },
			want: "sigAlg must be BP256R1 or ES256"},
		{name: "a list larger than the limit is refused", modify: func(s *ProviderAPISource) { s.MaxBytes = 1024 },
			want: "response exceeds size limit"},
		{name: "a non-HTTP base URL is refused", modify: func(s *ProviderAPISource) { s.BaseURL = "file:///etc" },
			want: "is not http(s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := prov.source()
			tc.modify(src)
			_, _, err := src.Fetch(context.Background(), -1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testClientSecret) {
				t.Error("the error reveals the client secret")
			}
		})
	}
}

func TestRealGematikListFromFile(t *testing.T) {
	t.Parallel()
	const realList = "../../testdata/gematik/vzd/samples/federationList-TU-v1650.jws"
	trust, err := certs.LoadTrustStoreDir("../../testdata/gematik/pki/ca")
	if err != nil {
		t.Fatal(err)
	}
	// gematik's component-CA responder is TI-internal, so OCSP is off here; the signature and the chain to
	// GEM.KOMP-CA50 are checked in full.
	verify := func(ctx context.Context, jws []byte, at time.Time) (*certs.FederationList, error) {
		return certs.VerifyFederationList(ctx, jws, certs.FederationListOptions{Trust: trust, At: at})
	}
	clock := newClock(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	path := filepath.Join(dir, "flist.jws")
	real, err := os.ReadFile(realList)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, real, 0o600); err != nil {
		t.Fatal(err)
	}
	k := mustNew(t, testConfig(t), &FileSource{Path: path}, verify, clock, nil)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := k.Snapshot()
	if s.Status != StatusFresh || s.Version != 1650 || s.List.Len() != 277 {
		t.Fatalf("status %q version %d domains %d", s.Status, s.Version, s.List.Len())
	}
	d, ok, _ := k.Lookup(context.Background(), "one-bob.ujumbelabs.com")
	if !ok || d.TelematikID != "1-SMC-B-Testkarte--883110000153155" {
		t.Fatalf("lookup = %+v, %v", d, ok)
	}
	clock.Advance(time.Hour)
	if err := k.Refresh(context.Background()); err != nil { // same version in the file: current
		t.Fatal(err)
	}
	if got := k.Snapshot().LastContact; !got.Equal(clock.Now()) {
		t.Errorf("contact %v after re-reading the unchanged file", got)
	}
	if err := os.WriteFile(path, tamper(real), 0o600); err != nil {
		t.Fatal(err)
	}
	// The tampered copy still says version 1650, so the file source reports "current" without handing it
	// over; a restart must then refuse the tampered cache copy.
	cfg := testConfig(t)
	if err := os.WriteFile(filepath.Join(cfg.CacheDir, listFile), tamper(real), 0o600); err != nil {
		t.Fatal(err)
	}
	k2 := mustNew(t, cfg, &FileSource{Path: path}, verify, clock, nil)
	if err := k2.Refresh(context.Background()); !errors.Is(err, certs.ErrFederationListSignature) {
		t.Fatalf("err = %v, want a signature error", err)
	}
	if s := k2.Snapshot(); s.Status != StatusUnavailable {
		t.Fatalf("status %q", s.Status)
	}
}

func TestCurrentAnswerDoesNotCountWhenTheHeldListNoLongerVerifies(t *testing.T) {
	t.Parallel()
	clock := newClock(testStart)
	pki := newTestPKI(t, clock)
	reg := newRegServer(t)
	reg.set(1, pki.sign(t, certs.AlgBP256R1, 1, "a.example"), 0)
	k := mustNew(t, testConfig(t), &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}, pki.verifier(), clock, nil)
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour) // past the cached OCSP answer's nextUpdate
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatalf("a 304 for a list that still verifies: %v", err)
	}
	contact := k.Snapshot().LastContact
	if !contact.Equal(clock.Now()) {
		t.Fatalf("contact %v", contact)
	}
	pki.responder.SetStatus(pki.bpCert.SerialNumber, certs.OCSPStatusEntry{Status: certs.OCSPRevoked, RevokedAt: clock.Now().Add(-time.Minute)})
	clock.Advance(2 * time.Hour)
	if err := k.Refresh(context.Background()); !errors.Is(err, certs.ErrRevoked) {
		t.Fatalf("err = %v, want ErrRevoked for the held list's signer", err)
	}
	if s := k.Snapshot(); !s.LastContact.Equal(contact) || s.Version != 1 {
		t.Fatalf("contact %v version %d after the held list's signer was revoked", s.LastContact, s.Version)
	}
}

func TestRunWakesSubscribersWhenTheListTurnsStale(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, newClock(testStart))
	jws := pki.sign(t, certs.AlgBP256R1, 1, "a.example")
	var mu sync.Mutex
	served := false
	src := sourceFunc(func(context.Context, int64) ([]byte, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if served {
			return nil, false, errors.New("source gone")
		}
		served = true
		return jws, false, nil
	})
	cfg := testConfig(t)
	cfg.RefreshInterval = time.Second
	cfg.MaxAge = 1500 * time.Millisecond
	k, err := New(cfg, src, verifierAt(pki.verifier()), nil, nil) // real clock
	if err != nil {
		t.Fatal(err)
	}
	stale := make(chan Snapshot, 4)
	k.Subscribe(func(s Snapshot) {
		if s.Status == StatusStale {
			stale <- s
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go k.Run(ctx)
	select {
	case s := <-stale:
		if s.Version != 1 || !strings.HasPrefix(s.Reason, "no verified contact with the source for ") {
			t.Errorf("stale snapshot %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscribers never learned that the list turned stale")
	}
}
