package dirfacts

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ErrUnavailable is wrapped by every lookup that reached no answer (directory down, refused token, 5xx,
// malformed answer). A caller with Config.Required denies on it (reason directory_unavailable).
var ErrUnavailable = errors.New("directory unavailable")

// maxTelematikIDLen bounds the Telematik-IDs looked up; real ones are some 30 characters.
const maxTelematikIDLen = 256

// Resolver answers which organisation types the directory lists for a Telematik-ID. Answers are cached
// (found types for CacheTTL; failures and "no such organisation" for NegativeTTL), the cache is bounded
// (least recently used first out), and concurrent lookups of one Telematik-ID share one request.
type Resolver struct {
	cfg      Config
	hc       *http.Client
	log      *slog.Logger
	now      func() time.Time
	endpoint string
	token    *tokenFile

	mu       sync.Mutex
	entries  map[string]*list.Element // value: *entry
	lru      *list.List               // front: most recently used
	inflight map[string]*call
}

type entry struct {
	id      string
	types   []string
	err     error
	expires time.Time
}

type call struct {
	done  chan struct{}
	types []string
	err   error
}

// New builds a resolver. cfg gets its defaults and must validate and be enabled. hc is the client for the
// directory (nil: a plain client); it is copied so that redirects can be refused without changing the
// caller's client. now is the clock for cache expiry (nil: time.Now).
func New(cfg Config, hc *http.Client, log *slog.Logger, now func() time.Time) (*Resolver, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dirfacts: %w", err)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("dirfacts: %s.url: must be set", Section)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	client := *hc
	// A redirect would send the search token on to wherever the directory points; the VZD never redirects
	// /search, so a redirect is a failed lookup.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Resolver{
		cfg: cfg, hc: &client, log: log, now: now,
		endpoint: strings.TrimRight(cfg.URL, "/") + "/search/Organization",
		token:    newTokenFile(cfg.TokenFile),
		entries:  map[string]*list.Element{}, lru: list.New(), inflight: map[string]*call{},
	}, nil
}

// Required reports whether a failed lookup must deny (Config.Required).
func (r *Resolver) Required() bool { return r.cfg.Required }

// OrganizationTypes returns the sorted, unique type codes (Organization.type.coding.code; see
// parseOrganizationTypes for codes of other systems) of the directory's Organizations carrying
// telematikID. No such organisation (an empty searchset) is an empty slice and no error. An error wraps ErrUnavailable, or
// reports an unusable telematikID. The returned slice belongs to the caller.
func (r *Resolver) OrganizationTypes(ctx context.Context, telematikID string) ([]string, error) {
	if err := checkTelematikID(telematikID); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if el, ok := r.entries[telematikID]; ok {
		e := el.Value.(*entry)
		if r.now().Before(e.expires) {
			r.lru.MoveToFront(el)
			r.mu.Unlock()
			return slices.Clone(e.types), e.err
		}
		r.lru.Remove(el)
		delete(r.entries, telematikID)
	}
	c, ok := r.inflight[telematikID]
	if !ok {
		c = &call{done: make(chan struct{})}
		r.inflight[telematikID] = c
		// The request runs on its own: a caller that gives up must not fail the others waiting on it,
		// and its answer is still worth caching. The timeout bounds it.
		go r.run(context.WithoutCancel(ctx), telematikID, c)
	}
	r.mu.Unlock()
	select {
	case <-c.done:
		return slices.Clone(c.types), c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("dirfacts: organisation types of %s: %w", telematikID, ctx.Err())
	}
}

func (r *Resolver) run(ctx context.Context, id string, c *call) {
	types, err := r.fetch(ctx, id)
	ttl := r.cfg.CacheTTL
	if err != nil {
		err = fmt.Errorf("dirfacts: organisation types of %s: %w: %w", id, ErrUnavailable, err)
		r.log.Warn("directory lookup failed", "telematik_id", id, "err", err, "retry_after", r.cfg.NegativeTTL)
		types, ttl = nil, r.cfg.NegativeTTL
	} else if len(types) == 0 {
		ttl = r.cfg.NegativeTTL
	}
	c.types, c.err = types, err
	r.mu.Lock()
	delete(r.inflight, id)
	r.entries[id] = r.lru.PushFront(&entry{id: id, types: types, err: err, expires: r.now().Add(ttl)})
	for r.lru.Len() > r.cfg.CacheSize {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.entries, old.Value.(*entry).id)
	}
	r.mu.Unlock()
	close(c.done)
}

// fetch asks the directory: GET {url}/search/Organization?identifier=<system>|<id>.
func (r *Resolver) fetch(ctx context.Context, id string) ([]string, error) {
	tok, err := r.token.get()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	u := r.endpoint + "?" + url.Values{"identifier": {TelematikIDSystem + "|" + id}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if int64(len(body)) > r.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("answer larger than %d bytes", r.cfg.MaxResponseBytes)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		types, err := parseOrganizationTypes(body, id)
		if err != nil {
			return nil, err
		}
		return types, nil
	case resp.StatusCode == http.StatusNotFound:
		// A FHIR search answers "no match" with an empty bundle (200). A 404 means the URL leads to no
		// search API; reading it as "no organisation" would switch operator rules off unnoticed.
		return nil, errors.New("directory answered 404: url does not lead to the /search API")
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The token expired or was replaced: read the file again next time even if it looks unchanged.
		r.token.invalidate()
		return nil, fmt.Errorf("directory refused the search token: %s", resp.Status)
	default:
		return nil, fmt.Errorf("directory answered %s", resp.Status)
	}
}

func checkTelematikID(id string) error {
	if id == "" || len(id) > maxTelematikIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("dirfacts: unusable Telematik-ID %q", id)
	}
	for _, c := range id {
		if c < 0x21 || c == 0x7f || c == '|' {
			return fmt.Errorf("dirfacts: unusable Telematik-ID %q", id)
		}
	}
	return nil
}
