package registration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/timstack/timstack/authn/matrixopenid"
)

// Config is the whole configuration of `timstack registration`, one YAML file, decoded strictly.
type Config struct {
	// Listen is the HTTP listen address (TLS is terminated in front of the service).
	Listen string `yaml:"listen"`
	// PublicURL is this service's external base URL: the iss of RegService tokens and the TOTP issuer host.
	PublicURL string `yaml:"public_url"`
	// Variant is pro (institution SMC-Bs, Pro domains) or epa (only Kostenträger 1.2.276.0.76.4.59,
	// insurance domains).
	Variant string `yaml:"variant"`
	// Database is the SQLite file, or a PostgreSQL URL (postgres://… or postgresql://…) for pgstore.
	Database string `yaml:"database"`

	Directory       DirectoryConfig       `yaml:"directory"`
	FederationList  FederationListConfig  `yaml:"federation_list"`
	FederationCheck FederationCheckConfig `yaml:"federation_check"`
	Signer          SignerConfig          `yaml:"signer"`
	IDP             IDPConfig             `yaml:"idp"`
	Information     InformationConfig     `yaml:"information"`
	// SessionLifetime bounds an Org-Admin session after TOTP (default 8 h).
	SessionLifetime time.Duration `yaml:"session_lifetime"`
	// LogLevel is debug, info, warn or error (default info).
	LogLevel string `yaml:"log_level"`
}

// DirectoryConfig reaches the VZD provider API.
type DirectoryConfig struct {
	// URL is the directory's base URL (…/tim-provider-services and …/ti-provider-authenticate below it).
	URL string `yaml:"url"`
	// TokenURL is the TI-Provider client-credentials endpoint (default URL + /auth/realms/TI-Provider/protocol/openid-connect/token).
	TokenURL string `yaml:"token_url"`
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (one line; never put the secret into this file).
	ClientSecretFile string `yaml:"client_secret_file"`
	// OwnerAuthenticateURL is the aud of RegService tokens (default URL + /owner-authenticate).
	OwnerAuthenticateURL string `yaml:"owner_authenticate_url"`
	// Timeout bounds one call (default 10 s: gematik counts slower answers as unhealthy).
	Timeout time.Duration `yaml:"timeout"`
}

// FederationListConfig configures polling, verification and serving of the federation list.
type FederationListConfig struct {
	// TrustDir holds the component CA certificates (PEM) the list signer must chain to.
	TrustDir string `yaml:"trust_dir"`
	// Interval between polls (default 1 h); RetryInterval and Retries after a failure (5 min, 3).
	Interval      time.Duration `yaml:"interval"`
	RetryInterval time.Duration `yaml:"retry_interval"`
	Retries       *int          `yaml:"retries"`
	// MaxAge without verified contact before the list is outdated (default 72 h, TTL_Föderationsliste).
	MaxAge time.Duration `yaml:"max_age"`
	// ProxyTokensFile optionally lists bearer tokens (one a line) proxies must present at /backend/federation.
	ProxyTokensFile string `yaml:"proxy_tokens_file"`
}

// FederationCheckConfig configures the daily federationCheck.
type FederationCheckConfig struct {
	// Interval (default 24 h) and DeleteAfter (default 30 days inactive).
	Interval    time.Duration `yaml:"interval"`
	DeleteAfter time.Duration `yaml:"delete_after"`
}

// SignerConfig is the C.FD.SIG key (role oid_tim) that signs RegService-OpenID-Tokens.
type SignerConfig struct {
	// CertFile holds the signer certificate first, then optionally its CA (both go into x5c).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// TokenLifetime of a RegService token (default 5 min).
	TokenLifetime time.Duration `yaml:"token_lifetime"`
}

// IDPConfig registers the service as relying party of the gematik IDP-Dienst.
type IDPConfig struct {
	Issuer       string `yaml:"issuer"`
	DiscoveryURL string `yaml:"discovery_url"`
	ClientID     string `yaml:"client_id"`
	// RedirectURI must point at GET /registration/v1/callback of this service (or a front end forwarding
	// code and state to it).
	RedirectURI string `yaml:"redirect_uri"`
	// TrustDir holds the anchors of the IDP's discovery and signing certificates.
	TrustDir string `yaml:"trust_dir"`
	// Production refuses TEST-ONLY anchors and plain-HTTP issuers.
	Production bool `yaml:"production"`
}

// InformationConfig configures /tim-information.
type InformationConfig struct {
	// Homeservers are the server names whose Matrix OpenID tokens /tim-information accepts (the
	// homeservers this Fachdienst operates). Empty: the domains of the active messenger services.
	Homeservers []string `yaml:"homeservers"`
	// Contact is shown in GET /tim-information/.
	Contact string `yaml:"contact"`
}

