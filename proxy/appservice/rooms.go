package appservice

import (
	"container/list"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
)

// Memberships as in m.room.member content.membership.
const (
	MembershipJoin   = "join"
	MembershipInvite = "invite"
	MembershipLeave  = "leave"
	MembershipBan    = "ban"
	MembershipKnock  = "knock"
)

// Member is one user's membership in a room.
type Member struct {
	Membership string
	// Since is the origin_server_ts of the membership event that set it.
	Since int64
}

// RoomFacts is what the index knows about one room. Timestamps are origin_server_ts milliseconds; zero
// means "not seen".
type RoomFacts struct {
	RoomID string
	// Creator is the m.room.create sender (content.creator when the sender is missing);
	// CreatorDomain is its server name.
	Creator       string
	CreatorDomain string
	// Version is content.room_version of m.room.create ("1" when absent, as the spec defines).
	Version string
	// Type is content.type of m.room.create (e.g. de.gematik.tim.roomtype.default.v1).
	Type              string
	JoinRule          string
	HistoryVisibility string
	// Encrypted is true once an m.room.encryption event with an algorithm was seen.
	Encrypted bool
	// Federate is content["m.federate"] of m.room.create; nil = absent = true.
	Federate *bool
	// Members maps user ID to membership, for every m.room.member event seen.
	Members map[string]Member
	// CreatedTS is the m.room.create event's timestamp.
	CreatedTS int64
	// LastStateTS and LastTimelineTS are the newest state and non-state events seen.
	LastStateTS    int64
	LastTimelineTS int64
	// FromCreate is true when the first event the index saw for the room was its m.room.create, i.e.
	// the index has seen every event since; false for rooms first met mid-life or rebuilt by Backfill,
	// whose LastTimelineTS says nothing about older messages.
	FromCreate bool
}

// JoinedMembers returns the user IDs whose membership is join.
func (f RoomFacts) JoinedMembers() []string {
	var out []string
	for u, m := range f.Members {
		if m.Membership == MembershipJoin {
			out = append(out, u)
		}
	}
	return out
}

func (f RoomFacts) clone() RoomFacts {
	c := f
	c.Members = maps.Clone(f.Members)
	if f.Federate != nil {
		v := *f.Federate
		c.Federate = &v
	}
	return c
}

// IndexConfig configures a RoomIndex.
type IndexConfig struct {
	// HSToken is the registration's hs_token the homeserver presents on every AS call.
	HSToken string
	// MaxRooms bounds the index; the least recently updated room is dropped first (it can be rebuilt
	// with Backfill). Zero means 100000.
	MaxRooms int
	// MaxTxnIDs bounds the memory of transaction IDs already processed. Zero means 4096.
	MaxTxnIDs int
	// MaxBodyBytes bounds a transaction body. Zero means 64 MiB (a full Synapse transaction holds
	// 100 events of up to 64 KiB each plus ephemeral data).
	MaxBodyBytes int64
}

// RoomIndex keeps the room facts the proxy's policy and jobs need, fed by the homeserver's appservice
// transactions (PUT /_matrix/app/v1/transactions/{txnId}). Safe for concurrent use.
//
// The index is in memory only and is not persisted: after a restart it fills again from new
// transactions, and a room the proxy needs facts for before that is rebuilt from the homeserver's
// current state with Backfill. State is applied in the order the homeserver delivers it; Backfill
// replaces a room's state facts with the homeserver's resolved current state.
type RoomIndex struct {
	hsTokenSum [32]byte
	cfg        IndexConfig
	client     *Client
	log        *slog.Logger

	mu        sync.Mutex
	rooms     map[string]*list.Element // roomID → element holding *RoomFacts
	lru       *list.List               // front = most recently updated
	userRooms map[string]map[string]struct{}
	// updates counts live events applied per indexed room, so Backfill can tell whether the room changed
	// while its state was being read.
	updates map[string]uint64

	txnMu   sync.Mutex
	txnSeen map[string]struct{}
	txnRing []string
	txnNext int
}

