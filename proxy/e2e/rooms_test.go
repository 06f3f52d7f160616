package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// Room versions 9 and 10 only, default 10 (A_26202, A_26203, A_26248); room type v2 refused (A_28596).
func TestRoomVersionAndType(t *testing.T) {
	u := newUser(t, node1(t), "creator")
	ctx := ctxT(t)

	roomID, err := u.CreateRoom(ctx, privateRoom())
	must(t, err)
	raw, err := u.GetState(ctx, roomID, "m.room.create", "")
	must(t, err)
	var create struct {
		RoomVersion string `json:"room_version"`
	}
	decode(t, raw, &create)
	if create.RoomVersion != "10" {
		t.Errorf("default room version = %q, want 10", create.RoomVersion)
	}

	req := privateRoom()
	req["room_version"] = "11"
	_, err = u.CreateRoom(ctx, req)
	wantErr(t, err, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION")

	req = privateRoom()
	req["room_version"] = "9"
	_, err = u.CreateRoom(ctx, req)
	must(t, err)

	req = privateRoom()
	req["creation_content"] = map[string]any{"type": "de.gematik.tim.roomtype.default.v2"}
	_, err = u.CreateRoom(ctx, req)
	wantErr(t, err, http.StatusBadRequest, "M_FORBIDDEN")

	req = privateRoom()
	req["creation_content"] = map[string]any{"type": "de.gematik.tim.roomtype.default.v1"}
	_, err = u.CreateRoom(ctx, req)
	must(t, err)

	// Upgrades obey the same versions.
	status, _, err := u.Raw(ctx, http.MethodPost, "/_matrix/client/v3/rooms/"+roomID+"/upgrade", map[string]any{"new_version": "11"})
	must(t, err)
	if status != http.StatusBadRequest {
		t.Errorf("upgrade to 11: status %d, want 400", status)
	}
}

// A_26515-01 (Pro): a public room is forced local (m.federate=false); A_28271: an existing room cannot be made
// public (400 M_INVALID_ROOM_STATE); A_25324-01: a private unencrypted room is refused (403).
func TestProPublicAndUnencryptedRooms(t *testing.T) {
	u := newUser(t, node1(t), "publisher")
	ctx := ctxT(t)
	roomID, err := u.CreateRoom(ctx, map[string]any{"preset": "public_chat", "visibility": "public"})
	must(t, err)
	raw, err := u.GetState(ctx, roomID, "m.room.create", "")
	must(t, err)
	var create map[string]any
	decode(t, raw, &create)
	if create["m.federate"] != false {
		t.Errorf("public room create event = %s, want m.federate false", raw)
	}

	private, err := u.CreateRoom(ctx, privateRoom())
	must(t, err)
	_, err = u.SendState(ctx, private, "m.room.join_rules", "", map[string]any{"join_rule": "public"})
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_ROOM_STATE")
	// The allowed twin: another join rule change passes.
	_, err = u.SendState(ctx, private, "m.room.join_rules", "", map[string]any{"join_rule": "invite"})
	must(t, err)

	_, err = u.CreateRoom(ctx, map[string]any{"preset": "private_chat"})
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
}

// A_25395-02 threads refused (400); A_26228-01 reactions must be one emoji (400 M_BAD_JSON).
func TestThreadsAndReactions(t *testing.T) {
	u := newUser(t, node1(t), "reactor")
	ctx := ctxT(t)
	roomID, err := u.CreateRoom(ctx, privateRoom())
	must(t, err)
	root, err := u.SendText(ctx, roomID, "root")
	must(t, err)
	_, err = u.SendMessage(ctx, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": "in thread",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
	wantErr(t, err, http.StatusBadRequest, "M_FORBIDDEN")

	_, err = u.SendMessage(ctx, roomID, "m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍"}})
	must(t, err)
	_, err = u.SendMessage(ctx, roomID, "m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍👍"}})
	wantErr(t, err, http.StatusBadRequest, "M_BAD_JSON")

	// Redacting a fresh event is allowed (A_28358 limits only events older than 24 h).
	_, err = u.Redact(ctx, roomID, root, "")
	must(t, err)
}

