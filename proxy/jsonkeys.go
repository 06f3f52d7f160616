package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode"
	"unicode/utf8"
)

// errJSONKeyCollision: an object holds two keys that are equal or equal under Unicode case folding.
var errJSONKeyCollision = errors.New("JSON object has duplicate keys or keys that differ only in case")

// checkJSONKeys refuses a JSON text in which some object holds two keys that encoding/json could match to
// the same struct field: equal keys, or keys equal under Unicode simple case folding ("user_id" and
// "User_Id", and "uſer_id" with U+017F, which folds to s). encoding/json fills a field from the last such
// key, while the homeserver (Python's json) reads exactly "user_id": the proxy would decide on one value and
// the homeserver act on another. The text must already be valid JSON.
func checkJSONKeys(body []byte) error {
	// Objects nest; each open object has the set of its folded keys. Arrays need no state.
	type frame struct {
		object bool
		keys   map[string]struct{}
	}
	var stack []frame
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{':
			stack = append(stack, frame{object: true})
			expectKey = true
		case '[':
			stack = append(stack, frame{})
			expectKey = false
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
		case '"':
			end := stringEnd(body, i)
			if expectKey {
				top := &stack[len(stack)-1]
				key, err := jsonKey(body[i : end+1])
				if err != nil {
					return err
				}
				if top.keys == nil {
					top.keys = map[string]struct{}{}
				}
				if _, dup := top.keys[key]; dup {
					return errJSONKeyCollision
				}
				top.keys[key] = struct{}{}
				expectKey = false
			}
			i = end
		}
	}
	return nil
}

// stringEnd returns the index of the quote that closes the JSON string starting at body[start].
func stringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(body) - 1
}

// jsonKey decodes a quoted JSON key and folds it so that two keys fold equally exactly when
// bytes.EqualFold (the matching encoding/json uses) says they are equal.
func jsonKey(quoted []byte) (string, error) {
	raw := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(quoted, &s); err != nil {
			return "", err
		}
		raw = []byte(s)
	}
	out := make([]byte, 0, len(raw))
	for len(raw) > 0 {
		r, n := utf8.DecodeRune(raw)
		raw = raw[n:]
		out = utf8.AppendRune(out, foldRune(r))
	}
	return string(out), nil
}

// foldRune maps r to the smallest rune of its simple case-folding orbit.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}
