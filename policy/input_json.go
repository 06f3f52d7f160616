package policy

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendInputJSON appends the JSON form of in, byte for byte what json.Marshal writes (TestInputJSONMatches
// and FuzzEval hold the two together), in a fraction of its time: the wasm evaluator takes its input as JSON,
// and reflection-driven marshalling was a fifth of a federation check.
func appendInputJSON(b []byte, in *Input) []byte {
	var o jsonObject
	b = o.open(b)
	b = o.str(b, "action", string(in.Action), false)
	b = o.str(b, "origin", in.Origin, true)
	b = o.str(b, "destination", in.Destination, true)
	if in.Actor != nil {
		b = appendUserJSON(o.key(b, "actor"), in.Actor)
	}
	if in.Target != nil {
		b = appendUserJSON(o.key(b, "target"), in.Target)
	}
	if pc := in.PermissionConfig; pc != nil {
		var p jsonObject
		b = p.open(o.key(b, "permission_config"))
		b = p.str(b, "defaultSetting", pc.DefaultSetting, false)
		b = appendSetJSON(p.key(b, "userExceptions"), pc.UserExceptions)
		b = appendSetJSON(p.key(b, "serverExceptions"), pc.ServerExceptions)
		b = appendStringsJSON(p.key(b, "groupExceptions"), pc.GroupExceptions)
		b = p.close(b)
	}
	if r := in.Room; r != nil {
		var p jsonObject
		b = p.open(o.key(b, "room"))
		b = p.str(b, "room_id", r.RoomID, true)
		b = p.str(b, "version", r.Version, true)
		b = p.str(b, "type", r.Type, true)
		b = p.str(b, "preset", r.Preset, true)
		b = p.str(b, "visibility", r.Visibility, true)
		b = p.str(b, "join_rule", r.JoinRule, true)
		b = p.str(b, "history_visibility", r.HistoryVisibility, true)
		b = p.boolean(b, "encrypted", r.Encrypted, false)
		if r.Federate != nil {
			b = p.boolean(b, "federate", *r.Federate, false)
		}
		b = p.num(b, "invite_count", int64(r.InviteCount), true)
		b = p.str(b, "state_event_type", r.StateEventType, true)
		b = p.str(b, "creator_domain", r.CreatorDomain, true)
		b = p.boolean(b, "invited", r.Invited, true)
		b = p.close(b)
	}
	if ev := in.Event; ev != nil {
		var p jsonObject
		b = p.open(o.key(b, "event"))
		b = p.str(b, "type", ev.Type, true)
		b = p.str(b, "rel_type", ev.RelType, true)
		b = p.str(b, "key", ev.Key, true)
		b = p.boolean(b, "key_is_single_emoji", ev.KeyIsSingleEmoji, true)
		b = p.num(b, "age_ms", ev.AgeMillis, true)
		b = p.close(b)
	}
	if rq := in.Request; rq != nil {
		var p jsonObject
		b = p.open(o.key(b, "request"))
		b = p.str(b, "method", rq.Method, true)
		b = p.str(b, "surface", rq.Surface, true)
		b = p.str(b, "media_server", rq.MediaServer, true)
		b = p.num(b, "status_msg_length", int64(rq.StatusMsgLength), true)
		b = p.str(b, "register_kind", rq.RegisterKind, true)
		b = p.boolean(b, "shares_room", rq.SharesRoom, true)
		b = p.boolean(b, "authenticated", rq.Authenticated, false)
		b = p.close(b)
	}
	if pe := in.Peer; pe != nil {
		var p jsonObject
		b = p.open(o.key(b, "peer"))
		b = p.str(b, "domain", pe.Domain, false)
		if len(pe.OrganizationTypes) > 0 {
			b = appendStringsJSON(p.key(b, "organization_types"), pe.OrganizationTypes)
		}
		b = p.close(b)
	}
	return o.close(b)
}

func appendUserJSON(b []byte, u *User) []byte {
	var o jsonObject
	b = o.open(b)
	b = o.str(b, "user_id", u.UserID, false)
	b = o.str(b, "domain", u.Domain, false)
	b = o.boolean(b, "local", u.Local, false)
	b = o.boolean(b, "admin", u.Admin, true)
	return o.close(b)
}

// appendSetJSON writes a map[string]struct{} as json.Marshal does: keys sorted, each to {}, nil to null.
func appendSetJSON(b []byte, m map[string]struct{}) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONString(b, k), ":{}"...)
	}
	return append(b, '}')
}

// appendStringsJSON writes a []string as json.Marshal does: nil to null.
func appendStringsJSON(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

// appendJSONString writes s as a JSON string. Plain printable ASCII, all that Matrix IDs and the policy's
// constants contain, is copied as it is; anything else goes through encoding/json, so escaping (HTML
// characters, U+2028, invalid UTF-8 to U+FFFD) stays exactly json.Marshal's.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, err := json.Marshal(s)
			if err != nil {
				// json.Marshal does not fail on a string; if it ever did, an empty string is the safe input.
				return append(b, `""`...)
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonObject writes the members of one object; omit mirrors the json tag's omitempty.
type jsonObject struct{ members int }

func (o *jsonObject) open(b []byte) []byte  { return append(b, '{') }
func (o *jsonObject) close(b []byte) []byte { return append(b, '}') }

func (o *jsonObject) key(b []byte, k string) []byte {
	if o.members > 0 {
		b = append(b, ',')
	}
	o.members++
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func (o *jsonObject) str(b []byte, k, v string, omit bool) []byte {
	if omit && v == "" {
		return b
	}
	return appendJSONString(o.key(b, k), v)
}

func (o *jsonObject) boolean(b []byte, k string, v, omit bool) []byte {
	if omit && !v {
		return b
	}
	return strconv.AppendBool(o.key(b, k), v)
}

func (o *jsonObject) num(b []byte, k string, v int64, omit bool) []byte {
	if omit && v == 0 {
		return b
	}
	return strconv.AppendInt(o.key(b, k), v, 10)
}
