package flist

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/timstack/timstack/certs"
)

func TestRegServiceSource(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, newClock(testStart))
	v2 := pki.sign(t, certs.AlgBP256R1, 2, "a.example")
	tests := []struct {
		name        string
		src         func(url string, c *http.Client) *RegServiceSource
		have        int64
		status      int
		wantJWS     bool
		wantCurrent bool
		wantErr     string
		wantQuery   string
		wantAuth    string
	}{
		{name: "without a list no version is sent and the JWS comes back", have: -1, wantJWS: true, wantQuery: ""},
		{name: "an older held version gets the JWS", have: 1, wantJWS: true, wantQuery: "version=1"},
		{name: "the current version gets 304, which means current", have: 2, wantCurrent: true, wantQuery: "version=2"},
		{name: "204 also means current", have: 2, status: http.StatusNoContent, wantCurrent: true},
		{name: "a server error is an error with its status", have: 2, status: http.StatusInternalServerError, wantErr: "registration service: unexpected HTTP status 500"},
		{name: "the optional bearer token is sent", have: 2, wantCurrent: true,
			src: func(url string, c *http.Client) *RegServiceSource {
				return &RegServiceSource{URL: url, HTTP: c, BearerToken: "tok"}
			}, wantAuth: "Bearer tok", wantQuery: "version=2"},
		{name: "a query already in the URL is kept", have: 1, wantJWS: true,
			src: func(url string, c *http.Client) *RegServiceSource {
				return &RegServiceSource{URL: url + "?client=proxy-1", HTTP: c}
			}, wantQuery: "client=proxy-1&version=1"},
		{name: "a body above the size limit is refused", have: 1,
			src: func(url string, c *http.Client) *RegServiceSource {
				return &RegServiceSource{URL: url, HTTP: c, MaxBytes: 100}
			}, wantErr: "response exceeds size limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegServer(t)
			reg.set(2, v2, tc.status)
			src := &RegServiceSource{URL: reg.URL, HTTP: reg.Client()}
			if tc.src != nil {
				src = tc.src(reg.URL, reg.Client())
			}
			jws, current, err := src.Fetch(context.Background(), tc.have)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if current != tc.wantCurrent || (jws != nil) != tc.wantJWS {
				t.Fatalf("current %v, %d bytes", current, len(jws))
			}
			if tc.wantJWS && string(jws) != string(v2) {
				t.Error("the JWS bytes were altered")
			}
			if tc.status == 0 {
				if got := reg.queries[len(reg.queries)-1]; got != tc.wantQuery {
					t.Errorf("query %q, want %q", got, tc.wantQuery)
				}
			}
			if got := reg.auth[len(reg.auth)-1]; got != tc.wantAuth {
				t.Errorf("Authorization %q, want %q", got, tc.wantAuth)
			}
		})
	}
}

func TestRegServiceSourceRefusesAJSONWrapper(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"federationList":"eyJ..."}`))
	}))
	defer srv.Close()
	_, _, err := (&RegServiceSource{URL: srv.URL, HTTP: srv.Client()}).Fetch(context.Background(), -1)
	if err == nil || !strings.Contains(err.Error(), "application/json") {
		t.Fatalf("err = %v", err)
	}
}

func TestSourcesTimeOut(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	sources := []struct {
		name string
		src  Source
	}{
		{name: "the registration service source gives up after its timeout", src: &RegServiceSource{URL: srv.URL, HTTP: srv.Client(), Timeout: 50 * time.Millisecond}},
		{name: "the provider API source gives up after its timeout", src: &ProviderAPISource{BaseURL: srv.URL, ClientID: "a", ClientSecret: "b", HTTP: srv.Client(), Timeout: 50 * time.Millisecond}},
	}
	for _, tc := range sources {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			_, _, err := tc.src.Fetch(context.Background(), -1)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a deadline", err)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

func TestFileSource(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, newClock(testStart))
	dir := t.TempDir()
	path := filepath.Join(dir, "list.jws")
	v4 := pki.sign(t, certs.AlgBP256R1, 4, "a.example")
	if err := os.WriteFile(path, v4, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		src         *FileSource
		have        int64
		wantCurrent bool
		wantErr     string
	}{
		{name: "without a list the file is read", src: &FileSource{Path: path}, have: -1},
		{name: "an older held version gets the file", src: &FileSource{Path: path}, have: 3},
		{name: "the same version is current", src: &FileSource{Path: path}, have: 4, wantCurrent: true},
		{name: "a newer held version gets the file, so the keeper can refuse it as a rollback", src: &FileSource{Path: path}, have: 5},
		{name: "a missing file is an error", src: &FileSource{Path: filepath.Join(dir, "missing.jws")}, have: -1, wantErr: "no such file"},
		{name: "a file above the size limit is refused", src: &FileSource{Path: path, MaxBytes: 64}, have: -1, wantErr: "exceeds size limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jws, current, err := tc.src.Fetch(context.Background(), tc.have)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if current != tc.wantCurrent {
				t.Fatalf("current %v", current)
			}
			if !current && string(jws) != string(v4) {
				t.Error("file content altered")
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	var d Config
	d.Defaults()
	if d.RefreshInterval != 5*time.Minute || d.MaxAge != 72*time.Hour || d.MissRefreshMinInterval != 30*time.Second || d.FetchTimeout != 10*time.Second {
		t.Fatalf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{name: "a negative max age names its key", modify: func(c *Config) { c.MaxAge = -time.Hour },
			want: []string{"federation_list.max_age: must be positive"}},
		{name: "a max age not above the refresh interval is refused", modify: func(c *Config) { c.MaxAge = time.Hour; c.RefreshInterval = 2 * time.Hour },
			want: []string{"federation_list.max_age: must be longer than refresh_interval"}},
		{name: "every problem is reported at once", modify: func(c *Config) {
			c.RefreshInterval, c.MissRefreshMinInterval, c.FetchTimeout = -1, -1, -1
		}, want: []string{"federation_list.refresh_interval: must be positive", "federation_list.miss_refresh_min_interval: must be positive", "federation_list.fetch_timeout: must be positive"}},
		{name: "a sub-second refresh interval is refused", modify: func(c *Config) { c.RefreshInterval = time.Millisecond },
			want: []string{"federation_list.refresh_interval: must be at least 1s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := d
			tc.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := New(Config{MaxAge: -1}, &FileSource{}, func(context.Context, []byte, time.Time) (*certs.FederationList, error) { return nil, nil }, nil, nil); err == nil {
		t.Error("New accepted an invalid configuration")
	}
	if _, err := New(Config{}, nil, nil, nil, nil); err == nil {
		t.Error("New accepted a missing source and verifier")
	}
}

func TestFormatAge(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		73*time.Hour + 12*time.Minute + 59*time.Second: "73h12m",
		72 * time.Hour:                        "72h",
		5 * time.Minute:                       "5m",
		40*time.Second + 300*time.Millisecond: "40s",
	} {
		if got := formatAge(d); got != want {
			t.Errorf("formatAge(%s) = %q, want %q", d, got, want)
		}
	}
}