// Client-API odds and ends of the V3 set (UC10X, UC00).
func TestClientSurface(t *testing.T) {
	u := newUser(t, node1(t), "surface")
	other := newUser(t, node2(t), "other")
	ctx := ctxT(t)
	cases := []struct {
		name       string
		method     string
		path       string
		body       any
		auth       bool
		wantStatus int
		wantCode   string
	}{
		{"A_26344 URL previews are 404", http.MethodGet, "/_matrix/media/v3/preview_url?url=https://example.org", nil, true, 404, "M_UNRECOGNIZED"},
		{"A_26344 authenticated URL previews are 404", http.MethodGet, "/_matrix/client/v1/media/preview_url?url=https://example.org", nil, true, 404, "M_UNRECOGNIZED"},
		{"A_26262 media config is 404", http.MethodGet, "/_matrix/media/v3/config", nil, true, 404, "M_UNRECOGNIZED"},
		{"A_26265 support document is served", http.MethodGet, "/.well-known/matrix/support", nil, false, 200, ""},
		{"A_26265 DELETE on the support document is 405", http.MethodDelete, "/.well-known/matrix/support", nil, false, 405, "M_UNRECOGNIZED"},
		{"A_26289 unauthenticated profile of a remote user is 401", http.MethodGet, "/_matrix/client/v3/profile/" + other.ID, nil, false, 401, "M_MISSING_TOKEN"},
		{"A_26289 unauthenticated displayname is 401", http.MethodGet, "/_matrix/client/v3/profile/" + other.ID + "/displayname", nil, false, 401, "M_MISSING_TOKEN"},
		{"authenticated profile works", http.MethodGet, "/_matrix/client/v3/profile/" + u.ID, nil, true, 200, ""},
		{"guest registration is 403", http.MethodPost, "/_matrix/client/v3/register?kind=guest", map[string]any{}, false, 403, "M_FORBIDDEN"},
		{"login/get_token is 404", http.MethodPost, "/_matrix/client/v1/login/get_token", map[string]any{}, true, 404, "M_UNRECOGNIZED"},
		{"status_msg over 250 characters is 403 M_TOO_LARGE", http.MethodPut, "/_matrix/client/v3/presence/" + u.ID + "/status",
			map[string]any{"presence": "online", "status_msg": strings.Repeat("x", 251)}, true, 403, "M_TOO_LARGE"},
		{"status_msg of 250 characters passes", http.MethodPut, "/_matrix/client/v3/presence/" + u.ID + "/status",
			map[string]any{"presence": "online", "status_msg": strings.Repeat("x", 250)}, true, 200, ""},
		{"an unknown endpoint is 404 M_UNRECOGNIZED", http.MethodGet, "/_matrix/client/v3/no_such_thing", nil, true, 404, "M_UNRECOGNIZED"},
		{"a known endpoint with a wrong method is 405 M_UNRECOGNIZED", http.MethodDelete, "/_matrix/client/v3/createRoom", nil, true, 405, "M_UNRECOGNIZED"},
		{"the Synapse server version stays reachable", http.MethodGet, "/_synapse/admin/v1/server_version", nil, false, 200, ""},
		{"the rest of the Synapse admin API is 404", http.MethodGet, "/_synapse/admin/v2/users", nil, true, 404, "M_UNRECOGNIZED"},
		{"Pro room directory needs a token (A_26518)", http.MethodGet, "/_matrix/client/v3/publicRooms", nil, false, 401, "M_MISSING_TOKEN"},
		{"Pro room directory works with a token", http.MethodGet, "/_matrix/client/v3/publicRooms", nil, true, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := u.Client
			if !tc.auth {
				c = anonymous(u)
			}
			status, body, err := c.Raw(ctx, tc.method, tc.path, tc.body)
			must(t, err)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if tc.wantCode != "" && !strings.Contains(string(body), `"`+tc.wantCode+`"`) {
				t.Fatalf("body %s lacks errcode %s", body, tc.wantCode)
			}
		})
	}
}

// A_25641-01: /versions advertises nothing newer than v1.11 and includes v1.11.
func TestA25641VersionsAtMost111(t *testing.T) {
	u := newUser(t, node1(t), "versions")
	status, body, err := anonymous(u).Raw(ctxT(t), http.MethodGet, "/_matrix/client/versions", nil)
	must(t, err)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	var v struct {
		Versions []string `json:"versions"`
	}
	decode(t, body, &v)
	has111 := false
	for _, s := range v.Versions {
		if s == "v1.11" {
			has111 = true
		}
		if s == "v1.12" || s == "v1.13" || s == "v1.14" || s == "v1.15" || s == "v1.16" {
			t.Errorf("versions advertises %s", s)
		}
	}
	if !has111 {
		t.Errorf("versions %v lacks v1.11", v.Versions)
	}
}
