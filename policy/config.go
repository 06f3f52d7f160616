package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is the policy section of the timstack configuration. Every value reaches Rego as data.tim.settings
// (OperatorSettings as data.tim.operator_settings); nothing else in the Rego is configurable.
type Config struct {
	// Variant is "pro" (TI-M Pro: practitioners and organisations) or "epa" (TI-M ePA: insured persons). It
	// selects the ePA-only rules. There is no default: running ePA rules as Pro would be a silent hole.
	Variant string `yaml:"variant"`
	// ServerName is our homeserver's Matrix server name; domains other than this one are "another domain".
	ServerName string `yaml:"server_name"`
	// DefaultPermission is the server default permission configuration for users who stored none: "allow all"
	// (the reference default) or "block all". The proxy passes it in Input.PermissionConfig.
	DefaultPermission string `yaml:"default_permission"`
	// AllowedRoomVersions are the room versions createRoom and upgrade may use (A_26202: "9" and "10").
	AllowedRoomVersions []string `yaml:"allowed_room_versions"`
	// DefaultRoomVersion is set on a createRoom without room_version (A_26248: "10").
	DefaultRoomVersion string `yaml:"default_room_version"`
	// MaxCreateRoomInvites is the most MXIDs createRoom's invite list may hold (A_25368-01: 1).
	MaxCreateRoomInvites int `yaml:"max_createroom_invites"`
	// RedactionMaxAge is the age beyond which events can no longer be redacted (A_28358: 24h).
	RedactionMaxAge time.Duration `yaml:"redaction_max_age"`
	// StatusMsgMax is the longest presence status_msg in characters (250, reference behaviour).
	StatusMsgMax int `yaml:"status_msg_max"`
	// OperatorDir optionally names a folder of operator Rego modules (package tim.operator.<name>, *.rego
	// without the *_test.rego files). They are reloaded while running; a broken set never replaces a good one.
	OperatorDir string `yaml:"operator_dir"`
	// OperatorReload is how often OperatorDir is checked for changes (default 5s).
	OperatorReload time.Duration `yaml:"operator_reload"`
	// OperatorSettings is free-form data for operator modules, visible to them as data.tim.operator_settings
	// (the shipped organization_type example reads allowed_organization_types).
	OperatorSettings map[string]any `yaml:"operator_settings"`
	// DecisionCacheSize bounds the decision cache in entries (default 4096); negative disables the cache.
	DecisionCacheSize int `yaml:"decision_cache_size"`
	// Evaluator is how the Rego runs: "wasm" (default) compiles the module set with OPA's wasm target and
	// runs it on wazero; "topdown" interprets it with OPA's rego package. A module set the wasm target cannot
	// compile runs on topdown either way (logged). Both decide the same; wasm takes a fraction of the time.
	Evaluator string `yaml:"evaluator"`
}

// Evaluators.
const (
	EvaluatorWasm    = "wasm"
	EvaluatorTopdown = "topdown"
)

// Permission configuration default settings (tim-proxy-spec §3.5).
const (
	PermissionAllowAll = "allow all"
	PermissionBlockAll = "block all"
)

// Defaults fills every unset field with the TI-M value. Variant and ServerName have no defaults.
func (c *Config) Defaults() {
	if c.DefaultPermission == "" {
		c.DefaultPermission = PermissionAllowAll
	}
	if len(c.AllowedRoomVersions) == 0 {
		c.AllowedRoomVersions = []string{"9", "10"}
	}
	if c.DefaultRoomVersion == "" {
		c.DefaultRoomVersion = "10"
	}
	if c.MaxCreateRoomInvites == 0 {
		c.MaxCreateRoomInvites = 1
	}
	if c.RedactionMaxAge == 0 {
		c.RedactionMaxAge = 24 * time.Hour
	}
	if c.StatusMsgMax == 0 {
		c.StatusMsgMax = 250
	}
	if c.OperatorReload == 0 {
		c.OperatorReload = 5 * time.Second
	}
	if c.DecisionCacheSize == 0 {
		c.DecisionCacheSize = 4096
	}
	if c.Evaluator == "" {
		c.Evaluator = EvaluatorWasm
	}
}

// Validate reports every problem at once, each with its key path. It has no side effects (it does not look
// at OperatorDir; New does).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("policy.%s: %s", key, fmt.Sprintf(msg, args...)))
	}
	if c.Variant != "pro" && c.Variant != "epa" {
		bad("variant", "must be pro or epa, not %q", c.Variant)
	}
	switch {
	case c.ServerName == "":
		bad("server_name", "must be set")
	case c.ServerName != strings.ToLower(c.ServerName) || strings.ContainsAny(c.ServerName, "/@ \t"):
		bad("server_name", "must be a lower-case server name, not %q", c.ServerName)
	}
	if c.DefaultPermission != PermissionAllowAll && c.DefaultPermission != PermissionBlockAll {
		bad("default_permission", "must be %q or %q, not %q", PermissionAllowAll, PermissionBlockAll, c.DefaultPermission)
	}
	if len(c.AllowedRoomVersions) == 0 {
		bad("allowed_room_versions", "must name at least one room version")
	}
	if slices.Contains(c.AllowedRoomVersions, "") {
		bad("allowed_room_versions", "must not contain an empty version")
	}
	if !slices.Contains(c.AllowedRoomVersions, c.DefaultRoomVersion) {
		bad("default_room_version", "%q must be one of allowed_room_versions", c.DefaultRoomVersion)
	}
	if c.MaxCreateRoomInvites < 0 {
		bad("max_createroom_invites", "must not be negative")
	}
	if c.RedactionMaxAge <= 0 {
		bad("redaction_max_age", "must be positive")
	}
	if c.StatusMsgMax <= 0 {
		bad("status_msg_max", "must be positive")
	}
	if c.Evaluator != EvaluatorWasm && c.Evaluator != EvaluatorTopdown {
		bad("evaluator", "must be %q or %q, not %q", EvaluatorWasm, EvaluatorTopdown, c.Evaluator)
	}
	if c.OperatorReload < 100*time.Millisecond {
		bad("operator_reload", "must be at least 100ms")
	}
	return errors.Join(errs...)
}

// DefaultPermissionConfig is the permission configuration of a user who stored none (tim-proxy-spec §3.5).
func (c Config) DefaultPermissionConfig() PermissionConfig {
	return PermissionConfig{
		DefaultSetting:   c.DefaultPermission,
		UserExceptions:   map[string]struct{}{},
		ServerExceptions: map[string]struct{}{},
		GroupExceptions:  []string{},
	}
}
