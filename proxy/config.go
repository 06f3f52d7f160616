package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/dirfacts"
	"github.com/timstack/timstack/proxy/flist"
	"github.com/timstack/timstack/proxy/matrix"
	"github.com/timstack/timstack/proxy/sso"
)

// Config is the whole configuration of `timstack proxy`, read from one YAML file. Every field is
// documented; config.example.yaml shows them all and a test keeps it valid.
type Config struct {
	// ServerName is the Matrix server name of the homeserver behind this proxy (the domain in its MXIDs).
	ServerName string `yaml:"server_name"`
	// Variant selects the TI-M rule set: pro or epa.
	Variant string `yaml:"variant"`
	// ServerAdmins are the local users who administer the homeserver. They are exempt from the redaction
	// age limit (A_28358, as Famedly's proxy does), e.g. to remove unlawful content. Standard Matrix APIs
	// do not tell whether a user is a homeserver admin, so the operator names them here.
	ServerAdmins []string `yaml:"server_admins"`

	Listen     ListenConfig     `yaml:"listen"`
	Homeserver HomeserverConfig `yaml:"homeserver"`
	Forward    ForwardConfig    `yaml:"forward"`
	// FederationList configures where the signed list comes from and how it is verified.
	FederationList FederationListConfig `yaml:"federation_list"`
	Policy         policy.Config        `yaml:"policy"`
	Permissions    PermissionsConfig    `yaml:"permissions"`
	// Support is served at /.well-known/matrix/support (A_26265).
	Support   SupportConfig   `yaml:"support"`
	RoomJobs  RoomJobsConfig  `yaml:"room_jobs"`
	Limits    LimitsConfig    `yaml:"limits"`
	Log       LogConfig       `yaml:"log"`
	Discovery DiscoveryConfig `yaml:"discovery"`
	// DirectoryFacts optionally resolves directory facts (organisation types) of remote domains for operator
	// policy modules; off unless url is set.
	DirectoryFacts dirfacts.Config `yaml:"directory_facts"`
	// SSO optionally makes the proxy the login edge: smartcard login through the gematik IDP (proxy/sso).
	SSO sso.Config `yaml:"sso"`
}

// ListenConfig names the four listeners. Client and federation face the network; forward and internal
// must only be reachable by the homeserver and the operator.
type ListenConfig struct {
	// Client is the client-server reverse proxy (plain HTTP unless ClientTLS is set).
	Client string `yaml:"client"`
	// ClientTLS optionally serves the client listener over TLS.
	ClientTLS TLSConfig `yaml:"client_tls"`
	// Federation is the inbound server-server reverse proxy; TLS is required.
	Federation    string    `yaml:"federation"`
	FederationTLS TLSConfig `yaml:"federation_tls"`
	// FederationPublicPort is the port remote servers reach the federation listener on, announced in
	// /.well-known/matrix/server (default: the port of Federation).
	FederationPublicPort int `yaml:"federation_public_port"`
	// Forward is the forward proxy the homeserver uses for all outbound traffic (https_proxy).
	Forward string `yaml:"forward"`
	// Internal serves /healthz, /readyz, /metrics and the application-service endpoints the homeserver
	// pushes transactions to.
	Internal string `yaml:"internal"`
}

// TLSConfig is a certificate and key in PEM files.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (t TLSConfig) enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// HomeserverConfig says how to reach the homeserver behind the proxy.
type HomeserverConfig struct {
	// URL is the homeserver's listener for client and federation resources (plain HTTP on a private network).
	URL string `yaml:"url"`
	// AppServiceRegistration is the registration YAML written by `timstack proxy appservice-registration`
	// and listed in the homeserver's app_service_config_files.
	AppServiceRegistration string `yaml:"appservice_registration"`
	// Timeout bounds every non-streaming upstream request (default 60s; /sync long-polls get their own
	// timeout plus this).
	Timeout time.Duration `yaml:"timeout"`
}

// ForwardConfig is the egress side: the TLS-intercepting forward proxy and where it may connect.
type ForwardConfig struct {
	// CACertFile and CAKeyFile are the proxy CA the homeserver trusts (federation_custom_ca_list).
	CACertFile string `yaml:"ca_cert_file"`
	CAKeyFile  string `yaml:"ca_key_file"`
	// RootCAFiles verify remote servers' TLS certificates; empty means the system roots.
	RootCAFiles []string `yaml:"root_ca_files"`
	// AllowHosts may be reached without a federation check: push gateways, the SSO host.
	AllowHosts []string `yaml:"allow_hosts"`
	// Timeout bounds each outbound request.
	Timeout time.Duration `yaml:"timeout"`
}

