// Package mxclient is a small, explicit Matrix client-server API client for end-to-end tests: plain JSON over
// net/http, typed results for the calls tests make all the time, Raw for everything else. Non-2xx answers come
// back as *Error so tests can assert on status and errcode.
package mxclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxBody caps how much of a response is read; sync responses in tests stay far below it.
const maxBody = 16 << 20

// Client talks to one homeserver as one user. Set BaseURL (e.g. "http://127.0.0.1:8008"); Login or a
// registration fills UserID, AccessToken and DeviceID. A Client is safe for concurrent use as long as its
// fields are not changed meanwhile.
type Client struct {
	BaseURL     string
	UserID      string
	AccessToken string
	DeviceID    string
	// HTTP is the transport; nil means a client with a 60 s timeout.
	HTTP *http.Client

	txn atomic.Uint64
}

// Error is a non-2xx answer: the HTTP status and the Matrix errcode/error of its body (empty if the body was
// not a Matrix error).
type Error struct {
	Status  int
	ErrCode string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("mxclient: HTTP %d %s: %s", e.Status, e.ErrCode, e.Message)
}

// parseError builds an *Error from a non-2xx response body.
func parseError(status int, body []byte) *Error {
	var m struct {
		ErrCode string `json:"errcode"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &m) != nil {
		return &Error{Status: status}
	}
	return &Error{Status: status, ErrCode: m.ErrCode, Message: m.Error}
}

// IsErr reports whether err is an *Error with the given status and (if non-empty) errcode.
func IsErr(err error, status int, errcode string) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status && (errcode == "" || e.ErrCode == errcode)
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
}

// Raw sends a request to path (starting with "/", may carry a query) with body encoded as JSON (nil: no
// body; []byte: sent as is) and the access token if set, and returns status and body without interpreting
// them. err is only set when no answer arrived.
func (c *Client) Raw(ctx context.Context, method, path string, body any) (status int, respBody []byte, err error) {
	return c.raw(ctx, method, path, body, c.AccessToken != "")
}

func (c *Client) raw(ctx context.Context, method, path string, body any, auth bool) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("mxclient: encode %s %s: %w", method, path, err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, r)
	if err != nil {
		return 0, nil, fmt.Errorf("mxclient: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.AccessToken)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("mxclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("mxclient: %s %s: read body: %w", method, path, err)
	}
	return resp.StatusCode, data, nil
}

// call does an authenticated (if auth) JSON request and decodes a 2xx answer into out (if non-nil).
func (c *Client) call(ctx context.Context, method, path string, body, out any, auth bool) error {
	status, data, err := c.raw(ctx, method, path, body, auth)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return parseError(status, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("mxclient: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// txnID returns a transaction ID unique for this client's lifetime and across clients sharing a device.
func (c *Client) txnID() string {
	return "mx" + strconv.FormatUint(c.txn.Add(1), 10) + "-" + rand.Text()[:8]
}

// pe path-escapes one path segment (room IDs, user IDs, event types, state keys).
func pe(s string) string { return url.PathEscape(s) }

// LoginResponse is the answer to a password login.
type LoginResponse struct {
	UserID      string `json:"user_id"`
	AccessToken string `json:"access_token"`
	DeviceID    string `json:"device_id"`
}

// Login performs m.login.password for user (a localpart or a full user ID) and stores the identity and token
// in the client. deviceID may be empty (the server picks one).
func (c *Client) Login(ctx context.Context, user, password, deviceID string) (*LoginResponse, error) {
	body := map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": user},
		"password":   password,
	}
	if deviceID != "" {
		body["device_id"] = deviceID
	}
	var resp LoginResponse
	if err := c.call(ctx, http.MethodPost, "/_matrix/client/v3/login", body, &resp, false); err != nil {
		return nil, err
	}
	c.UserID, c.AccessToken, c.DeviceID = resp.UserID, resp.AccessToken, resp.DeviceID
	return &resp, nil
}

// WhoamiResponse is the answer to /account/whoami.
type WhoamiResponse struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// Whoami returns the user and device the access token belongs to.
func (c *Client) Whoami(ctx context.Context) (*WhoamiResponse, error) {
	var resp WhoamiResponse
	if err := c.call(ctx, http.MethodGet, "/_matrix/client/v3/account/whoami", nil, &resp, true); err != nil {
		return nil, err
	}
	return &resp, nil
}

// CreateRoom sends req (the /createRoom body, e.g. preset, room_version, invite, initial_state) and returns
// the new room ID.
func (c *Client) CreateRoom(ctx context.Context, req map[string]any) (string, error) {
	if req == nil {
		req = map[string]any{}
	}
	var resp struct {
		RoomID string `json:"room_id"`
	}
	if err := c.call(ctx, http.MethodPost, "/_matrix/client/v3/createRoom", req, &resp, true); err != nil {
		return "", err
	}
	return resp.RoomID, nil
}

// Invite invites userID into roomID.
func (c *Client) Invite(ctx context.Context, roomID, userID string) error {
	return c.call(ctx, http.MethodPost, "/_matrix/client/v3/rooms/"+pe(roomID)+"/invite",
		map[string]any{"user_id": userID}, nil, true)
}

// Join joins a room by ID or alias and returns the room ID. serverNames are ?server_name= routing hints
// for rooms the own server is not in.
func (c *Client) Join(ctx context.Context, roomIDOrAlias string, serverNames ...string) (string, error) {
	q := url.Values{}
	for _, s := range serverNames {
		q.Add("server_name", s)
	}
	path := "/_matrix/client/v3/join/" + pe(roomIDOrAlias)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var resp struct {
		RoomID string `json:"room_id"`
	}
	if err := c.call(ctx, http.MethodPost, path, map[string]any{}, &resp, true); err != nil {
		return "", err
	}
	return resp.RoomID, nil
}

// Leave leaves (or rejects an invite to) roomID.
func (c *Client) Leave(ctx context.Context, roomID string) error {
	return c.call(ctx, http.MethodPost, "/_matrix/client/v3/rooms/"+pe(roomID)+"/leave", map[string]any{}, nil, true)
}

// Forget forgets a room the user has left.
func (c *Client) Forget(ctx context.Context, roomID string) error {
	return c.call(ctx, http.MethodPost, "/_matrix/client/v3/rooms/"+pe(roomID)+"/forget", map[string]any{}, nil, true)
}

// SendMessage sends a room event with PUT /send/{eventType}/{txnId} and returns its event ID.
func (c *Client) SendMessage(ctx context.Context, roomID, eventType string, content any) (string, error) {
	var resp struct {
		EventID string `json:"event_id"`
	}
	path := "/_matrix/client/v3/rooms/" + pe(roomID) + "/send/" + pe(eventType) + "/" + pe(c.txnID())
	if err := c.call(ctx, http.MethodPut, path, content, &resp, true); err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// SendText sends an m.room.message with msgtype m.text.
func (c *Client) SendText(ctx context.Context, roomID, text string) (string, error) {
	return c.SendMessage(ctx, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": text})
}

// SendState sets a state event and returns its event ID.
func (c *Client) SendState(ctx context.Context, roomID, eventType, stateKey string, content any) (string, error) {
	var resp struct {
		EventID string `json:"event_id"`
	}
	path := "/_matrix/client/v3/rooms/" + pe(roomID) + "/state/" + pe(eventType) + "/" + pe(stateKey)
	if err := c.call(ctx, http.MethodPut, path, content, &resp, true); err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// GetState returns the content of one state event.
func (c *Client) GetState(ctx context.Context, roomID, eventType, stateKey string) (json.RawMessage, error) {
	var resp json.RawMessage
	path := "/_matrix/client/v3/rooms/" + pe(roomID) + "/state/" + pe(eventType) + "/" + pe(stateKey)
	if err := c.call(ctx, http.MethodGet, path, nil, &resp, true); err != nil {
		return nil, err
	}
	return resp, nil
}

// Redact redacts eventID (PUT with a transaction ID) and returns the redaction's event ID.
func (c *Client) Redact(ctx context.Context, roomID, eventID, reason string) (string, error) {
	body := map[string]any{}
	if reason != "" {
		body["reason"] = reason
	}
	var resp struct {
		EventID string `json:"event_id"`
	}
	path := "/_matrix/client/v3/rooms/" + pe(roomID) + "/redact/" + pe(eventID) + "/" + pe(c.txnID())
	if err := c.call(ctx, http.MethodPut, path, body, &resp, true); err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// SetAccountData stores global account data of type dataType for the client's user.
func (c *Client) SetAccountData(ctx context.Context, dataType string, content any) error {
	path := "/_matrix/client/v3/user/" + pe(c.UserID) + "/account_data/" + pe(dataType)
	return c.call(ctx, http.MethodPut, path, content, nil, true)
}

// GetAccountData returns global account data of type dataType for the client's user.
func (c *Client) GetAccountData(ctx context.Context, dataType string) (json.RawMessage, error) {
	var resp json.RawMessage
	path := "/_matrix/client/v3/user/" + pe(c.UserID) + "/account_data/" + pe(dataType)
	if err := c.call(ctx, http.MethodGet, path, nil, &resp, true); err != nil {
		return nil, err
	}
	return resp, nil
}

// ProfileResponse is a user's profile.
type ProfileResponse struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// Profile fetches userID's profile with the client's access token.
func (c *Client) Profile(ctx context.Context, userID string) (*ProfileResponse, error) {
	return c.profile(ctx, userID, true)
}

// ProfileUnauthenticated fetches userID's profile without an access token (TI-M servers answer 401).
func (c *Client) ProfileUnauthenticated(ctx context.Context, userID string) (*ProfileResponse, error) {
	return c.profile(ctx, userID, false)
}

func (c *Client) profile(ctx context.Context, userID string, auth bool) (*ProfileResponse, error) {
	var resp ProfileResponse
	if err := c.call(ctx, http.MethodGet, "/_matrix/client/v3/profile/"+pe(userID), nil, &resp, auth); err != nil {
		return nil, err
	}
	return &resp, nil
}
