package proxy

// The client-server request flow, top to bottom:
//
//  1. shape      — the request target is unambiguous (route.CheckTarget) and the body fits the limits;
//  2. route      — the endpoint is on the Matrix v1.11 allow-list (404 / 405 M_UNRECOGNIZED otherwise);
//  3. local      — endpoints the proxy answers itself (support document, blocked features);
//  4. identity   — for endpoints with a decision, the access token is resolved to a user (whoami, cached);
//  5. facts      — a policy.Input is built from the request and, where needed, from the homeserver through
//                  the application service (permission configs, room facts, event timestamps);
//  6. decide     — the policy engine decides; a denial is answered from reasons.go, an allow may carry
//                  obligations (rewrites of the body);
//  7. forward    — the request goes to the homeserver; a few answers are post-processed (versions, the
//                  default permission config, logout invalidating the token cache).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/matrix"
	"github.com/timstack/timstack/proxy/mxerr"
	"github.com/timstack/timstack/proxy/route"
	"github.com/timstack/timstack/proxy/sso"
)

// clientRequest is one client request on its way through the flow.
type clientRequest struct {
	r      *http.Request
	match  route.Match
	body   []byte // the JSON body when the route needs it inspected; nil when streamed
	token  string
	userID string // set by identify for routes with a decision
	device string
}

// serveClient is the client listener's handler.
func (p *Proxy) serveClient(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, "client", p.client)
}

func (p *Proxy) client(w http.ResponseWriter, r *http.Request) (string, error) {
	// The IDP's redirect back to the login edge lives outside /_matrix (proxy/sso).
	if r.URL.Path == sso.CallbackPath && p.sso != nil && r.Method == http.MethodGet {
		return "sso.callback", p.sso.Callback(w, r)
	}
	// 1. shape
	tgt, err := route.CheckTarget(r.Method, r.RequestURI)
	if err != nil {
		return "", refuse(policy.ReasonAmbiguousRequest).Wrap(err)
	}
	// 2. route
	m, err := p.clientRoutes.Lookup(r.Method, tgt)
	if err != nil {
		return "", routeError(err)
	}
	id := m.Route.ID
	cr := &clientRequest{r: r, match: m}

	// 3. local answers
	switch {
	case m.Route.Flags.Has(route.Blocked):
		// URL previews (A_26344), media config (A_26262), login/get_token: known to Matrix, off for TI-M.
		return id, refuse(policy.ReasonEndpointUnknown)
	case id == "wellknown.support":
		return id, p.writeJSON(w, http.StatusOK, p.cfg.Support)
	case p.sso != nil && (id == "client.login" || id == "client.login.sso.redirect"):
		// The proxy is the login edge: smartcard login, loginToken redemption (proxy/login.go).
		if handled, err := p.login(w, cr); handled || err != nil {
			return id, err
		}
	}

	// Bodies the proxy does not read stream to the homeserver, bounded all the same: media by the upload
	// limit, everything else too (key backups can be large, but not unbounded).
	if r.ContentLength > p.cfg.Limits.MaxUploadBody {
		return id, refuse(policy.ReasonBodyTooLarge)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, p.cfg.Limits.MaxUploadBody)
	}
	if inspectsBody(id) {
		if cr.body, err = readJSONBody(r, p.cfg.Limits.MaxJSONBody); err != nil {
			return id, err
		}
	}

	// 4. identity, 5. facts, 6. decide
	if build := clientInputs[id]; build != nil {
		if err := p.identify(cr); err != nil {
			return id, err
		}
		in, err := build(p, cr)
		if err != nil {
			return id, err
		}
		if in != nil {
			dec, err := p.decide(r.Context(), "client", id, in)
			if err != nil {
				return id, err
			}
			if dec.Obligations.EmptyResult {
				return id, p.writeJSON(w, http.StatusOK, map[string]any{"limited": false, "results": []any{}})
			}
			if cr.body, err = applyObligations(id, cr.body, dec.Obligations); err != nil {
				return id, err
			}
		}
	}

	// 7. forward, with the few answers the proxy post-processes.
	return id, p.forwardClient(w, cr)
}

// inspectsBody lists the routes whose JSON body a decision or a post-processing step reads.
func inspectsBody(id string) bool {
	switch id {
	case "client.createRoom", "client.rooms.invite", "client.rooms.state", "client.rooms.send",
		"client.rooms.upgrade", "client.presence.status", "client.account_data.global", "client.publicRooms",
		"client.rooms.join", "client.join", "client.knock":
		return true
	}
	return false
}