// DiscoveryConfig resolves remote server names. Resolve is a test-only map of "host:port" (or "host") to
// "ip:port" used by the egress dialer and key fetching; production leaves it empty and uses DNS.
type DiscoveryConfig struct {
	Resolve map[string]string `yaml:"resolve"`
}

// FederationListConfig selects one source and the trust the list's signer must chain to.
type FederationListConfig struct {
	// Source is file, provider_api or regservice.
	Source string `yaml:"source"`
	// File is the path of a compact JWS list (source file).
	File string `yaml:"file"`
	// URL is the registration service's I_internVerification endpoint (source regservice) or the
	// directory's base URL (source provider_api).
	URL string `yaml:"url"`
	// ClientID and ClientSecret (or ClientSecretFile) authenticate at the directory's provider API.
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// SigAlg requested from the directory: BP256R1 (default) or ES256.
	SigAlg string `yaml:"sig_alg"`
	// TrustDir holds PEM component CAs (GEM.KOMP-CA…) the list signer must chain to.
	TrustDir string `yaml:"trust_dir"`
	// TSL is a gematik TSL file whose verified CAs are trusted (alternative or addition to TrustDir);
	// TSLAnchor is a folder with the TSL signer's CA (PEM).
	TSL       string `yaml:"tsl"`
	TSLAnchor string `yaml:"tsl_anchor"`
	// TSLAllowStale accepts a TSL past its NextUpdate (gematik's test TSL); never in production.
	TSLAllowStale bool `yaml:"tsl_allow_stale"`
	// OCSP is require (default) or off.
	OCSP string `yaml:"ocsp"`
	// OCSPURLOverride sends every OCSP request to this URL (test responders).
	OCSPURLOverride string `yaml:"ocsp_url_override"`
	// AllowTestTrust must be true to accept TEST-ONLY anchors (gematik test PKI); production leaves it false.
	AllowTestTrust bool         `yaml:"allow_test_trust"`
	Keeper         flist.Config `yaml:",inline"`
}

