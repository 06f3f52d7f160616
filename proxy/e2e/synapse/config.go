// Package synapse starts real Synapse homeservers (installed from PyPI by scripts/synapse.sh) as loopback
// processes for the Messenger-Proxy end-to-end tests: it writes a TI-M flavoured homeserver.yaml, copies a
// pre-migrated template database so a start takes seconds instead of a minute, generates the signing key,
// supervises the process and registers users through the shared-secret admin API.
//
// The package takes no testing.TB: callers decide whether a missing Synapse skips or fails (see InstallOrFind).
package synapse

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"strconv"
)

// Config describes one homeserver. Zero values get test-friendly defaults in Start.
type Config struct {
	// ServerName is the Matrix server name (the domain in user IDs). Default: Addr.
	ServerName string
	// Addr is the loopback listen address "127.0.0.1:port"; port 0 or an empty Addr picks a free port.
	Addr string
	// DataDir holds homeserver.yaml, the database, media, logs and the signing key. Required.
	DataDir string
	// Venv is the Synapse virtualenv (the directory holding bin/python). Required.
	Venv string
	// Template is a migrated SQLite database copied to DataDir/homeserver.db when that file does not exist yet
	// (InstallOrFind returns it). It serves any ServerName: Synapse ties a database to its server name only
	// through rows in `users`, and the template has none. Empty: Synapse creates the schema itself (about
	// twice as slow to start, plus background updates running beside the test).
	Template string
	// AppServiceFiles are application-service registration files (app_service_config_files).
	AppServiceFiles []string
	// HTTPSProxy, when set, becomes https_proxy/HTTPS_PROXY of the process so outbound federation, key and
	// remote-media requests go through it; no_proxy exempts loopback so appservice and proxy-local calls do not.
	HTTPSProxy string
	// FederationCAFile is a PEM bundle that replaces the system roots for federation (federation_custom_ca_list).
	FederationCAFile string
	// RegistrationSharedSecret enables /_synapse/admin/v1/register. Default: random.
	RegistrationSharedSecret string
	// PublicBaseURL is public_baseurl. Default: "http://" + Addr + "/".
	PublicBaseURL string
	// Extra is merged into homeserver.yaml last: maps merge recursively, other values replace, a nil value
	// removes the key.
	Extra map[string]any
}

// ratelimit is the "practically unlimited" rate limit Complement's Synapse image uses, so tests never wait
// on a limiter they do not test.
func ratelimit() map[string]any {
	return map[string]any{"per_second": 9999, "burst_count": 9999}
}

