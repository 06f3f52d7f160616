package appservice

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultID is the appservice ID (and the path element of the client ping endpoint) that
// NewRegistration writes.
const DefaultID = "timstack-proxy"

// DefaultSenderLocalpart is the localpart of the appservice's own user.
const DefaultSenderLocalpart = "timstack-proxy"

// Namespace is one entry of a registration's users, aliases or rooms list.
type Namespace struct {
	// Exclusive reserves the namespace for this appservice; the proxy never sets it, because local users
	// register and log in through the homeserver as usual.
	Exclusive bool `yaml:"exclusive"`
	// Regex is matched by the homeserver against user IDs, aliases or room IDs.
	Regex string `yaml:"regex"`
}

// Namespaces lists what the appservice is interested in.
type Namespaces struct {
	Users   []Namespace `yaml:"users"`
	Aliases []Namespace `yaml:"aliases"`
	Rooms   []Namespace `yaml:"rooms"`
}

// Registration is the appservice registration file the homeserver loads (Synapse:
// app_service_config_files). Field names follow the Matrix Application Service API.
type Registration struct {
	ID              string     `yaml:"id"`
	URL             string     `yaml:"url"`
	ASToken         string     `yaml:"as_token"`
	HSToken         string     `yaml:"hs_token"`
	SenderLocalpart string     `yaml:"sender_localpart"`
	Namespaces      Namespaces `yaml:"namespaces"`
	// RateLimited is false: the proxy reads on behalf of many users and must not be throttled like one.
	RateLimited bool `yaml:"rate_limited"`
	// ReceiveEphemeral stays false: typing, receipts and presence carry nothing the proxy decides on.
	ReceiveEphemeral bool `yaml:"receive_ephemeral"`
	// Protocols is accepted when loading hand-written files; NewRegistration leaves it empty.
	Protocols []string `yaml:"protocols,omitempty"`
}

// UserNamespaceRegex returns the user namespace regex covering every local user of serverName.
//
// It is anchored at both ends although the brief form is "@.*:<server>": Synapse matches with Python's
// re.match, which anchors only the start, so "@x:example.org.evil" would otherwise fall into the
// namespace of example.org; Go-based homeservers do not anchor at all.
func UserNamespaceRegex(serverName string) string {
	return "^@.*:" + regexp.QuoteMeta(serverName) + "$"
}

// NewRegistration returns a registration with fresh random 256-bit tokens for an appservice listening
// at url, interested (non-exclusively) in every user of serverName.
func NewRegistration(serverName, asURL string) (*Registration, error) {
	if err := validServerName(serverName); err != nil {
		return nil, fmt.Errorf("appservice registration: %w", err)
	}
	as, err := randomToken()
	if err != nil {
		return nil, fmt.Errorf("appservice registration: as_token: %w", err)
	}
	hs, err := randomToken()
	if err != nil {
		return nil, fmt.Errorf("appservice registration: hs_token: %w", err)
	}
	r := &Registration{
		ID:              DefaultID,
		URL:             asURL,
		ASToken:         as,
		HSToken:         hs,
		SenderLocalpart: DefaultSenderLocalpart,
		Namespaces: Namespaces{
			Users:   []Namespace{{Exclusive: false, Regex: UserNamespaceRegex(serverName)}},
			Aliases: []Namespace{},
			Rooms:   []Namespace{},
		},
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// YAML renders the registration file in the format homeservers read.
func (r *Registration) YAML() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	c := *r
	// Empty lists are written as [] rather than null: Synapse iterates them without a None check.
	if c.Namespaces.Users == nil {
		c.Namespaces.Users = []Namespace{}
	}
	if c.Namespaces.Aliases == nil {
		c.Namespaces.Aliases = []Namespace{}
	}
	if c.Namespaces.Rooms == nil {
		c.Namespaces.Rooms = []Namespace{}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("appservice registration: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("appservice registration: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// LoadRegistration reads a registration file strictly: unknown keys, a second document and invalid
// values are errors.
func LoadRegistration(path string) (*Registration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("appservice registration: %w", err)
	}
	return ParseRegistration(b)
}

// ParseRegistration decodes registration YAML strictly (see LoadRegistration).
func ParseRegistration(b []byte) (*Registration, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var r Registration
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("appservice registration: decode: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("appservice registration: more than one YAML document")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

var localpartRE = regexp.MustCompile(`^[a-z0-9._=/+\-]+$`)

// Validate reports every problem of the registration, each with its key.
func (r *Registration) Validate() error {
	var errs []error
	if strings.TrimSpace(r.ID) == "" {
		errs = append(errs, errors.New("id: must not be empty"))
	}
	if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("url: must be an absolute http(s) URL (the proxy needs transactions)"))
	}
	if len(r.ASToken) < 32 {
		errs = append(errs, errors.New("as_token: must be at least 32 characters"))
	}
	if len(r.HSToken) < 32 {
		errs = append(errs, errors.New("hs_token: must be at least 32 characters"))
	}
	if r.ASToken != "" && r.ASToken == r.HSToken {
		errs = append(errs, errors.New("hs_token: must differ from as_token"))
	}
	if !localpartRE.MatchString(r.SenderLocalpart) {
		errs = append(errs, errors.New("sender_localpart: must be a non-empty Matrix localpart"))
	}
	if len(r.Namespaces.Users) == 0 {
		errs = append(errs, errors.New("namespaces.users: must name the local users"))
	}
	for _, k := range []struct {
		kind string
		list []Namespace
	}{{"users", r.Namespaces.Users}, {"aliases", r.Namespaces.Aliases}, {"rooms", r.Namespaces.Rooms}} {
		kind := k.kind
		for i, ns := range k.list {
			if ns.Regex == "" {
				errs = append(errs, fmt.Errorf("namespaces.%s[%d].regex: must not be empty", kind, i))
				continue
			}
			if _, err := regexp.Compile(ns.Regex); err != nil {
				errs = append(errs, fmt.Errorf("namespaces.%s[%d].regex: %w", kind, i, err))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("appservice registration: %w", errors.Join(errs...))
}

// validServerName checks the Matrix server-name grammar loosely: a host with an optional port, no path.
func validServerName(s string) error {
	if s == "" || len(s) > 255 || strings.ContainsAny(s, "/@?#!\\ \t\r\n") {
		return fmt.Errorf("server name %q: invalid", s)
	}
	return nil
}