// PermissionsConfig is the server default for users without a permission configuration.
type PermissionsConfig struct {
	// Default is the configuration returned for an absent account-data entry and used for enforcement.
	Default PermissionDefault `yaml:"default"`
	// CacheTTL bounds how long a read configuration is trusted (it is dropped at once when the user's own
	// PUT passes the proxy).
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// PermissionDefault is the server default permission configuration in YAML form. "@LOCAL_SERVER@" in
// server_exceptions stands for our own server name.
type PermissionDefault struct {
	// DefaultSetting is "allow all" or "block all".
	DefaultSetting   string   `yaml:"default_setting"`
	UserExceptions   []string `yaml:"user_exceptions"`
	ServerExceptions []string `yaml:"server_exceptions"`
	// GroupExceptions may hold "isInsuredPerson" (Pro only).
	GroupExceptions []string `yaml:"group_exceptions"`
}

// Policy converts the YAML form into the policy's shape, expanding @LOCAL_SERVER@.
func (d PermissionDefault) Policy(serverName string) policy.PermissionConfig {
	pc := policy.PermissionConfig{
		DefaultSetting:   d.DefaultSetting,
		UserExceptions:   map[string]struct{}{},
		ServerExceptions: map[string]struct{}{},
		GroupExceptions:  append([]string(nil), d.GroupExceptions...),
	}
	for _, u := range d.UserExceptions {
		pc.UserExceptions[u] = struct{}{}
	}
	for _, s := range d.ServerExceptions {
		if s == "@LOCAL_SERVER@" {
			s = serverName
		}
		pc.ServerExceptions[s] = struct{}{}
	}
	return pc
}

// SupportConfig is the content of /.well-known/matrix/support (A_26265).
type SupportConfig struct {
	Contacts    []SupportContact `yaml:"contacts" json:"contacts,omitempty"`
	SupportPage string           `yaml:"support_page" json:"support_page,omitempty"`
}

// SupportContact is one contact of the support document.
type SupportContact struct {
	MatrixID     string `yaml:"matrix_id" json:"matrix_id,omitempty"`
	EmailAddress string `yaml:"email_address" json:"email_address,omitempty"`
	Role         string `yaml:"role" json:"role"`
}

// RoomJobsConfig configures the periodic room clean-up through the application service.
type RoomJobsConfig struct {
	Enabled bool `yaml:"enabled"`
	// Interval between runs.
	Interval time.Duration `yaml:"interval"`
	// OrphanedAfter: state-only rooms older than this with only the creator left are cleaned (A_28564-01).
	OrphanedAfter time.Duration `yaml:"orphaned_after"`
	// InsuredOnlyAfter: ePA rooms holding only insured users for this long are left by local users.
	InsuredOnlyAfter time.Duration `yaml:"insured_only_after"`
	// ShortThresholds lets end-to-end tests use thresholds of seconds; not settable from YAML.
	ShortThresholds bool `yaml:"-"`
}

// LimitsConfig bounds what a request may cost.
type LimitsConfig struct {
	// MaxJSONBody is the largest JSON body inspected (bigger → 413); media uploads stream and are bounded
	// by MaxUploadBody.
	MaxJSONBody   int64 `yaml:"max_json_body"`
	MaxUploadBody int64 `yaml:"max_upload_body"`
	// TokenCacheSize and TokenCacheTTL bound the access-token → user cache.
	TokenCacheSize int           `yaml:"token_cache_size"`
	TokenCacheTTL  time.Duration `yaml:"token_cache_ttl"`
	// StatusMsgMax is the longest presence status_msg in characters.
	StatusMsgMax int `yaml:"status_msg_max"`
}

// LogConfig configures the operational log and the decision log.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// DecisionLog is a file receiving one JSON line per decision; "-" is stdout, "" disables it. Lines are
	// written in batches, at most 100 ms after they were decided (a crash loses at most that much).
	DecisionLog string `yaml:"decision_log"`
	// DecisionLogSync writes every decision line at once instead, for tools that read the log while the
	// proxy runs (the dev stack's walkthrough); it costs a write system call per decided request.
	DecisionLogSync bool `yaml:"decision_log_sync"`
}

// LoadConfig reads, strictly decodes, defaults and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(raw)
}

// ParseConfig decodes YAML strictly (an unknown key is an error), applies defaults and validates.
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
	if c.Variant == "" {
		c.Variant = "pro"
	}
	c.Policy.Variant = c.Variant
	c.Policy.ServerName = c.ServerName
	c.Policy.Defaults()
	if c.Homeserver.Timeout == 0 {
		c.Homeserver.Timeout = 60 * time.Second
	}
	if c.Forward.Timeout == 0 {
		c.Forward.Timeout = 30 * time.Second
	}
	if c.FederationList.SigAlg == "" {
		c.FederationList.SigAlg = "BP256R1"
	}
	if c.FederationList.OCSP == "" {
		c.FederationList.OCSP = "require"
	}
	c.FederationList.Keeper.Defaults()
	c.DirectoryFacts.Defaults()
	if c.Permissions.Default.DefaultSetting == "" {
		c.Permissions.Default.DefaultSetting = "allow all"
	}
	if c.Permissions.CacheTTL == 0 {
		c.Permissions.CacheTTL = 5 * time.Minute
	}
	if c.RoomJobs.Interval == 0 {
		c.RoomJobs.Interval = time.Hour
	}
	if c.RoomJobs.OrphanedAfter == 0 {
		c.RoomJobs.OrphanedAfter = 6 * 7 * 24 * time.Hour
	}
	if c.RoomJobs.InsuredOnlyAfter == 0 {
		c.RoomJobs.InsuredOnlyAfter = 7 * 24 * time.Hour
	}
	if c.Limits.MaxJSONBody == 0 {
		c.Limits.MaxJSONBody = 1 << 20
	}
	if c.Limits.MaxUploadBody == 0 {
		c.Limits.MaxUploadBody = 120 << 20
	}
	if c.Limits.TokenCacheSize == 0 {
		c.Limits.TokenCacheSize = 100_000
	}
	if c.Limits.TokenCacheTTL == 0 {
		c.Limits.TokenCacheTTL = 5 * time.Minute
	}
	if c.Limits.StatusMsgMax == 0 {
		c.Limits.StatusMsgMax = 250
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if len(c.Support.Contacts) == 0 && c.Support.SupportPage == "" {
		c.Support.Contacts = []SupportContact{{MatrixID: "@admin:" + c.ServerName, Role: "m.role.admin"}}
	}
}

