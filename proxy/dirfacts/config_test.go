package dirfacts

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := Config{URL: "https://fhir-directory.vzd.ti-dienste.de", TokenFile: "/etc/timstack/vzd-search.token"}
		c.Defaults()
		return c
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error, empty: valid
	}{
		{name: "a base URL and a token file are enough", mutate: func(*Config) {}},
		{name: "an empty section switches lookups off", mutate: func(c *Config) { *c = Config{} }},
		{name: "required without a URL cannot be met", mutate: func(c *Config) { *c = Config{Required: true} },
			want: []string{"directory_facts.url: must be set when required is true"}},
		{name: "a token file without a URL is a mistake", mutate: func(c *Config) { *c = Config{TokenFile: "/x"} },
			want: []string{"directory_facts.url: must be set when token_file is set"}},
		{name: "the URL must be http or https", mutate: func(c *Config) { c.URL = "ftp://vzd.example" },
			want: []string{"directory_facts.url: must be an http or https URL"}},
		{name: "the URL must name a host", mutate: func(c *Config) { c.URL = "https:///search" },
			want: []string{"directory_facts.url: must name a host"}},
		{name: "the URL carries no credentials", mutate: func(c *Config) { c.URL = "https://u:p@vzd.example" },
			want: []string{"directory_facts.url: must not carry credentials"}},
		{name: "the URL is a base without a query", mutate: func(c *Config) { c.URL = "https://vzd.example/?x=1" },
			want: []string{"directory_facts.url: must be a base URL"}},
		{name: "a token file is required", mutate: func(c *Config) { c.TokenFile = "" },
			want: []string{"directory_facts.token_file: must be set"}},
		{name: "every bad value is reported at once", mutate: func(c *Config) {
			c.Timeout, c.CacheTTL, c.NegativeTTL, c.CacheSize, c.MaxResponseBytes = -1, -1, -1, -1, 10
		}, want: []string{"directory_facts.timeout:", "directory_facts.cache_ttl:", "directory_facts.negative_ttl:",
			"directory_facts.cache_size:", "directory_facts.max_response_bytes:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaultsAndYAML(t *testing.T) {
	var c Config
	src := "url: https://vzd.example\ntoken_file: /run/vzd.token\nrequired: true\nnegative_ttl: 30s\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	want := Config{URL: "https://vzd.example", TokenFile: "/run/vzd.token", Required: true, NegativeTTL: 30 * time.Second,
		Timeout: 3 * time.Second, CacheTTL: time.Hour, CacheSize: 4096, MaxResponseBytes: 1 << 20}
	if c != want {
		t.Errorf("config %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if !c.Enabled() {
		t.Error("a config with a URL is not enabled")
	}
}

func TestNewRefusesADisabledOrInvalidConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no URL":        {},
		"no token file": {URL: "https://vzd.example"},
	} {
		if _, err := New(cfg, nil, nil, nil); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
