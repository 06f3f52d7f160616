package policy

// inputSink receives Input's JSON form member by member. walkInput drives it for both evaluators: the AST
// builder for topdown (input_ast.go) and the JSON writer for wasm (input_json.go), so the member names, their
// order and the omitempty rules exist once and the two forms cannot drift apart (TestInputValueMatchesJSON,
// TestInputJSONMatchesMarshal, FuzzEval).
type inputSink interface {
	// begin opens a nested object under key; end closes it.
	begin(key string)
	end()
	str(key, v string, omit bool)
	boolean(key string, v, omit bool)
	num(key string, v int64, omit bool)
	// set writes a map[string]struct{} as JSON does: keys sorted, each to {}, nil to null.
	set(key string, m map[string]struct{})
	// strs writes a []string as JSON does: nil to null.
	strs(key string, s []string)
}

// walkInput emits in as json.Marshal would, without the outermost braces (the sink's root object).
func walkInput(w inputSink, in *Input) {
	w.str("action", string(in.Action), false)
	w.str("origin", in.Origin, true)
	w.str("destination", in.Destination, true)
	if in.Actor != nil {
		walkUser(w, "actor", in.Actor)
	}
	if in.Target != nil {
		walkUser(w, "target", in.Target)
	}
	if pc := in.PermissionConfig; pc != nil {
		w.begin("permission_config")
		w.str("defaultSetting", pc.DefaultSetting, false)
		w.set("userExceptions", pc.UserExceptions)
		w.set("serverExceptions", pc.ServerExceptions)
		w.strs("groupExceptions", pc.GroupExceptions)
		w.end()
	}
	if r := in.Room; r != nil {
		w.begin("room")
		w.str("room_id", r.RoomID, true)
		w.str("version", r.Version, true)
		w.str("type", r.Type, true)
		w.str("preset", r.Preset, true)
		w.str("visibility", r.Visibility, true)
		w.str("join_rule", r.JoinRule, true)
		w.str("history_visibility", r.HistoryVisibility, true)
		w.boolean("encrypted", r.Encrypted, false)
		if r.Federate != nil {
			w.boolean("federate", *r.Federate, false)
		}
		w.num("invite_count", int64(r.InviteCount), true)
		w.str("state_event_type", r.StateEventType, true)
		w.str("creator_domain", r.CreatorDomain, true)
		w.boolean("invited", r.Invited, true)
		w.end()
	}
	if ev := in.Event; ev != nil {
		w.begin("event")
		w.str("type", ev.Type, true)
		w.str("rel_type", ev.RelType, true)
		w.str("key", ev.Key, true)
		w.boolean("key_is_single_emoji", ev.KeyIsSingleEmoji, true)
		w.num("age_ms", ev.AgeMillis, true)
		w.end()
	}
	if rq := in.Request; rq != nil {
		w.begin("request")
		w.str("method", rq.Method, true)
		w.str("surface", rq.Surface, true)
		w.str("media_server", rq.MediaServer, true)
		w.num("status_msg_length", int64(rq.StatusMsgLength), true)
		w.str("register_kind", rq.RegisterKind, true)
		w.boolean("shares_room", rq.SharesRoom, true)
		w.boolean("authenticated", rq.Authenticated, false)
		w.end()
	}
	if p := in.Peer; p != nil {
		w.begin("peer")
		w.str("domain", p.Domain, false)
		if len(p.OrganizationTypes) > 0 {
			w.strs("organization_types", p.OrganizationTypes)
		}
		w.end()
	}
}

func walkUser(w inputSink, key string, u *User) {
	w.begin(key)
	w.str("user_id", u.UserID, false)
	w.str("domain", u.Domain, false)
	w.boolean("local", u.Local, false)
	w.boolean("admin", u.Admin, true)
	w.end()
}
