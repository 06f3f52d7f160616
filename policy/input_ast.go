package policy

import (
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
	var w astSink
	walkInput(&w, in)
	return w.root.value()
}

// astSink builds the AST object; open holds the objects begun and not yet ended, innermost last, with the
// keys they go under.
type astSink struct {
	root objBuilder
	open []astPending
}

type astPending struct {
	key string
	obj objBuilder
}

func (w *astSink) cur() *objBuilder {
	if len(w.open) == 0 {
		return &w.root
	}
	return &w.open[len(w.open)-1].obj
}

func (w *astSink) begin(k string) { w.open = append(w.open, astPending{key: k}) }

func (w *astSink) end() {
	p := w.open[len(w.open)-1]
	w.open = w.open[:len(w.open)-1]
	w.cur().put(p.key, p.obj.value())
}

func (w *astSink) str(k, v string, omit bool)          { w.cur().str(k, v, omit) }
func (w *astSink) boolean(k string, v, omit bool)      { w.cur().boolean(k, v, omit) }
func (w *astSink) num(k string, v int64, omit bool)    { w.cur().num(k, v, omit) }
func (w *astSink) set(k string, m map[string]struct{}) { w.cur().put(k, setObject(m)) }
func (w *astSink) strs(k string, s []string)           { w.cur().put(k, stringArray(s)) }

// setObject renders a map[string]struct{} as JSON does: keys to {}, nil to null.
func setObject(m map[string]struct{}) ast.Value {
	if m == nil {
		return ast.Null{}
	}
	keys := sortedKeys(m)
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
