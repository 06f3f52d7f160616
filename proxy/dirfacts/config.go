package dirfacts

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Section is the configuration key of Config in the proxy configuration; Validate names keys below it.
const Section = "directory_facts"

// Config is the directory_facts section: where the proxy looks up facts about remote domains (their
// organisation types) for operator policy modules. An empty URL switches the lookups off.
type Config struct {
	// URL is the directory's base URL (the host serving /search), e.g. https://fhir-directory.vzd.ti-dienste.de.
	// Lookups go to {URL}/search/Organization.
	URL string `yaml:"url"`
	// TokenFile holds the bearer search token: either the bare token (`timstack directory token --kind
	// search`) or the JSON answer of /tim-authenticate ({"access_token": …}). The file is re-read whenever
	// its size or modification time changes, and after the directory refused the token, so a token can be
	// rotated without a restart.
	TokenFile string `yaml:"token_file"`
	// Timeout bounds one directory request (default 3s).
	Timeout time.Duration `yaml:"timeout"`
	// CacheTTL is how long found organisation types are kept (default 1h).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// NegativeTTL is how long a failed lookup, and an answer that no organisation carries the Telematik-ID,
	// are kept (default 1m): a directory that is down is not asked again for every request.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// Required makes a failed lookup deny the request (reason directory_unavailable). When false, a
	// failed lookup leaves the facts absent and operator modules decide without them.
	Required bool `yaml:"required"`
	// CacheSize bounds the cache in Telematik-IDs (default 4096); the least recently used entry goes first.
	CacheSize int `yaml:"cache_size"`
	// MaxResponseBytes bounds one directory answer (default 1 MiB); a larger answer is a failed lookup.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// Enabled reports whether lookups are configured at all.
func (c Config) Enabled() bool { return c.URL != "" }

// Defaults fills unset values.
func (c *Config) Defaults() {
	if c.Timeout == 0 {
		c.Timeout = 3 * time.Second
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = time.Hour
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = time.Minute
	}
	if c.CacheSize == 0 {
		c.CacheSize = 4096
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 1 << 20
	}
}

// Validate reports every problem at once, each with its key path (directory_facts.url: …). A section
// without URL is valid (lookups off) unless it asks for something only lookups can give.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", Section, key, fmt.Sprintf(msg, args...)))
	}
	if !c.Enabled() {
		if c.Required {
			bad("url", "must be set when required is true")
		}
		if c.TokenFile != "" {
			bad("url", "must be set when token_file is set")
		}
		return errors.Join(errs...)
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		bad("url", "not a URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http":
		bad("url", "must be an http or https URL, not %q", c.URL)
	case u.Host == "":
		bad("url", "must name a host, not %q", c.URL)
	case u.User != nil:
		bad("url", "must not carry credentials")
	case u.RawQuery != "" || u.Fragment != "":
		bad("url", "must be a base URL without query or fragment, not %q", c.URL)
	}
	if c.TokenFile == "" {
		bad("token_file", "must be set (the directory's /search needs a bearer search token)")
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	if c.CacheTTL <= 0 {
		bad("cache_ttl", "must be positive")
	}
	if c.NegativeTTL <= 0 {
		bad("negative_ttl", "must be positive")
	}
	if c.CacheSize <= 0 {
		bad("cache_size", "must be positive")
	}
	if c.MaxResponseBytes < 1024 {
		bad("max_response_bytes", "must be at least 1024")
	}
	return errors.Join(errs...)
}