// NewRoomIndex returns an empty index. client is used by Backfill only and may be nil in tests of the
// transaction path; log may be nil.
func NewRoomIndex(cfg IndexConfig, client *Client, log *slog.Logger) (*RoomIndex, error) {
	if len(cfg.HSToken) < 32 {
		return nil, errors.New("room index: hs_token must be at least 32 characters")
	}
	if cfg.MaxRooms <= 0 {
		cfg.MaxRooms = 100000
	}
	if cfg.MaxTxnIDs <= 0 {
		cfg.MaxTxnIDs = 4096
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RoomIndex{
		hsTokenSum: sha256.Sum256([]byte(cfg.HSToken)),
		cfg:        cfg,
		client:     client,
		log:        log,
		rooms:      map[string]*list.Element{},
		lru:        list.New(),
		userRooms:  map[string]map[string]struct{}{},
		updates:    map[string]uint64{},
		txnSeen:    map[string]struct{}{},
		txnRing:    make([]string, cfg.MaxTxnIDs),
	}, nil
}

// Handler routes every appservice endpoint the homeserver may call. Unknown paths answer 404
// M_UNRECOGNIZED, after authentication.
func (ix *RoomIndex) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /_matrix/app/v1/transactions/{txnId}", ix.HandleTransaction)
	mux.HandleFunc("PUT /transactions/{txnId}", ix.HandleTransaction) // legacy, pre-v1 path
	mux.HandleFunc("GET /_matrix/app/v1/users/{userId}", ix.HandleUserQuery)
	mux.HandleFunc("GET /users/{userId}", ix.HandleUserQuery)
	mux.HandleFunc("GET /_matrix/app/v1/rooms/{alias}", ix.HandleAliasQuery)
	mux.HandleFunc("GET /rooms/{alias}", ix.HandleAliasQuery)
	mux.HandleFunc("POST /_matrix/app/v1/ping", ix.HandlePing)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !ix.authorized(w, r) {
			return
		}
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	})
	return mux
}

// authorized checks the hs_token (Authorization: Bearer, or the deprecated access_token query
// parameter) and answers 401 M_UNAUTHORIZED when none is given, 403 M_FORBIDDEN when it is wrong, as the
// Application Service API prescribes.
func (ix *RoomIndex) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Bad token")
			return false
		}
		tok = strings.TrimSpace(rest)
	} else {
		tok = r.URL.Query().Get("access_token")
	}
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "M_UNAUTHORIZED", "Missing token")
		return false
	}
	// Hashing first makes the comparison constant-time in the token's length as well.
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], ix.hsTokenSum[:]) != 1 {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Bad token")
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, errcode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"errcode": errcode, "error": msg})
	_, _ = w.Write(b)
}

func writeEmpty(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
}

// txnEvent is the part of a transaction event the index reads.
type txnEvent struct {
	EventID        string          `json:"event_id"`
	RoomID         string          `json:"room_id"`
	Type           string          `json:"type"`
	Sender         string          `json:"sender"`
	OriginServerTS int64           `json:"origin_server_ts"`
	StateKey       *string         `json:"state_key"`
	Content        json.RawMessage `json:"content"`
}

// HandleTransaction serves PUT /_matrix/app/v1/transactions/{txnId} (and the legacy
// /transactions/{txnId}): it applies the events to the index and answers 200 {}. A transaction ID seen
// before is acknowledged without applying it again. Events the index cannot read are skipped rather than
// failing the transaction, because the homeserver would otherwise retry it forever and stall all later
// ones.
func (ix *RoomIndex) HandleTransaction(w http.ResponseWriter, r *http.Request) {
	if !ix.authorized(w, r) {
		return
	}
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		writeError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	txnID := r.PathValue("txnId")
	if txnID == "" {
		txnID = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	}
	if txnID == "" || len(txnID) > 255 {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "Invalid transaction ID")
		return
	}
	if ix.txnDone(txnID) {
		writeEmpty(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, ix.cfg.MaxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "Unreadable body")
		return
	}
	if int64(len(body)) > ix.cfg.MaxBodyBytes {
		ix.log.Error("appservice transaction larger than the configured limit", "limit_bytes", ix.cfg.MaxBodyBytes)
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Transaction too large")
		return
	}
	var txn struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &txn); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "Body is not a JSON transaction")
		return
	}
	skipped := 0
	for _, raw := range txn.Events {
		var ev txnEvent
		if json.Unmarshal(raw, &ev) != nil || !ix.apply(ev) {
			skipped++
		}
	}
	if skipped > 0 {
		ix.log.Warn("appservice transaction had unreadable events", "skipped", skipped, "events", len(txn.Events))
	}
	ix.markTxn(txnID)
	writeEmpty(w)
}

// HandleUserQuery serves GET /_matrix/app/v1/users/{userId}: the proxy never creates users on demand,
// so every user is unknown to it (404).
func (ix *RoomIndex) HandleUserQuery(w http.ResponseWriter, r *http.Request) {
	if !ix.authorized(w, r) {
		return
	}
	writeError(w, http.StatusNotFound, "M_NOT_FOUND", "No such user")
}

// HandleAliasQuery serves GET /_matrix/app/v1/rooms/{alias}: the proxy never creates rooms on demand.
func (ix *RoomIndex) HandleAliasQuery(w http.ResponseWriter, r *http.Request) {
	if !ix.authorized(w, r) {
		return
	}
	writeError(w, http.StatusNotFound, "M_NOT_FOUND", "No such room")
}

