package flist

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	DefaultRefreshInterval        = 5 * time.Minute
	DefaultMaxAge                 = 72 * time.Hour // TTL_Föderationsliste
	DefaultMissRefreshMinInterval = 30 * time.Second
	DefaultFetchTimeout           = 10 * time.Second
	// DefaultMaxListBytes bounds a fetched list. The real TU list holds 277 domains in 60 KB; this leaves
	// room for two orders of magnitude more domains while keeping a hostile source from exhausting memory.
	DefaultMaxListBytes = 8 << 20
)

// Config configures the Keeper. It is inlined into the proxy's federation_list section, so its keys sit
// next to the source settings and its messages name them as federation_list.<key>.
type Config struct {
	// CacheDir is where the last verified list (list.jws) and its meta data (meta.json) persist across
	// restarts. Empty keeps the list in memory only: after a restart the proxy is unavailable until the
	// first verified fetch.
	CacheDir string `yaml:"cache_dir"`
	// RefreshInterval is the polling interval (default 5m); each wait is jittered by ±10% so a fleet of
	// proxies does not poll in lockstep.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// MaxAge is TTL_Föderationsliste (default 72h): without a verified contact with the source for longer
	// than this, the list is stale and federation is blocked (fail closed).
	MaxAge time.Duration `yaml:"max_age"`
	// MissRefreshMinInterval rate-limits the forced refetch on an unknown domain (A_25537, default 30s), so
	// requests naming random domains cannot turn the proxy into a load generator against its source.
	MissRefreshMinInterval time.Duration `yaml:"miss_refresh_min_interval"`
	// FetchTimeout bounds one fetch and one verification (default 10s), and how long a request waits for
	// a forced refetch.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MissRefreshMinInterval == 0 {
		c.MissRefreshMinInterval = DefaultMissRefreshMinInterval
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
}

// Validate reports every problem, each naming its key. It has no side effects (the cache directory is
// created by New).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("federation_list.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.RefreshInterval <= 0 {
		bad("refresh_interval", "must be positive")
	} else if c.RefreshInterval < time.Second {
		bad("refresh_interval", "must be at least 1s, got %s", c.RefreshInterval)
	}
	if c.MaxAge <= 0 {
		bad("max_age", "must be positive")
	} else if c.RefreshInterval > 0 && c.MaxAge <= c.RefreshInterval {
		// Otherwise the list would go stale between two polls even with a healthy source.
		bad("max_age", "must be longer than refresh_interval (%s), got %s", c.RefreshInterval, c.MaxAge)
	}
	if c.MissRefreshMinInterval <= 0 {
		bad("miss_refresh_min_interval", "must be positive (an unlimited forced refetch lets unknown domains flood the source)")
	}
	if c.FetchTimeout <= 0 {
		bad("fetch_timeout", "must be positive")
	}
	return errors.Join(errs...)
}