// identify resolves the caller's access token to a user. A route with a decision needs to know who asks;
// the homeserver would refuse a missing or unknown token anyway, the proxy just refuses it first.
func (p *Proxy) identify(cr *clientRequest) error {
	cr.token = accessToken(cr.r)
	if cr.token == "" {
		if allowsAnonymous(cr.match.Route.ID) {
			return nil
		}
		return refuse(policy.ReasonTokenMissing)
	}
	userID, device, err := p.tokens.user(cr.r.Context(), cr.token, p.whoami)
	if err != nil {
		var me *appservice.MatrixError
		if errors.As(err, &me) && (me.Status == http.StatusUnauthorized || me.Status == http.StatusForbidden) {
			return refuse(policy.ReasonTokenUnknown)
		}
		return refuse(policy.ReasonUpstreamUnavailable).Wrap(err)
	}
	cr.userID, cr.device = userID, device
	return nil
}

// allowsAnonymous are decision routes that unauthenticated callers may reach; the policy decides what they
// get (profiles → 401 per A_26289, public rooms → 401 per A_26518, registration → guest rule).
func allowsAnonymous(id string) bool {
	switch id {
	case "client.profile", "client.profile.displayname", "client.profile.avatar_url", "client.publicRooms", "client.directory.list.room",
		"client.register", "media.download", "media.thumbnail": // legacy media stays unauthenticated (A_26263)
		return true
	}
	return false
}

// accessToken reads the bearer token from the Authorization header or the deprecated access_token query
// parameter (still accepted by Matrix v1.11).
func accessToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// clientInputBuilder builds the policy input for one route; nil input means "no decision needed".
type clientInputBuilder func(p *Proxy, cr *clientRequest) (*policy.Input, error)

// clientInputs maps route IDs to their fact builders. Every route by which a stock homeserver accepts a room
// creation, an invite or another membership change is here, with all its version prefixes (the route table
// gives them one ID).
var clientInputs = map[string]clientInputBuilder{
	"client.createRoom":            (*Proxy).createRoomInput,
	"client.rooms.invite":          (*Proxy).inviteInput,
	"client.rooms.state":           (*Proxy).stateInput,
	"client.rooms.send":            (*Proxy).sendInput,
	"client.rooms.redact":          (*Proxy).redactInput,
	"client.rooms.upgrade":         (*Proxy).upgradeInput,
	"client.rooms.join":            (*Proxy).joinInput,
	"client.join":                  (*Proxy).joinInput,
	"client.knock":                 (*Proxy).joinInput,
	"client.profile":               (*Proxy).profileInput,
	"client.profile.displayname":   (*Proxy).profileInput,
	"client.profile.avatar_url":    (*Proxy).profileInput,
	"client.publicRooms":           (*Proxy).publicRoomsInput,
	"client.directory.list.room":   (*Proxy).publicRoomsInput,
	"client.user_directory.search": (*Proxy).userDirectoryInput,
	"client.presence.status":       (*Proxy).presenceInput,
	"client.register":              (*Proxy).registerInput,
	"client.media.download":        (*Proxy).mediaInput,
	"client.media.thumbnail":       (*Proxy).mediaInput,
	"media.download":               (*Proxy).mediaInput,
	"media.thumbnail":              (*Proxy).mediaInput,
	"client.account_data.global":   (*Proxy).accountDataInput,
	// /logout/all: the user is resolved before the token dies, so the cache can drop all their tokens.
	"client.logout.all": func(*Proxy, *clientRequest) (*policy.Input, error) { return nil, nil },
}

func (p *Proxy) actor(cr *clientRequest) *policy.User {
	if cr.userID == "" {
		return nil
	}
	return p.user(cr.userID)
}

// user builds a policy user; an unparsable MXID keeps its raw string and an empty domain, which no
// federation list contains, so rules fail closed on it.
func (p *Proxy) user(userID string) *policy.User {
	_, server, err := matrix.ParseUserID(userID)
	if err != nil {
		return &policy.User{UserID: userID}
	}
	domain := matrix.ServerNameHost(server)
	return &policy.User{UserID: userID, Domain: domain, Local: strings.EqualFold(server, p.cfg.ServerName)}
}