// HandlePing serves POST /_matrix/app/v1/ping, the homeserver's reachability check (Client.Ping).
func (ix *RoomIndex) HandlePing(w http.ResponseWriter, r *http.Request) {
	if !ix.authorized(w, r) {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	writeEmpty(w)
}

func (ix *RoomIndex) txnDone(id string) bool {
	ix.txnMu.Lock()
	defer ix.txnMu.Unlock()
	_, ok := ix.txnSeen[id]
	return ok
}

func (ix *RoomIndex) markTxn(id string) {
	ix.txnMu.Lock()
	defer ix.txnMu.Unlock()
	if _, ok := ix.txnSeen[id]; ok {
		return
	}
	if old := ix.txnRing[ix.txnNext]; old != "" {
		delete(ix.txnSeen, old)
	}
	ix.txnRing[ix.txnNext] = id
	ix.txnSeen[id] = struct{}{}
	ix.txnNext = (ix.txnNext + 1) % len(ix.txnRing)
}

// apply folds one live event into the index; false when the event is unusable.
func (ix *RoomIndex) apply(ev txnEvent) bool {
	if validRoomID(ev.RoomID) != nil || ev.Type == "" {
		return false
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	f, isNew := ix.roomLocked(ev.RoomID)
	ix.updates[ev.RoomID]++
	if ev.StateKey == nil {
		f.LastTimelineTS = max(f.LastTimelineTS, ev.OriginServerTS)
		return true
	}
	if isNew && ev.Type == "m.room.create" && *ev.StateKey == "" {
		f.FromCreate = true
	}
	return ix.applyStateLocked(f, ev.Type, *ev.StateKey, ev.Sender, ev.OriginServerTS, ev.Content)
}

// roomLocked returns the room's facts, creating them (and evicting the oldest room) when unknown.
func (ix *RoomIndex) roomLocked(roomID string) (*RoomFacts, bool) {
	if el, ok := ix.rooms[roomID]; ok {
		ix.lru.MoveToFront(el)
		return el.Value.(*RoomFacts), false
	}
	for ix.lru.Len() >= ix.cfg.MaxRooms {
		ix.dropLocked(ix.lru.Back().Value.(*RoomFacts).RoomID)
	}
	f := &RoomFacts{RoomID: roomID, Members: map[string]Member{}}
	ix.rooms[roomID] = ix.lru.PushFront(f)
	return f, true
}

func (ix *RoomIndex) dropLocked(roomID string) {
	el, ok := ix.rooms[roomID]
	if !ok {
		return
	}
	f := el.Value.(*RoomFacts)
	for u := range f.Members {
		ix.unjoinLocked(u, roomID)
	}
	ix.lru.Remove(el)
	delete(ix.rooms, roomID)
	delete(ix.updates, roomID)
}

func (ix *RoomIndex) unjoinLocked(user, roomID string) {
	if set, ok := ix.userRooms[user]; ok {
		delete(set, roomID)
		if len(set) == 0 {
			delete(ix.userRooms, user)
		}
	}
}

func (ix *RoomIndex) applyStateLocked(f *RoomFacts, typ, stateKey, sender string, ts int64, content json.RawMessage) bool {
	f.LastStateTS = max(f.LastStateTS, ts)
	switch typ {
	case "m.room.create":
		if stateKey != "" {
			return true
		}
		var c struct {
			Creator     string `json:"creator"`
			RoomVersion string `json:"room_version"`
			Type        string `json:"type"`
			Federate    *bool  `json:"m.federate"`
		}
		_ = json.Unmarshal(content, &c)
		f.Creator = sender
		if f.Creator == "" {
			f.Creator = c.Creator
		}
		f.CreatorDomain = domainOf(f.Creator)
		f.Version = c.RoomVersion
		if f.Version == "" {
			f.Version = "1"
		}
		f.Type = c.Type
		f.Federate = c.Federate
		f.CreatedTS = ts
	case "m.room.join_rules":
		var c struct {
			JoinRule string `json:"join_rule"`
		}
		_ = json.Unmarshal(content, &c)
		f.JoinRule = c.JoinRule
	case "m.room.history_visibility":
		var c struct {
			HistoryVisibility string `json:"history_visibility"`
		}
		_ = json.Unmarshal(content, &c)
		f.HistoryVisibility = c.HistoryVisibility
	case "m.room.encryption":
		var c struct {
			Algorithm string `json:"algorithm"`
		}
		_ = json.Unmarshal(content, &c)
		// Encryption cannot be switched off; a later event without an algorithm does not undo it.
		if c.Algorithm != "" {
			f.Encrypted = true
		}
	case "m.room.member":
		var c struct {
			Membership string `json:"membership"`
		}
		if json.Unmarshal(content, &c) != nil || validUserID(stateKey) != nil {
			return false
		}
		switch c.Membership {
		case MembershipJoin, MembershipInvite, MembershipLeave, MembershipBan, MembershipKnock:
		default:
			return false
		}
		f.Members[stateKey] = Member{Membership: c.Membership, Since: ts}
		if c.Membership == MembershipJoin {
			set := ix.userRooms[stateKey]
			if set == nil {
				set = map[string]struct{}{}
				ix.userRooms[stateKey] = set
			}
			set[f.RoomID] = struct{}{}
		} else {
			ix.unjoinLocked(stateKey, f.RoomID)
		}
	}
	return true
}

// Room returns a copy of the facts known about roomID.
func (ix *RoomIndex) Room(roomID string) (RoomFacts, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	el, ok := ix.rooms[roomID]
	if !ok {
		return RoomFacts{}, false
	}
	return el.Value.(*RoomFacts).clone(), true
}

// Members returns a copy of roomID's memberships (user ID → membership).
func (ix *RoomIndex) Members(roomID string) (map[string]string, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	el, ok := ix.rooms[roomID]
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for u, m := range el.Value.(*RoomFacts).Members {
		out[u] = m.Membership
	}
	return out, true
}

// SharesRoom reports whether userA and userB are both joined to some room the index knows (the ePA
// profile-lookup rule). Only rooms with a local member reach the index, which is all that rule needs:
// the caller is always local.
func (ix *RoomIndex) SharesRoom(userA, userB string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	a, b := ix.userRooms[userA], ix.userRooms[userB]
	if len(b) < len(a) {
		a, b = b, a
	}
	for r := range a {
		if _, ok := b[r]; ok {
			return true
		}
	}
	return false
}

// Rooms returns a copy of every room's facts (for the periodic jobs).
func (ix *RoomIndex) Rooms() []RoomFacts {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]RoomFacts, 0, len(ix.rooms))
	for el := ix.lru.Front(); el != nil; el = el.Next() {
		out = append(out, el.Value.(*RoomFacts).clone())
	}
	return out
}