// Validate reports every problem with its key path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.ServerName == "" || !matrix.ValidServerName(c.ServerName) {
		bad("server_name", "must be a Matrix server name, got %q", c.ServerName)
	}
	if c.Variant != "pro" && c.Variant != "epa" {
		bad("variant", "must be pro or epa, got %q", c.Variant)
	}
	for i, id := range c.ServerAdmins {
		if _, server, err := matrix.ParseUserID(id); err != nil || server != c.ServerName {
			bad(fmt.Sprintf("server_admins[%d]", i), "must be a user ID on %s, got %q", c.ServerName, id)
		}
	}
	for key, addr := range map[string]string{"listen.client": c.Listen.Client, "listen.federation": c.Listen.Federation,
		"listen.forward": c.Listen.Forward, "listen.internal": c.Listen.Internal} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "must be host:port, got %q", addr)
		}
	}
	if c.Listen.FederationTLS.CertFile == "" || c.Listen.FederationTLS.KeyFile == "" {
		bad("listen.federation_tls", "cert_file and key_file are required (remote servers connect over TLS)")
	}
	if c.Homeserver.URL == "" || !(strings.HasPrefix(c.Homeserver.URL, "http://") || strings.HasPrefix(c.Homeserver.URL, "https://")) {
		bad("homeserver.url", "must be an http(s) URL, got %q", c.Homeserver.URL)
	}
	if c.Homeserver.AppServiceRegistration == "" {
		bad("homeserver.appservice_registration", "is required (the proxy reads account data and room state as an application service)")
	}
	if c.Forward.CACertFile == "" || c.Forward.CAKeyFile == "" {
		bad("forward", "ca_cert_file and ca_key_file are required (the homeserver's outbound TLS is intercepted)")
	}
	fl := c.FederationList
	switch fl.Source {
	case "file":
		if fl.File == "" {
			bad("federation_list.file", "is required for source file")
		}
	case "provider_api":
		if fl.URL == "" || fl.ClientID == "" || (fl.ClientSecret == "" && fl.ClientSecretFile == "") {
			bad("federation_list", "source provider_api needs url, client_id and client_secret or client_secret_file")
		}
	case "regservice":
		if fl.URL == "" {
			bad("federation_list.url", "is required for source regservice")
		}
	default:
		bad("federation_list.source", "must be file, provider_api or regservice, got %q", fl.Source)
	}
	if fl.TrustDir == "" && fl.TSL == "" {
		bad("federation_list", "trust_dir or tsl is required (the list signer must chain to a TI component CA)")
	}
	if fl.TSL != "" && fl.TSLAnchor == "" {
		bad("federation_list.tsl_anchor", "is required with tsl")
	}
	if fl.SigAlg != "BP256R1" && fl.SigAlg != "ES256" {
		bad("federation_list.sig_alg", "must be BP256R1 or ES256, got %q", fl.SigAlg)
	}
	if fl.OCSP != "require" && fl.OCSP != "off" {
		bad("federation_list.ocsp", "must be require or off, got %q", fl.OCSP)
	}
	if err := fl.Keeper.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DirectoryFacts.Enabled() {
		if err := c.DirectoryFacts.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.SSO.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	d := c.Permissions.Default
	if d.DefaultSetting != "allow all" && d.DefaultSetting != "block all" {
		bad("permissions.default.default_setting", "must be \"allow all\" or \"block all\", got %q", d.DefaultSetting)
	}
	for _, u := range d.UserExceptions {
		if _, _, err := matrix.ParseUserID(u); err != nil {
			bad("permissions.default.user_exceptions", "%q is not a Matrix user ID", u)
		}
	}
	for _, g := range d.GroupExceptions {
		if g != "isInsuredPerson" {
			bad("permissions.default.group_exceptions", "unknown group %q (only isInsuredPerson exists)", g)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Limits.MaxJSONBody < 1024 {
		bad("limits.max_json_body", "must be at least 1024 bytes")
	}
	return errors.Join(errs...)
}
