package policy

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue builds the Rego input from in directly as an AST value. rego.EvalInput would marshal the struct
// to JSON and parse it back on every evaluation; building the object by hand costs a fraction of that
// (BenchmarkInputConversion). The shape must stay exactly the JSON shape of Input: TestInputValueMatchesJSON
// compares the two for every golden input.
func inputValue(in *Input) ast.Value {
	var b objBuilder
	b.str("action", string(in.Action), false)
	b.str("origin", in.Origin, true)
	b.str("destination", in.Destination, true)
	if in.Actor != nil {
		b.put("actor", userValue(in.Actor))
	}
	if in.Target != nil {
		b.put("target", userValue(in.Target))
	}
	if pc := in.PermissionConfig; pc != nil {
		var p objBuilder
		p.str("defaultSetting", pc.DefaultSetting, false)
		p.put("userExceptions", setObject(pc.UserExceptions))
		p.put("serverExceptions", setObject(pc.ServerExceptions))
		p.put("groupExceptions", stringArray(pc.GroupExceptions))
		b.put("permission_config", p.value())
	}
	if r := in.Room; r != nil {
		var o objBuilder
		o.str("room_id", r.RoomID, true)
		o.str("version", r.Version, true)
		o.str("type", r.Type, true)
		o.str("preset", r.Preset, true)
		o.str("visibility", r.Visibility, true)
		o.str("join_rule", r.JoinRule, true)
		o.str("history_visibility", r.HistoryVisibility, true)
		o.boolean("encrypted", r.Encrypted, false)
		if r.Federate != nil {
			o.boolean("federate", *r.Federate, false)
		}
		o.num("invite_count", int64(r.InviteCount), true)
		o.str("state_event_type", r.StateEventType, true)
		o.str("creator_domain", r.CreatorDomain, true)
		o.boolean("invited", r.Invited, true)
		b.put("room", o.value())
	}
	if ev := in.Event; ev != nil {
		var o objBuilder
		o.str("type", ev.Type, true)
		o.str("rel_type", ev.RelType, true)
		o.str("key", ev.Key, true)
		o.boolean("key_is_single_emoji", ev.KeyIsSingleEmoji, true)
		o.num("age_ms", ev.AgeMillis, true)
		b.put("event", o.value())
	}
	if rq := in.Request; rq != nil {
		var o objBuilder
		o.str("method", rq.Method, true)
		o.str("surface", rq.Surface, true)
		o.str("media_server", rq.MediaServer, true)
		o.num("status_msg_length", int64(rq.StatusMsgLength), true)
		o.str("register_kind", rq.RegisterKind, true)
		o.boolean("shares_room", rq.SharesRoom, true)
		o.boolean("authenticated", rq.Authenticated, false)
		b.put("request", o.value())
	}
	if p := in.Peer; p != nil {
		var o objBuilder
		o.str("domain", p.Domain, false)
		if len(p.OrganizationTypes) > 0 {
			o.put("organization_types", stringArray(p.OrganizationTypes))
		}
		b.put("peer", o.value())
	}
	return b.value()
}

func userValue(u *User) ast.Value {
	var o objBuilder
	o.str("user_id", u.UserID, false)
	o.str("domain", u.Domain, false)
	o.boolean("local", u.Local, false)
	o.boolean("admin", u.Admin, true)
	return o.value()
}

// setObject renders a map[string]struct{} as JSON does: keys to {}, nil to null.
func setObject(m map[string]struct{}) ast.Value {
	if m == nil {
		return ast.Null{}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([][2]*ast.Term, len(keys))
	for i, k := range keys {
		items[i] = [2]*ast.Term{ast.StringTerm(jsonString(k)), ast.ObjectTerm()}
	}
	return ast.NewObject(items...)
}

// stringArray renders a []string as JSON does: nil to null.
func stringArray(s []string) ast.Value {
	if s == nil {
		return ast.Null{}
	}
	terms := make([]*ast.Term, len(s))
	for i, v := range s {
		terms[i] = ast.StringTerm(jsonString(v))
	}
	return ast.NewArray(terms...)
}

// objBuilder collects the members of an object; omit mirrors the json tag's omitempty.
type objBuilder [][2]*ast.Term

func (b *objBuilder) put(k string, v ast.Value) {
	b.putTerm(k, ast.NewTerm(v))
}

func (b *objBuilder) putTerm(k string, v *ast.Term) {
	if *b == nil {
		*b = make(objBuilder, 0, 8)
	}
	kt, ok := inputKeys[k]
	if !ok {
		kt = ast.StringTerm(k)
	}
	*b = append(*b, [2]*ast.Term{kt, v})
}

// inputKeys are the member names of Input's JSON form as shared terms: every evaluation needs them, and
// OPA never modifies input terms, so they are built once instead of twice per member per decision. Read-only
// after package initialisation.
var inputKeys = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{
		"action", "origin", "destination", "actor", "target", "permission_config", "room", "event", "request", "peer",
		"user_id", "domain", "local", "admin", "defaultSetting", "userExceptions", "serverExceptions",
		"groupExceptions", "room_id", "version", "type", "preset", "visibility", "join_rule", "history_visibility",
		"encrypted", "federate", "invite_count", "state_event_type", "creator_domain", "invited", "rel_type", "key",
		"key_is_single_emoji", "age_ms", "method", "surface", "media_server", "status_msg_length", "register_kind",
		"shares_room", "authenticated", "organization_types",
	} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

func (b *objBuilder) str(k, v string, omit bool) {
	if omit && v == "" {
		return
	}
	b.put(k, ast.String(jsonString(v)))
}

func (b *objBuilder) boolean(k string, v, omit bool) {
	if omit && !v {
		return
	}
	b.putTerm(k, ast.InternedTerm(v))
}

func (b *objBuilder) num(k string, v int64, omit bool) {
	if omit && v == 0 {
		return
	}
	b.put(k, ast.Number(strconv.FormatInt(v, 10)))
}

func (b *objBuilder) value() ast.Value { return ast.NewObject((*b)...) }

// jsonString is s as a JSON round trip leaves it: every byte that is not part of valid UTF-8 becomes U+FFFD,
// as encoding/json writes it. Rego must see the same string whichever way the input was built.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
