package policy

// Input is the fact sheet Go builds for one decision. Rego reads it as `input`; nothing in it is looked up by
// Rego itself (no I/O builtins), so a decision is a pure function of Input, the federation data and the
// settings. Field names are the JSON names the Rego modules use; golden files in testdata/input pin them.
type Input struct {
	// Action says what is being decided; it selects the rules that apply.
	Action Action `json:"action"`
	// Origin is the requesting server: the X-Matrix origin inbound, our own server name outbound and for
	// client requests.
	Origin string `json:"origin,omitempty"`
	// Destination is the server the request is for: our own server inbound, the X-Matrix destination (or
	// the well-known host) outbound.
	Destination string `json:"destination,omitempty"`
	// Actor is the user acting: the inviter, room creator, sender of an event, caller of a profile lookup.
	Actor *User `json:"actor,omitempty"`
	// Target is the user acted upon: the invitee, the profile looked up.
	Target *User `json:"target,omitempty"`
	// PermissionConfig is the target's TI-M permission configuration (already the server default when the
	// user has none). Only set when the target is local and the action is an invite.
	PermissionConfig *PermissionConfig `json:"permission_config,omitempty"`
	Room             *Room             `json:"room,omitempty"`
	Event            *Event            `json:"event,omitempty"`
	Request          *Request          `json:"request,omitempty"`
	// Peer carries directory facts about the remote domain for operator modules (e.g. organisation types).
	Peer *Peer `json:"peer,omitempty"`
}

// Action names what is decided. Each constant is the string the Rego modules match.
type Action string

const (
	// ActionFederationInbound: a remote server calls our federation API (origin must be federated).
	ActionFederationInbound Action = "federation_inbound"
	// ActionFederationOutbound: our homeserver calls a remote server (destination must be federated).
	ActionFederationOutbound Action = "federation_outbound"
	// ActionRoomCreate: a local user creates a room (room facts, at most one invitee in Target).
	ActionRoomCreate Action = "room_create"
	// ActionInvite: a local user invites someone (client API: /invite, membership state event).
	ActionInvite Action = "invite"
	// ActionFederationInvite: a remote server delivers an invite for a local user (federation v1/v2 invite).
	ActionFederationInvite Action = "federation_invite"
	// ActionRoomUpgrade: a local user upgrades a room (Room.Version is the new version).
	ActionRoomUpgrade Action = "room_upgrade"
	// ActionStateEvent: a local user sends a state event (join rules, history visibility, encryption, …).
	ActionStateEvent Action = "state_event"
	// ActionSendEvent: a local user sends a message event (threads, reactions).
	ActionSendEvent Action = "send_event"
	// ActionRedact: a local user redacts an event (Event.AgeMillis is the redacted event's age).
	ActionRedact Action = "redact"
	// ActionMediaRemote: a media request names a server (download, thumbnail); Request.MediaServer.
	ActionMediaRemote Action = "media_remote"
	// ActionProfile: a profile lookup of Target by Actor (nil Actor = unauthenticated).
	ActionProfile Action = "profile"
	// ActionPublicRooms: the room directory (client or federation).
	ActionPublicRooms Action = "public_rooms"
	// ActionUserDirectory: a user-directory search.
	ActionUserDirectory Action = "user_directory"
	// ActionPresence: a presence status update (Request.StatusMsgLength).
	ActionPresence Action = "presence"
	// ActionRegister: a registration request (Request.RegisterKind).
	ActionRegister Action = "register"
	// ActionJoin: a local user joins a room (Room.JoinRule, Room.CreatorDomain when known).
	ActionJoin Action = "join"
)

// AllActions lists every action in a stable order. decision.rego knows exactly these; any other action is
// denied with policy_error (tests iterate this list to keep both in step).
var AllActions = []Action{
	ActionFederationInbound, ActionFederationOutbound, ActionRoomCreate, ActionInvite, ActionFederationInvite,
	ActionRoomUpgrade, ActionStateEvent, ActionSendEvent, ActionRedact, ActionMediaRemote, ActionProfile,
	ActionPublicRooms, ActionUserDirectory, ActionPresence, ActionRegister, ActionJoin,
}

