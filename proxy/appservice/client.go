package appservice

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Response size limits. Room state of TI-M rooms is small; the cap only stops a misbehaving upstream
// from exhausting memory.
const (
	maxSmallResponse = 1 << 20  // account data, single events, login
	maxStateResponse = 32 << 20 // full room state, joined members, /messages pages
)

// DefaultCallTimeout bounds every homeserver call when ClientConfig.Timeout is zero.
const DefaultCallTimeout = 10 * time.Second

// MatrixError is a non-2xx answer of the homeserver. ErrCode is empty when the body was not a Matrix
// error object.
type MatrixError struct {
	Status  int
	ErrCode string
	// Message is the homeserver's human-readable text; for logs only, never for clients.
	Message string
}

// Error names status and errcode only; the homeserver's message stays in Message for logs.
func (e *MatrixError) Error() string {
	code := e.ErrCode
	if code == "" {
		code = "no errcode"
	}
	return fmt.Sprintf("homeserver answered %d %s", e.Status, code)
}

// IsErrCode reports whether err carries a *MatrixError with the given errcode.
func IsErrCode(err error, errcode string) bool {
	var me *MatrixError
	return errors.As(err, &me) && me.ErrCode == errcode
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// HomeserverURL is the client-server API base of the homeserver as the proxy reaches it directly
	// (not through the proxy itself), e.g. http://synapse:8008.
	HomeserverURL string
	// ASToken is the registration's as_token.
	ASToken string
	// ServerName is the homeserver's Matrix server name (the part after ':' in local MXIDs).
	ServerName string
	// AppserviceID is the registration's id (used by Ping).
	AppserviceID string
	// Timeout bounds each call; zero means DefaultCallTimeout.
	Timeout time.Duration
	// HTTPClient is used for all calls; nil means a client with keep-alive connections and without gzip
	// (the homeserver is a neighbour: compressing its answers only costs its CPU).
	HTTPClient *http.Client
}

// Client calls the homeserver's client-server API as the appservice, masquerading as local users with
// ?user_id= where the call is made on a user's behalf. Safe for concurrent use.
type Client struct {
	base         string
	asToken      string
	serverName   string
	appserviceID string
	timeout      time.Duration
	hc           *http.Client
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.HomeserverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, errors.New("appservice client: homeserver URL must be an absolute http(s) URL without query")
	}
	if cfg.ASToken == "" {
		return nil, errors.New("appservice client: as_token must not be empty")
	}
	if err := validServerName(cfg.ServerName); err != nil {
		return nil, fmt.Errorf("appservice client: %w", err)
	}
	if cfg.AppserviceID == "" {
		cfg.AppserviceID = DefaultID
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultCallTimeout
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableCompression = true
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr}
	}
	return &Client{
		base:         strings.TrimRight(u.String(), "/"),
		asToken:      cfg.ASToken,
		serverName:   cfg.ServerName,
		appserviceID: cfg.AppserviceID,
		timeout:      cfg.Timeout,
		hc:           hc,
	}, nil
}

// ServerName returns the homeserver's server name.
func (c *Client) ServerName() string { return c.serverName }

// IsLocalUser reports whether userID is a syntactically valid MXID of this homeserver.
func (c *Client) IsLocalUser(userID string) bool {
	return validUserID(userID) == nil && domainOf(userID) == c.serverName
}

// StateEvent is one event of a room's current state.
type StateEvent struct {
	Type           string          `json:"type"`
	StateKey       string          `json:"state_key"`
	Sender         string          `json:"sender"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	Content        json.RawMessage `json:"content"`
}

// Event is a room event as the client-server API returns it. StateKey is nil for timeline (non-state)
// events.
type Event struct {
	EventID        string          `json:"event_id"`
	RoomID         string          `json:"room_id"`
	Type           string          `json:"type"`
	Sender         string          `json:"sender"`
	OriginServerTS int64           `json:"origin_server_ts"`
	StateKey       *string         `json:"state_key,omitempty"`
	Content        json.RawMessage `json:"content"`
}

// Whoami is the answer of /account/whoami.
type Whoami struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id,omitempty"`
	IsGuest  bool   `json:"is_guest,omitempty"`
}

// Login is the answer of an m.login.application_service login. AccessToken is a secret: never log it.
type Login struct {
	UserID      string `json:"user_id"`
	DeviceID    string `json:"device_id"`
	AccessToken string `json:"access_token"`
}

// MessagesPage is one page of GET /rooms/{roomId}/messages. End is empty when there is nothing more in
// the requested direction.
type MessagesPage struct {
	Chunk []Event `json:"chunk"`
	Start string  `json:"start"`
	End   string  `json:"end,omitempty"`
}