// invitee adds the target and, for local targets, their permission configuration (A_26021-01). A read
// error fails closed: without the invitee's configuration the proxy cannot know the invite is allowed.
func (p *Proxy) invitee(ctx context.Context, in *policy.Input, userID string) error {
	in.Target = p.user(userID)
	if !in.Target.Local {
		return nil
	}
	pc, err := p.perms.Get(ctx, userID)
	if err != nil {
		return refuse(policy.ReasonPolicyError).Wrap(err)
	}
	in.PermissionConfig = &pc
	return nil
}

// createRoom: A_25368-01, A_26202/A_26203/A_26248, A_28596, A_26515-01, A_25324-01, A_26021-01, ePA rules.
func (p *Proxy) createRoomInput(cr *clientRequest) (*policy.Input, error) {
	var req struct {
		Invite          []string                   `json:"invite"`
		Invite3PID      []json.RawMessage          `json:"invite_3pid"`
		RoomVersion     string                     `json:"room_version"`
		Preset          string                     `json:"preset"`
		Visibility      string                     `json:"visibility"`
		CreationContent map[string]json.RawMessage `json:"creation_content"`
		InitialState    []stateEvent               `json:"initial_state"`
	}
	if err := decodeBody(cr.body, &req); err != nil {
		return nil, err
	}
	// Synapse answers 500 to a null where it expects a list or an object (it iterates `invite` unchecked);
	// a client sending one gets a clear 400 instead.
	if err := refuseNulls(cr.body, "invite", "invite_3pid", "initial_state", "creation_content", "power_level_content_override"); err != nil {
		return nil, err
	}
	room := &policy.Room{
		Version: req.RoomVersion, Preset: req.Preset, Visibility: req.Visibility,
		InviteCount: len(req.Invite) + len(req.Invite3PID),
	}
	if t, ok := req.CreationContent["type"]; ok {
		_ = json.Unmarshal(t, &room.Type)
	}
	if f, ok := req.CreationContent["m.federate"]; ok {
		var b bool
		if json.Unmarshal(f, &b) == nil {
			room.Federate = &b
		}
	}
	// The preset decides join rule and history visibility unless initial_state overrides them, as the
	// homeserver applies them (Matrix v1.11 createRoom: preset first, then initial_state).
	preset := req.Preset
	if preset == "" {
		preset = "private_chat"
		if req.Visibility == "public" {
			preset = "public_chat"
		}
	}
	room.Preset = preset
	room.JoinRule = "invite"
	if preset == "public_chat" {
		room.JoinRule = "public"
	}
	for _, ev := range req.InitialState {
		switch ev.Type {
		case "m.room.join_rules":
			room.JoinRule = ev.stringField("join_rule")
		case "m.room.history_visibility":
			room.HistoryVisibility = ev.stringField("history_visibility")
		case "m.room.encryption":
			room.Encrypted = ev.stringField("algorithm") != ""
		}
	}
	in := &policy.Input{Action: policy.ActionRoomCreate, Origin: p.cfg.ServerName, Actor: p.actor(cr), Room: room}
	if len(req.Invite) > 0 {
		if err := p.invitee(cr.r.Context(), in, req.Invite[0]); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// invite: AF_10061-04, A_26021-01, A_25705.
func (p *Proxy) inviteInput(cr *clientRequest) (*policy.Input, error) {
	var req struct {
		UserID string `json:"user_id"`
	}
	if err := decodeBody(cr.body, &req); err != nil {
		return nil, err
	}
	if req.UserID == "" {
		// A third-party (3PID) invite: TI-M has no identity server; nothing may be invited that the proxy
		// cannot check.
		return nil, mxerr.BadJSON("user_id is required")
	}
	in := &policy.Input{Action: policy.ActionInvite, Origin: p.cfg.ServerName, Actor: p.actor(cr),
		Room: &policy.Room{RoomID: cr.match.Params["roomId"]}}
	return in, p.invitee(cr.r.Context(), in, req.UserID)
}

// stateInput covers every state event; an m.room.member event with membership invite is an invite by
// another route and gets the same checks.
func (p *Proxy) stateInput(cr *clientRequest) (*policy.Input, error) {
	if cr.r.Method != http.MethodPut {
		return nil, nil
	}
	evType, stateKey := cr.match.Params["eventType"], cr.match.Params["stateKey"]
	var content map[string]json.RawMessage
	if err := decodeBody(cr.body, &content); err != nil {
		return nil, err
	}
	ev := stateEvent{Type: evType, Content: content}
	roomID := cr.match.Params["roomId"]
	if evType == "m.room.member" {
		switch ev.stringField("membership") {
		case "invite":
			in := &policy.Input{Action: policy.ActionInvite, Origin: p.cfg.ServerName, Actor: p.actor(cr),
				Room: &policy.Room{RoomID: roomID}}
			return in, p.invitee(cr.r.Context(), in, stateKey)
		case "join", "knock":
			return p.joinFacts(cr, roomID)
		}
		return nil, nil
	}
	room := p.roomFacts(roomID)
	room.StateEventType = evType
	switch evType {
	case "m.room.join_rules":
		room.JoinRule = ev.stringField("join_rule")
	case "m.room.history_visibility":
		room.HistoryVisibility = ev.stringField("history_visibility")
	case "m.room.encryption":
		room.Encrypted = ev.stringField("algorithm") != ""
	}
	return &policy.Input{Action: policy.ActionStateEvent, Origin: p.cfg.ServerName, Actor: p.actor(cr), Room: room}, nil
}

// sendInput: threads (A_25395-02) and reactions (A_26228-01).
func (p *Proxy) sendInput(cr *clientRequest) (*policy.Input, error) {
	var content struct {
		RelatesTo *struct {
			RelType string `json:"rel_type"`
			Key     string `json:"key"`
		} `json:"m.relates_to"`
	}
	if err := decodeBody(cr.body, &content); err != nil {
		return nil, err
	}
	ev := &policy.Event{Type: cr.match.Params["eventType"]}
	if content.RelatesTo != nil {
		ev.RelType, ev.Key = content.RelatesTo.RelType, content.RelatesTo.Key
		ev.KeyIsSingleEmoji = isSingleEmoji(ev.Key)
	}
	return &policy.Input{Action: policy.ActionSendEvent, Origin: p.cfg.ServerName, Actor: p.actor(cr),
		Room: &policy.Room{RoomID: cr.match.Params["roomId"]}, Event: ev}, nil
}

// redactInput: A_28358 — the redacted event's age comes from the homeserver, read as the redacting user.
func (p *Proxy) redactInput(cr *clientRequest) (*policy.Input, error) {
	roomID, eventID := cr.match.Params["roomId"], cr.match.Params["eventId"]
	ev, err := p.as.Event(cr.r.Context(), cr.userID, roomID, eventID)
	if err != nil {
		var me *appservice.MatrixError
		if errors.As(err, &me) && me.Status == http.StatusNotFound {
			// The homeserver will answer 404 itself; nothing to protect.
			return nil, nil
		}
		return nil, refuse(policy.ReasonUpstreamUnavailable).Wrap(err)
	}
	age := p.now().UnixMilli() - ev.OriginServerTS
	actor := p.actor(cr)
	if actor != nil {
		actor.Admin = slices.Contains(p.cfg.ServerAdmins, cr.userID)
	}
	return &policy.Input{Action: policy.ActionRedact, Origin: p.cfg.ServerName, Actor: actor,
		Room: &policy.Room{RoomID: roomID}, Event: &policy.Event{Type: ev.Type, AgeMillis: age}}, nil
}

func (p *Proxy) upgradeInput(cr *clientRequest) (*policy.Input, error) {
	var req struct {
		NewVersion string `json:"new_version"`
	}
	if err := decodeBody(cr.body, &req); err != nil {
		return nil, err
	}
	if req.NewVersion == "" {
		return nil, mxerr.BadJSON("new_version is required")
	}
	return &policy.Input{Action: policy.ActionRoomUpgrade, Origin: p.cfg.ServerName, Actor: p.actor(cr),
		Room: &policy.Room{RoomID: cr.match.Params["roomId"], Version: req.NewVersion}}, nil
}

func (p *Proxy) joinInput(cr *clientRequest) (*policy.Input, error) {
	target := cr.match.Params["roomId"]
	if target == "" {
		target = cr.match.Params["roomIdOrAlias"]
	}
	return p.joinFacts(cr, target)
}

// joinFacts: joins of other servers' public rooms without an invite are refused (A_26515-01); room facts
// come from the application service's room index when the room is known.
func (p *Proxy) joinFacts(cr *clientRequest, roomIDOrAlias string) (*policy.Input, error) {
	room := p.roomFacts(roomIDOrAlias)
	if room.RoomID != "" && p.rooms != nil {
		if f, ok := p.rooms.Room(roomIDOrAlias); ok {
			room.Invited = f.Members[cr.userID].Membership == "invite"
		}
	}
	return &policy.Input{Action: policy.ActionJoin, Origin: p.cfg.ServerName, Actor: p.actor(cr), Room: room}, nil
}

// profileInput: unauthenticated lookups → 401 (A_26289); ePA lookups need a shared room.
func (p *Proxy) profileInput(cr *clientRequest) (*policy.Input, error) {
	in := &policy.Input{Action: policy.ActionProfile, Origin: p.cfg.ServerName, Actor: p.actor(cr),
		Target: p.user(cr.match.Params["userId"]), Request: &policy.Request{Authenticated: cr.userID != ""}}
	if cr.userID != "" && p.rooms != nil {
		in.Request.SharesRoom = cr.userID == in.Target.UserID || p.rooms.SharesRoom(cr.userID, in.Target.UserID)
		if !in.Request.SharesRoom && p.cfg.Variant == "epa" {
			// The room index only knows rooms it saw events of since the proxy started; before saying "no
			// shared room" (403) ask the homeserver.
			in.Request.SharesRoom = p.sharesRoomAtHomeserver(cr.r.Context(), cr.userID, in.Target.UserID)
		}
	}
	return in, nil
}

// maxSharedRoomScan bounds how many of the caller's rooms a profile lookup inspects.
const maxSharedRoomScan = 200

// sharesRoomAtHomeserver reads the caller's joined rooms and their members through the application
// service. Any error, or more rooms than the bound, answers false: the ePA rule then refuses (fail closed).
func (p *Proxy) sharesRoomAtHomeserver(ctx context.Context, userID, other string) bool {
	rooms, err := p.as.JoinedRooms(ctx, userID)
	if err != nil || len(rooms) > maxSharedRoomScan {
		return false
	}
	for _, roomID := range rooms {
		members, err := p.as.JoinedMembers(ctx, userID, roomID)
		if err != nil {
			return false
		}
		for _, m := range members {
			if m == other {
				return true
			}
		}
	}
	return false
}

func (p *Proxy) publicRoomsInput(cr *clientRequest) (*policy.Input, error) {
	return &policy.Input{Action: policy.ActionPublicRooms, Origin: p.cfg.ServerName, Actor: p.actor(cr),
		Request: &policy.Request{Method: cr.r.Method, Surface: "client", Authenticated: cr.userID != ""}}, nil
}

func (p *Proxy) userDirectoryInput(cr *clientRequest) (*policy.Input, error) {
	return &policy.Input{Action: policy.ActionUserDirectory, Origin: p.cfg.ServerName, Actor: p.actor(cr)}, nil
}

func (p *Proxy) presenceInput(cr *clientRequest) (*policy.Input, error) {
	var req struct {
		StatusMsg string `json:"status_msg"`
	}
	if err := decodeBody(cr.body, &req); err != nil {
		return nil, err
	}
	return &policy.Input{Action: policy.ActionPresence, Origin: p.cfg.ServerName, Actor: p.actor(cr),
		Request: &policy.Request{StatusMsgLength: utf8.RuneCountInString(req.StatusMsg), Authenticated: true}}, nil
}

func (p *Proxy) registerInput(cr *clientRequest) (*policy.Input, error) {
	kind := cr.r.URL.Query().Get("kind")
	if kind == "" {
		kind = "user"
	}
	return &policy.Input{Action: policy.ActionRegister, Origin: p.cfg.ServerName,
		Request: &policy.Request{RegisterKind: kind}}, nil
}

// mediaInput: A_26328 — a media path names a server, which must be federated (or ours).
func (p *Proxy) mediaInput(cr *clientRequest) (*policy.Input, error) {
	return &policy.Input{Action: policy.ActionMediaRemote, Origin: p.cfg.ServerName, Actor: p.actor(cr),
		Request: &policy.Request{MediaServer: matrix.ServerNameHost(cr.match.Params["serverName"]), Authenticated: cr.userID != ""}}, nil
}

// accountDataInput needs no decision; it validates a permission configuration a user stores, so that what
// the proxy later enforces is what the user meant (a malformed one would silently fall back to the default).
func (p *Proxy) accountDataInput(cr *clientRequest) (*policy.Input, error) {
	t := cr.match.Params["type"]
	if cr.r.Method == http.MethodPut && isPermissionConfigType(t) {
		if _, err := appservice.ParsePermissionConfig(t, cr.body); err != nil {
			return nil, mxerr.BadJSON("Invalid permission configuration").Wrap(err)
		}
	}
	return nil, nil
}

// roomFacts returns what the room index knows of a room (empty facts for unknown rooms).
func (p *Proxy) roomFacts(roomID string) *policy.Room {
	room := &policy.Room{RoomID: roomID}
	if p.rooms == nil {
		return room
	}
	if f, ok := p.rooms.Room(roomID); ok {
		room.JoinRule = f.JoinRule
		room.HistoryVisibility = f.HistoryVisibility
		room.Encrypted = f.Encrypted
		room.Version = f.Version
		room.Type = f.Type
		room.CreatorDomain = f.CreatorDomain
		room.Federate = f.Federate
	}
	return room
}

// stateEvent is an event of createRoom's initial_state or a state PUT's content.
type stateEvent struct {
	Type     string                     `json:"type"`
	StateKey string                     `json:"state_key"`
	Content  map[string]json.RawMessage `json:"content"`
}

func (e stateEvent) stringField(name string) string {
	var s string
	if raw, ok := e.Content[name]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// applyObligations rewrites an allowed request's body as the policy requires.
func applyObligations(id string, body []byte, ob policy.Obligations) ([]byte, error) {
	if id != "client.createRoom" || (!ob.ForceFederateFalse && ob.RoomVersion == "" && ob.HistoryVisibility == "") {
		return body, nil
	}
	var req map[string]json.RawMessage
	if err := decodeBody(body, &req); err != nil {
		return nil, err
	}
	if ob.RoomVersion != "" {
		if _, ok := req["room_version"]; !ok {
			req["room_version"], _ = json.Marshal(ob.RoomVersion)
		}
	}
	if ob.ForceFederateFalse {
		cc := map[string]json.RawMessage{}
		if raw, ok := req["creation_content"]; ok {
			if err := json.Unmarshal(raw, &cc); err != nil || cc == nil {
				return nil, mxerr.BadJSON("creation_content must be an object")
			}
		}
		cc["m.federate"] = json.RawMessage("false")
		req["creation_content"], _ = json.Marshal(cc)
	}
	if ob.HistoryVisibility != "" {
		var state []json.RawMessage
		if raw, ok := req["initial_state"]; ok {
			if err := json.Unmarshal(raw, &state); err != nil {
				return nil, mxerr.BadJSON("initial_state must be an array")
			}
		}
		ev, _ := json.Marshal(map[string]any{"type": "m.room.history_visibility", "state_key": "",
			"content": map[string]string{"history_visibility": ob.HistoryVisibility}})
		state = append(state, ev)
		req["initial_state"], _ = json.Marshal(state)
	}
	return json.Marshal(req)
}

// readJSONBody reads a body the proxy must inspect, bounded by limit.
func readJSONBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, refuse(policy.ReasonBodyTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, mxerr.BadJSON("Could not read body").Wrap(err)
	}
	if int64(len(b)) > limit {
		return nil, refuse(policy.ReasonBodyTooLarge)
	}
	return b, nil
}

// decodeBody parses an inspected JSON body; an empty body is an empty object (GET-like calls of POST
// routes such as publicRooms).
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	// Unmarshal checks the whole text first, so a syntax error is "not JSON" whatever v is; one pass less
	// than json.Valid before it.
	if err := json.Unmarshal(body, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return refuse(policy.ReasonNotJSON)
		}
		return refuse(policy.ReasonBadJSON).Wrap(err)
	}
	// The proxy decides on what encoding/json reads; keys that it folds together could let the homeserver
	// read another value (jsonkeys.go). checkJSONKeys needs valid JSON, which Unmarshal has just proven.
	if err := checkJSONKeys(body); err != nil {
		return refuse(policy.ReasonBadJSON).Wrap(err)
	}
	return nil
}

// refuseNulls refuses a body whose top-level keys are JSON null.
func refuseNulls(body []byte, keys ...string) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil // decodeBody has judged the body already
	}
	for _, k := range keys {
		if v, ok := top[k]; ok && string(bytes.TrimSpace(v)) == "null" {
			return refuse(policy.ReasonBadJSON).Wrap(fmt.Errorf("%s is null", k))
		}
	}
	return nil
}

// whoami asks the homeserver who owns an access token (the user's own token, not the appservice's).
func (p *Proxy) whoami(ctx context.Context, token string) (string, string, error) {
	w, err := p.as.Whoami(ctx, token)
	if err != nil {
		return "", "", err
	}
	return w.UserID, w.DeviceID, nil
}

// isPermissionConfigType: the three account-data types of the TI-M permission configuration.
func isPermissionConfigType(t string) bool {
	switch t {
	case appservice.TypePermissionConfigPro, appservice.TypePermissionConfigEPA, appservice.TypePermissionConfigLegacy:
		return true
	}
	return false
}