// Len returns the number of rooms in the index.
func (ix *RoomIndex) Len() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.rooms)
}

// Drop removes roomID from the index (after the jobs have cleaned it up; the homeserver sends no more
// events of a room without local members).
func (ix *RoomIndex) Drop(roomID string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.dropLocked(roomID)
}

// Backfill rebuilds roomID's facts from the homeserver's current state, read as asUser (a local user
// who can see the room), and returns them. The proxy calls it for a room the index does not know, e.g.
// after a restart. The newest timeline timestamp already known is kept; FromCreate becomes false
// unless it was already true. When live events for the room arrive while the state is being read, the
// read is repeated (up to three times), because the answer may predate them.
func (ix *RoomIndex) Backfill(ctx context.Context, roomID, asUser string) (RoomFacts, error) {
	if ix.client == nil {
		return RoomFacts{}, errors.New("room index: backfill without a homeserver client")
	}
	for attempt := 1; ; attempt++ {
		ix.mu.Lock()
		before, known := ix.updates[roomID]
		ix.mu.Unlock()
		state, err := ix.client.RoomState(ctx, asUser, roomID)
		if err != nil {
			return RoomFacts{}, fmt.Errorf("room index: backfill: %w", err)
		}
		ix.mu.Lock()
		now, knownNow := ix.updates[roomID]
		if attempt < 3 && (known != knownNow || now != before) {
			ix.mu.Unlock()
			continue
		}
		f, err := ix.replaceStateLocked(roomID, state)
		ix.mu.Unlock()
		return f, err
	}
}

func (ix *RoomIndex) replaceStateLocked(roomID string, state []StateEvent) (RoomFacts, error) {
	var keepTimeline int64
	fromCreate := false
	if el, ok := ix.rooms[roomID]; ok {
		old := el.Value.(*RoomFacts)
		keepTimeline, fromCreate = old.LastTimelineTS, old.FromCreate
		ix.dropLocked(roomID)
	}
	f, _ := ix.roomLocked(roomID)
	f.LastTimelineTS, f.FromCreate = keepTimeline, fromCreate
	for _, ev := range state {
		ix.applyStateLocked(f, ev.Type, ev.StateKey, ev.Sender, ev.OriginServerTS, ev.Content)
	}
	if f.Creator == "" {
		// A readable room always has m.room.create in its state; without it, the answer is not trusted.
		ix.dropLocked(roomID)
		return RoomFacts{}, fmt.Errorf("room index: backfill of %s: state without m.room.create", roomID)
	}
	return f.clone(), nil
}