// User is a Matrix user as the policy sees it. Whether the user's domain is federated or insured is derived
// in Rego from the federation data, never passed in.
type User struct {
	UserID string `json:"user_id"`
	Domain string `json:"domain"`
	// Local is true for users of our own homeserver.
	Local bool `json:"local"`
	// Admin is true for server administrators (exempt from the redaction age limit).
	Admin bool `json:"admin,omitempty"`
}

// PermissionConfig is a user's TI-M permission configuration (de.gematik.tim.account.permissionconfig.*).
// Exceptions invert DefaultSetting.
type PermissionConfig struct {
	// DefaultSetting is "allow all" or "block all".
	DefaultSetting   string              `json:"defaultSetting"`
	UserExceptions   map[string]struct{} `json:"userExceptions"`
	ServerExceptions map[string]struct{} `json:"serverExceptions"`
	// GroupExceptions holds group names; "isInsuredPerson" is the only group defined.
	GroupExceptions []string `json:"groupExceptions"`
}

// Room holds what is known of the room the action touches. Zero values mean "not stated by the request".
type Room struct {
	RoomID string `json:"room_id,omitempty"`
	// Version is the requested room version (createRoom room_version, upgrade new_version); "" = default.
	Version string `json:"version,omitempty"`
	// Type is creation_content.type.
	Type string `json:"type,omitempty"`
	// Preset and Visibility as in createRoom.
	Preset     string `json:"preset,omitempty"`
	Visibility string `json:"visibility,omitempty"`
	// JoinRule and HistoryVisibility as the room will have them after the action (initial_state, preset
	// or the state event being sent).
	JoinRule          string `json:"join_rule,omitempty"`
	HistoryVisibility string `json:"history_visibility,omitempty"`
	// Encrypted is true when the room is or will be encrypted.
	Encrypted bool `json:"encrypted"`
	// Federate is creation_content["m.federate"] (nil = absent, which means true).
	Federate *bool `json:"federate,omitempty"`
	// InviteCount is the number of MXIDs in createRoom's invite list.
	InviteCount int `json:"invite_count,omitempty"`
	// StateEventType is the type of the state event being sent (ActionStateEvent).
	StateEventType string `json:"state_event_type,omitempty"`
	// CreatorDomain is the domain of the room's creator, when known (joins).
	CreatorDomain string `json:"creator_domain,omitempty"`
	// Invited is true when the joining user holds an invite (joins).
	Invited bool `json:"invited,omitempty"`
}

// Event describes the event being sent or redacted.
type Event struct {
	Type string `json:"type,omitempty"`
	// RelType is content["m.relates_to"].rel_type.
	RelType string `json:"rel_type,omitempty"`
	// Key is content["m.relates_to"].key (reactions).
	Key string `json:"key,omitempty"`
	// KeyIsSingleEmoji is computed in Go (grapheme analysis is not Rego's job).
	KeyIsSingleEmoji bool `json:"key_is_single_emoji,omitempty"`
	// AgeMillis is the age of the redacted event (now − origin_server_ts), ActionRedact only.
	AgeMillis int64 `json:"age_ms,omitempty"`
}

// Request holds request facts that are neither users nor rooms.
type Request struct {
	// Method is the HTTP method (public room directory: GET vs POST).
	Method string `json:"method,omitempty"`
	// Surface is "client" or "federation".
	Surface string `json:"surface,omitempty"`
	// MediaServer is the {serverName} of a media path.
	MediaServer string `json:"media_server,omitempty"`
	// StatusMsgLength is the length of presence status_msg in characters.
	StatusMsgLength int `json:"status_msg_length,omitempty"`
	// RegisterKind is the kind query parameter of /register ("user" or "guest").
	RegisterKind string `json:"register_kind,omitempty"`
	// SharesRoom is true when actor and target share a room (ePA profile rule).
	SharesRoom bool `json:"shares_room,omitempty"`
	// Authenticated is false for requests without an access token.
	Authenticated bool `json:"authenticated"`
}

// Peer carries directory facts about a remote domain, for operator modules.
type Peer struct {
	Domain            string   `json:"domain"`
	OrganizationTypes []string `json:"organization_types,omitempty"`
}