// homeserverConfig renders the homeserver.yaml content for cfg (already defaulted). The output is JSON, which
// is YAML, so paths and secrets need no YAML quoting rules.
func homeserverConfig(cfg Config, port int) ([]byte, error) {
	dir := cfg.DataDir
	hs := map[string]any{
		"server_name":                 cfg.ServerName,
		"public_baseurl":              cfg.PublicBaseURL,
		"pid_file":                    filepath.Join(dir, "homeserver.pid"),
		"signing_key_path":            filepath.Join(dir, "signing.key"),
		"log_config":                  filepath.Join(dir, "log.config"),
		"media_store_path":            filepath.Join(dir, "media"),
		"report_stats":                false,
		"trusted_key_servers":         []any{},
		"suppress_key_server_warning": true,
		"database": map[string]any{
			"name": "sqlite3",
			"args": map[string]any{"database": filepath.Join(dir, "homeserver.db")},
		},
		"listeners": []any{map[string]any{
			"port":           port,
			"bind_addresses": []any{"127.0.0.1"},
			"type":           "http",
			"tls":            false,
			"x_forwarded":    true,
			"resources":      []any{map[string]any{"names": []any{"client", "federation"}, "compress": false}},
		}},
		// a template-less database queues dozens of background updates; without the pauses they finish in
		// seconds instead of a minute of intermittent work beside the test
		"background_updates":         map[string]any{"sleep_enabled": false},
		"registration_shared_secret": cfg.RegistrationSharedSecret,
		"enable_registration":        false,
		"bcrypt_rounds":              4,
		// TI-M settings (tim-proxy-spec.md §3.9)
		"allow_guest_access":                          false,
		"url_preview_enabled":                         false,
		"require_auth_for_profile_requests":           true,
		"allow_public_rooms_over_federation":          false,
		"encryption_enabled_by_default_for_room_type": "all",
		"max_upload_size":                             "120M",
		// Deprecated unauthenticated media download must keep answering 200 (checklist #42, A_26263): with
		// authenticated media on, Synapse marks new uploads "authenticated" and the legacy endpoints 404 them.
		"enable_authenticated_media":     false,
		"federation_verify_certificates": true,
		// Loopback federation in tests without a proxy; with https_proxy Synapse ignores the IP range lists.
		"ip_range_whitelist": []any{"127.0.0.0/8", "::1/128"},
		"experimental_features": map[string]any{
			"msc3814_enabled": true, // dehydrated devices (TI-M: sending to logged-out users)
		},
		"rc_message":      ratelimit(),
		"rc_registration": ratelimit(),
		"rc_login": map[string]any{
			"address":         ratelimit(),
			"account":         ratelimit(),
			"failed_attempts": ratelimit(),
		},
		"rc_joins":          map[string]any{"local": ratelimit(), "remote": ratelimit()},
		"rc_joins_per_room": ratelimit(),
		"rc_invites": map[string]any{
			"per_room":   ratelimit(),
			"per_user":   ratelimit(),
			"per_issuer": ratelimit(),
		},
		"rc_3pid_validation":             ratelimit(),
		"rc_admin_redaction":             ratelimit(),
		"rc_presence":                    map[string]any{"per_user": ratelimit()},
		"rc_delayed_event_mgmt":          ratelimit(),
		"rc_room_creation":               ratelimit(),
		"rc_user_directory":              ratelimit(),
		"rc_media_create":                ratelimit(),
		"rc_key_requests":                ratelimit(),
		"rc_reports":                     ratelimit(),
		"rc_profile":                     ratelimit(),
		"rc_third_party_invite":          ratelimit(),
		"rc_registration_token_validity": ratelimit(),
		"rc_federation": map[string]any{
			"window_size":  1000,
			"sleep_limit":  9999,
			"sleep_delay":  1,
			"reject_limit": 9999,
			"concurrent":   9999,
		},
		"federation_rr_transactions_per_room_per_second": 9999,
	}
	if len(cfg.AppServiceFiles) > 0 {
		files := make([]any, len(cfg.AppServiceFiles))
		for i, f := range cfg.AppServiceFiles {
			files[i] = f
		}
		hs["app_service_config_files"] = files
	}
	if cfg.FederationCAFile != "" {
		hs["federation_custom_ca_list"] = []any{cfg.FederationCAFile}
	}
	mergeInto(hs, cfg.Extra)
	out, err := json.MarshalIndent(hs, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("synapse: render homeserver.yaml: %w", err)
	}
	return out, nil
}

// mergeInto merges src into dst: nested maps merge, nil deletes, anything else replaces.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sv, srcIsMap := v.(map[string]any)
		dv, dstIsMap := dst[k].(map[string]any)
		if srcIsMap && dstIsMap {
			merged := maps.Clone(dv)
			mergeInto(merged, sv)
			dst[k] = merged
			continue
		}
		dst[k] = v
	}
}

// logConfig is a Python logging dictConfig writing INFO and above to DataDir/homeserver.log.
func logConfig(dir string) ([]byte, error) {
	lc := map[string]any{
		"version": 1,
		"formatters": map[string]any{
			"precise": map[string]any{"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s"},
		},
		"handlers": map[string]any{
			"file": map[string]any{
				"class":     "logging.FileHandler",
				"formatter": "precise",
				"filename":  filepath.Join(dir, "homeserver.log"),
				"encoding":  "utf8",
			},
		},
		"root":                     map[string]any{"level": "INFO", "handlers": []any{"file"}},
		"disable_existing_loggers": false,
	}
	out, err := json.MarshalIndent(lc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("synapse: render log config: %w", err)
	}
	return out, nil
}

// loopbackAddr validates addr as a loopback host:port (port 0 allowed) and returns host and port.
func loopbackAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("synapse: address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		// Synapse binds bind_addresses literally; only IPv4 loopback is used so no test listens elsewhere.
		return "", 0, fmt.Errorf("synapse: address %q: want an IPv4 loopback address", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("synapse: address %q: bad port", addr)
	}
	return host, port, nil
}