// call describes one request. path must already be escaped.
type call struct {
	method string
	path   string
	query  url.Values
	token  string // the bearer token; the as_token unless a user's own token is validated
	body   any
	out    any
	limit  int64
}

func (c *Client) do(ctx context.Context, k call) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + k.path
	if len(k.query) > 0 {
		target += "?" + k.query.Encode()
	}
	var body io.Reader
	if k.body != nil {
		b, err := json.Marshal(k.body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, target, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The *url.Error names the URL, which holds no token (tokens travel in the header).
		return err
	}
	defer resp.Body.Close()
	limit := k.limit
	if limit <= 0 {
		limit = maxSmallResponse
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("response larger than %d bytes", limit)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		me := &MatrixError{Status: resp.StatusCode}
		var body struct {
			ErrCode string `json:"errcode"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(data, &body) == nil {
			me.ErrCode, me.Message = body.ErrCode, body.Error
		}
		return me
	}
	if k.out == nil {
		return nil
	}
	if err := json.Unmarshal(data, k.out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

func asUserQuery(userID string) url.Values { return url.Values{"user_id": {userID}} }

// AccountData reads a local user's global account data of eventType. An absent entry (404 M_NOT_FOUND)
// is found=false with no error.
func (c *Client) AccountData(ctx context.Context, userID, eventType string) (json.RawMessage, bool, error) {
	if err := c.checkLocal(userID); err != nil {
		return nil, false, fmt.Errorf("account data: %w", err)
	}
	if eventType == "" {
		return nil, false, errors.New("account data: empty type")
	}
	var raw json.RawMessage
	err := c.do(ctx, call{
		method: http.MethodGet,
		path:   "/_matrix/client/v3/user/" + url.PathEscape(userID) + "/account_data/" + url.PathEscape(eventType),
		query:  asUserQuery(userID), token: c.asToken, out: &raw,
	})
	if err != nil {
		var me *MatrixError
		if errors.As(err, &me) && me.Status == http.StatusNotFound && me.ErrCode == "M_NOT_FOUND" {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("account data %s of %s: %w", eventType, userID, err)
	}
	return raw, true, nil
}

// RoomState reads the full current state of roomID as asUser (who must be able to see it).
func (c *Client) RoomState(ctx context.Context, asUser, roomID string) ([]StateEvent, error) {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return nil, fmt.Errorf("room state: %w", err)
	}
	var evs []StateEvent
	err := c.do(ctx, call{
		method: http.MethodGet, path: "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/state",
		query: asUserQuery(asUser), token: c.asToken, out: &evs, limit: maxStateResponse,
	})
	if err != nil {
		return nil, fmt.Errorf("room state of %s: %w", roomID, err)
	}
	return evs, nil
}

// StateEvent reads the content of one state event. Absent state (404 M_NOT_FOUND) is found=false.
func (c *Client) StateEvent(ctx context.Context, asUser, roomID, eventType, stateKey string) (json.RawMessage, bool, error) {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return nil, false, fmt.Errorf("state event: %w", err)
	}
	if eventType == "" {
		return nil, false, errors.New("state event: empty type")
	}
	p := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/state/" + url.PathEscape(eventType)
	// An empty state key is addressed with or without the trailing slash; the slash form is the spec's.
	p += "/" + url.PathEscape(stateKey)
	var raw json.RawMessage
	err := c.do(ctx, call{method: http.MethodGet, path: p, query: asUserQuery(asUser), token: c.asToken, out: &raw})
	if err != nil {
		if IsErrCode(err, "M_NOT_FOUND") {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("state %s/%s of %s: %w", eventType, stateKey, roomID, err)
	}
	return raw, true, nil
}

// Event reads one event of roomID as asUser.
func (c *Client) Event(ctx context.Context, asUser, roomID, eventID string) (*Event, error) {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if !strings.HasPrefix(eventID, "$") {
		return nil, errors.New("event: event ID must start with $")
	}
	var ev Event
	err := c.do(ctx, call{
		method: http.MethodGet,
		path:   "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/event/" + url.PathEscape(eventID),
		query:  asUserQuery(asUser), token: c.asToken, out: &ev,
	})
	if err != nil {
		return nil, fmt.Errorf("event %s in %s: %w", eventID, roomID, err)
	}
	return &ev, nil
}

// JoinedMembers returns the sorted user IDs joined to roomID, as asUser sees them.
func (c *Client) JoinedMembers(ctx context.Context, asUser, roomID string) ([]string, error) {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return nil, fmt.Errorf("joined members: %w", err)
	}
	var out struct {
		Joined map[string]json.RawMessage `json:"joined"`
	}
	err := c.do(ctx, call{
		method: http.MethodGet, path: "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/joined_members",
		query: asUserQuery(asUser), token: c.asToken, out: &out, limit: maxStateResponse,
	})
	if err != nil {
		return nil, fmt.Errorf("joined members of %s: %w", roomID, err)
	}
	ids := make([]string, 0, len(out.Joined))
	for id := range out.Joined {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// JoinedRooms returns the rooms asUser is joined to.
func (c *Client) JoinedRooms(ctx context.Context, asUser string) ([]string, error) {
	if err := c.checkLocal(asUser); err != nil {
		return nil, fmt.Errorf("joined rooms: %w", err)
	}
	var out struct {
		JoinedRooms []string `json:"joined_rooms"`
	}
	err := c.do(ctx, call{
		method: http.MethodGet, path: "/_matrix/client/v3/joined_rooms",
		query: asUserQuery(asUser), token: c.asToken, out: &out, limit: maxStateResponse,
	})
	if err != nil {
		return nil, fmt.Errorf("joined rooms: %w", err)
	}
	return out.JoinedRooms, nil
}

// Messages reads one page of roomID's timeline backwards from `from` (empty: from the newest event).
func (c *Client) Messages(ctx context.Context, asUser, roomID, from string, limit int) (*MessagesPage, error) {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := asUserQuery(asUser)
	q.Set("dir", "b")
	q.Set("limit", fmt.Sprint(limit))
	if from != "" {
		q.Set("from", from)
	}
	var page MessagesPage
	err := c.do(ctx, call{
		method: http.MethodGet, path: "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/messages",
		query: q, token: c.asToken, out: &page, limit: maxStateResponse,
	})
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", roomID, err)
	}
	return &page, nil
}

// Whoami validates a user's own access token (not masqueraded): the homeserver answers who owns it.
// An unknown or expired token is a *MatrixError with status 401 (M_UNKNOWN_TOKEN).
func (c *Client) Whoami(ctx context.Context, accessToken string) (*Whoami, error) {
	if accessToken == "" {
		return nil, errors.New("whoami: empty access token")
	}
	var w Whoami
	err := c.do(ctx, call{method: http.MethodGet, path: "/_matrix/client/v3/account/whoami", token: accessToken, out: &w})
	if err != nil {
		return nil, fmt.Errorf("whoami: %w", err)
	}
	if w.UserID == "" {
		return nil, errors.New("whoami: answer without user_id")
	}
	return &w, nil
}

// EnsureUser registers the local user localpart through the appservice unless it exists. created is
// false when the homeserver answered M_USER_IN_USE.
func (c *Client) EnsureUser(ctx context.Context, localpart string) (created bool, err error) {
	if !localpartRE.MatchString(localpart) {
		return false, fmt.Errorf("ensure user: invalid localpart %q", localpart)
	}
	body := map[string]any{"type": "m.login.application_service", "username": localpart, "inhibit_login": true}
	err = c.do(ctx, call{method: http.MethodPost, path: "/_matrix/client/v3/register", token: c.asToken, body: body})
	if err != nil {
		if IsErrCode(err, "M_USER_IN_USE") {
			return false, nil
		}
		return false, fmt.Errorf("ensure user %s: %w", localpart, err)
	}
	return true, nil
}

// LoginAs logs in a local user through the appservice (m.login.application_service) and returns a new
// access token for deviceID (empty: the homeserver picks one).
func (c *Client) LoginAs(ctx context.Context, userID, deviceID string) (*Login, error) {
	if err := c.checkLocal(userID); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	body := map[string]any{
		"type":       "m.login.application_service",
		"identifier": map[string]string{"type": "m.id.user", "user": userID},
	}
	if deviceID != "" {
		body["device_id"] = deviceID
	}
	var l Login
	if err := c.do(ctx, call{method: http.MethodPost, path: "/_matrix/client/v3/login", token: c.asToken, body: body, out: &l}); err != nil {
		return nil, fmt.Errorf("login %s: %w", userID, err)
	}
	if l.AccessToken == "" || l.UserID != userID {
		return nil, fmt.Errorf("login %s: answer without access token or for another user", userID)
	}
	return &l, nil
}

// SetDisplayName sets a local user's display name, acting as that user (the smartcard login sets
// "Name, Vorname" from the card when it creates the account).
func (c *Client) SetDisplayName(ctx context.Context, userID, name string) error {
	if err := c.checkLocal(userID); err != nil {
		return fmt.Errorf("set display name: %w", err)
	}
	if err := c.do(ctx, call{
		method: http.MethodPut, path: "/_matrix/client/v3/profile/" + url.PathEscape(userID) + "/displayname",
		query: asUserQuery(userID), token: c.asToken, body: map[string]string{"displayname": name},
	}); err != nil {
		return fmt.Errorf("set display name of %s: %w", userID, err)
	}
	return nil
}

// Leave makes asUser leave roomID (or reject a pending invite).
func (c *Client) Leave(ctx context.Context, asUser, roomID, reason string) error {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	body := map[string]string{}
	if reason != "" {
		body["reason"] = reason
	}
	if err := c.do(ctx, call{
		method: http.MethodPost, path: "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/leave",
		query: asUserQuery(asUser), token: c.asToken, body: body,
	}); err != nil {
		return fmt.Errorf("leave %s as %s: %w", roomID, asUser, err)
	}
	return nil
}

// Kick removes target from roomID, acting as asUser (who needs the power to kick).
func (c *Client) Kick(ctx context.Context, asUser, roomID, target, reason string) error {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return fmt.Errorf("kick: %w", err)
	}
	if err := validUserID(target); err != nil {
		return fmt.Errorf("kick: %w", err)
	}
	body := map[string]string{"user_id": target}
	if reason != "" {
		body["reason"] = reason
	}
	if err := c.do(ctx, call{
		method: http.MethodPost, path: "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/kick",
		query: asUserQuery(asUser), token: c.asToken, body: body,
	}); err != nil {
		return fmt.Errorf("kick %s from %s as %s: %w", target, roomID, asUser, err)
	}
	return nil
}

// Forget makes asUser forget roomID (asUser must have left). Once every local user has forgotten a
// room, a stock homeserver may purge it (Synapse: forgotten_room_retention_period).
func (c *Client) Forget(ctx context.Context, asUser, roomID string) error {
	if err := c.checkLocalRoom(asUser, roomID); err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	if err := c.do(ctx, call{
		method: http.MethodPost, path: "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/forget",
		query: asUserQuery(asUser), token: c.asToken, body: map[string]string{},
	}); err != nil {
		return fmt.Errorf("forget %s as %s: %w", roomID, asUser, err)
	}
	return nil
}

// Ping asks the homeserver to ping the appservice (POST /_matrix/client/v1/appservice/{id}/ping) and
// returns the round trip the homeserver measured. A failure proves the homeserver cannot reach the
// appservice's transaction endpoint, or does not accept the as_token.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	txn := make([]byte, 8)
	if _, err := rand.Read(txn); err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	var out struct {
		DurationMS int64 `json:"duration_ms"`
	}
	err := c.do(ctx, call{
		method: http.MethodPost, path: "/_matrix/client/v1/appservice/" + url.PathEscape(c.appserviceID) + "/ping",
		token: c.asToken, body: map[string]string{"transaction_id": "ping-" + hex.EncodeToString(txn)}, out: &out,
	})
	if err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	return time.Duration(out.DurationMS) * time.Millisecond, nil
}

func (c *Client) checkLocal(userID string) error {
	if err := validUserID(userID); err != nil {
		return err
	}
	if domainOf(userID) != c.serverName {
		return fmt.Errorf("user %s is not local to %s", userID, c.serverName)
	}
	return nil
}

func (c *Client) checkLocalRoom(asUser, roomID string) error {
	if err := c.checkLocal(asUser); err != nil {
		return err
	}
	return validRoomID(roomID)
}

// validUserID checks the shape @localpart:server (historical localparts allowed, no control chars).
func validUserID(id string) error {
	if len(id) < 4 || len(id) > 255 || id[0] != '@' || !strings.Contains(id[1:], ":") || hasControl(id) {
		return fmt.Errorf("invalid user ID %q", truncate(id))
	}
	lp, dom, _ := strings.Cut(id[1:], ":")
	if lp == "" || dom == "" {
		return fmt.Errorf("invalid user ID %q", truncate(id))
	}
	return nil
}

func validRoomID(id string) error {
	// No ':' is required: room version 12 room IDs carry no server name.
	if len(id) < 2 || len(id) > 255 || id[0] != '!' || hasControl(id) {
		return fmt.Errorf("invalid room ID %q", truncate(id))
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// domainOf returns the server name of an MXID (everything after the first ':').
func domainOf(userID string) string {
	_, dom, ok := strings.Cut(userID, ":")
	if !ok {
		return ""
	}
	return dom
}