// LoadConfig reads and validates the YAML file at path.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(raw)
}

// ParseConfig decodes YAML strictly (unknown keys are errors), applies defaults and validates.
func ParseConfig(raw []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Variant == "" {
		c.Variant = "pro"
	}
	if c.Listen == "" {
		c.Listen = ":8090"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.Directory.URL = strings.TrimRight(c.Directory.URL, "/")
	if c.Directory.TokenURL == "" && c.Directory.URL != "" {
		c.Directory.TokenURL = c.Directory.URL + "/auth/realms/TI-Provider/protocol/openid-connect/token"
	}
	if c.Directory.OwnerAuthenticateURL == "" && c.Directory.URL != "" {
		c.Directory.OwnerAuthenticateURL = c.Directory.URL + "/owner-authenticate"
	}
	def(&c.Directory.Timeout, 10*time.Second)
	def(&c.FederationList.Interval, time.Hour)
	def(&c.FederationList.RetryInterval, 5*time.Minute)
	if c.FederationList.Retries == nil {
		three := 3
		c.FederationList.Retries = &three
	}
	def(&c.FederationList.MaxAge, DefaultListMaxAge)
	def(&c.FederationCheck.Interval, 24*time.Hour)
	def(&c.FederationCheck.DeleteAfter, 30*24*time.Hour)
	def(&c.Signer.TokenLifetime, 5*time.Minute)
	def(&c.SessionLifetime, 8*time.Hour)
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
}

// Validate checks every field; the error names the offending one by its YAML path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	needURL := func(field, v string, httpsOnly bool) {
		if v == "" {
			bad(field, "is required")
			return
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			bad(field, "%q is not an http(s) URL", v)
			return
		}
		if httpsOnly && u.Scheme != "https" {
			bad(field, "must be https in production")
		}
	}
	need := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			bad(field, "is required")
		}
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be positive")
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	}
	needURL("public_url", c.PublicURL, c.IDP.Production)
	if c.Variant != "pro" && c.Variant != "epa" {
		bad("variant", "%q is neither pro nor epa", c.Variant)
	}
	need("database", c.Database)
	needURL("directory.url", c.Directory.URL, c.IDP.Production)
	needURL("directory.token_url", c.Directory.TokenURL, c.IDP.Production)
	needURL("directory.owner_authenticate_url", c.Directory.OwnerAuthenticateURL, false)
	need("directory.client_id", c.Directory.ClientID)
	need("directory.client_secret_file", c.Directory.ClientSecretFile)
	positive("directory.timeout", c.Directory.Timeout)
	need("federation_list.trust_dir", c.FederationList.TrustDir)
	positive("federation_list.interval", c.FederationList.Interval)
	positive("federation_list.retry_interval", c.FederationList.RetryInterval)
	if *c.FederationList.Retries < 0 {
		bad("federation_list.retries", "must not be negative")
	}
	positive("federation_list.max_age", c.FederationList.MaxAge)
	positive("federation_check.interval", c.FederationCheck.Interval)
	positive("federation_check.delete_after", c.FederationCheck.DeleteAfter)
	need("signer.cert_file", c.Signer.CertFile)
	need("signer.key_file", c.Signer.KeyFile)
	if c.Signer.TokenLifetime <= 0 || c.Signer.TokenLifetime > time.Hour {
		bad("signer.token_lifetime", "must be between 0 and 1h (a RegService token is a bearer token that cannot be revoked)")
	}
	needURL("idp.issuer", c.IDP.Issuer, c.IDP.Production)
	if c.IDP.DiscoveryURL != "" {
		needURL("idp.discovery_url", c.IDP.DiscoveryURL, c.IDP.Production)
	}
	need("idp.client_id", c.IDP.ClientID)
	needURL("idp.redirect_uri", c.IDP.RedirectURI, c.IDP.Production)
	need("idp.trust_dir", c.IDP.TrustDir)
	for i, h := range c.Information.Homeservers {
		if validServerName(h) != nil {
			bad(fmt.Sprintf("information.homeservers[%d]", i), "%q is not a server name", h)
		}
	}
	if c.SessionLifetime <= 0 || c.SessionLifetime > 24*time.Hour {
		bad("session_lifetime", "must be between 0 and 24h")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// validServerName accepts a Matrix server name as matrixopenid parses it (DNS name or IP literal, optional
// port), in lower case: the registration service stores domains as the federation list carries them.
func validServerName(s string) error {
	if _, _, err := matrixopenid.ParseServerName(s); err != nil {
		return err
	}
	if s != strings.ToLower(s) {
		return errors.New("must be lower case")
	}
	return nil
}
