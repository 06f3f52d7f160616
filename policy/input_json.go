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
	w := jsonSink{buf: append(b, '{')}
	walkInput(&w, in)
	return append(w.buf, '}')
}

// jsonSink writes JSON into buf. members counts the members written so far in each open object, innermost
// last, to place the commas.
type jsonSink struct {
	buf     []byte
	members []int
	root    int
}

func (w *jsonSink) key(k string) {
	n := &w.root
	if len(w.members) > 0 {
		n = &w.members[len(w.members)-1]
	}
	if *n > 0 {
		w.buf = append(w.buf, ',')
	}
	*n++
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, k...)
	w.buf = append(w.buf, '"', ':')
}

func (w *jsonSink) begin(k string) {
	w.key(k)
	w.buf = append(w.buf, '{')
	w.members = append(w.members, 0)
}

func (w *jsonSink) end() {
	w.buf = append(w.buf, '}')
	w.members = w.members[:len(w.members)-1]
}

func (w *jsonSink) str(k, v string, omit bool) {
	if omit && v == "" {
		return
	}
	w.key(k)
	w.buf = appendJSONString(w.buf, v)
}

func (w *jsonSink) boolean(k string, v, omit bool) {
	if omit && !v {
		return
	}
	w.key(k)
	w.buf = strconv.AppendBool(w.buf, v)
}

func (w *jsonSink) num(k string, v int64, omit bool) {
	if omit && v == 0 {
		return
	}
	w.key(k)
	w.buf = strconv.AppendInt(w.buf, v, 10)
}

func (w *jsonSink) set(k string, m map[string]struct{}) {
	w.key(k)
	if m == nil {
		w.buf = append(w.buf, "null"...)
		return
	}
	w.buf = append(w.buf, '{')
	for i, key := range sortedKeys(m) {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = append(appendJSONString(w.buf, key), ":{}"...)
	}
	w.buf = append(w.buf, '}')
}

func (w *jsonSink) strs(k string, s []string) {
	w.key(k)
	if s == nil {
		w.buf = append(w.buf, "null"...)
		return
	}
	w.buf = append(w.buf, '[')
	for i, v := range s {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = appendJSONString(w.buf, v)
	}
	w.buf = append(w.buf, ']')
}

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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
