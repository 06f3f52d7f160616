package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// The wasm build answers with OPA's result set as JSON: `[]` when the entrypoint is undefined, else
// `[{"result": R}]`, where R is the reasons array (the reasons entrypoint) or the object
// {"allow", "obligations", "reasons"} (the decision entrypoint). encoding/json into a map of interfaces took
// about 3.5 µs of a 30 µs createRoom decision; this reader of exactly that shape takes a fraction of it. It
// is strict: anything else (another member, another type, trailing bytes) is an error, and the decision
// fails closed (policy_error).

// rawDecision is a decision document as an evaluator returned it: the wasm result decoded here, or topdown's
// bindings (decisionFromResult). Missing members stay nil; decisionFromRaw checks them for both.
type rawDecision struct {
	defined     bool
	allow       *bool
	reasons     []string
	hasReasons  bool
	obligations map[string]any
}

// decodeWasmResult reads a result set; short says R is the reasons array.
func decodeWasmResult(b []byte, short bool) (rawDecision, error) {
	d := resultDecoder{b: b}
	var r rawDecision
	d.ws()
	if !d.consume('[') {
		return r, d.fail("result set is not an array")
	}
	d.ws()
	if d.consume(']') {
		return r, d.end()
	}
	err := d.list('{', '}', "a result object", func() error {
		key, err := d.key()
		if err != nil {
			return err
		}
		if key != "result" || r.defined {
			// "expressions" and "bindings" do not occur in OPA's wasm result sets; refuse what is not understood.
			return d.fail(fmt.Sprintf("unexpected member %q", key))
		}
		r.defined = true
		if short {
			r.reasons, err = d.stringArray()
			r.hasReasons = err == nil
			return err
		}
		return d.decision(&r)
	})
	if err != nil {
		return r, err
	}
	if !r.defined {
		return r, d.fail("result has no value")
	}
	d.ws()
	if !d.consume(']') {
		return r, d.fail("more than one result")
	}
	return r, d.end()
}

type resultDecoder struct {
	b []byte
	i int
}

func (d *resultDecoder) fail(msg string) error {
	return fmt.Errorf("result JSON at byte %d: %s", d.i, msg)
}

func (d *resultDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// list reads an array or object: open, items separated by commas, close. item reads one item (for an
// object, a member with its name).
func (d *resultDecoder) list(open, close byte, what string, item func() error) error {
	if !d.consume(open) {
		return d.fail("expected " + what)
	}
	for first := true; ; first = false {
		d.ws()
		if d.consume(close) {
			return nil
		}
		if !first {
			if !d.consume(',') {
				return d.fail("expected , or " + string(close))
			}
			d.ws()
		}
		if err := item(); err != nil {
			return err
		}
	}
}

func (d *resultDecoder) consume(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *resultDecoder) end() error {
	d.ws()
	if d.i != len(d.b) {
		return d.fail("trailing bytes")
	}
	return nil
}

// key reads a member name and the colon after it.
func (d *resultDecoder) key() (string, error) {
	k, err := d.str()
	if err != nil {
		return "", err
	}
	d.ws()
	if !d.consume(':') {
		return "", d.fail("expected :")
	}
	d.ws()
	return k, nil
}

// str reads a JSON string. Strings without escapes (all names and reasons the policies use) are sliced;
// one with escapes is handed to encoding/json.
func (d *resultDecoder) str() (string, error) {
	if !d.consume('"') {
		return "", d.fail("expected a string")
	}
	start, escaped := d.i, false
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '\\':
			escaped = true
			d.i += 2
			continue
		case c == '"':
			raw := d.b[start:d.i]
			d.i++
			if !escaped {
				if !utf8.Valid(raw) {
					return "", d.fail("string is not UTF-8")
				}
				for _, x := range raw {
					if x < 0x20 {
						return "", d.fail("control character in string")
					}
				}
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start-1:d.i], &s); err != nil {
				return "", d.fail(err.Error())
			}
			return s, nil
		}
		d.i++
	}
	return "", d.fail("unterminated string")
}

func (d *resultDecoder) stringArray() ([]string, error) {
	out := []string{}
	err := d.list('[', ']', "an array of strings", func() error {
		s, err := d.str()
		out = append(out, s)
		return err
	})
	return out, err
}

// scalar reads true, false or a string.
func (d *resultDecoder) scalar() (any, error) {
	switch {
	case d.i < len(d.b) && d.b[d.i] == '"':
		return d.str()
	case d.literal("true"):
		return true, nil
	case d.literal("false"):
		return false, nil
	}
	return nil, d.fail("expected true, false or a string")
}

func (d *resultDecoder) literal(word string) bool {
	if len(d.b)-d.i >= len(word) && string(d.b[d.i:d.i+len(word)]) == word {
		d.i += len(word)
		return true
	}
	return false
}

// decision reads {"allow": bool, "obligations": {name: bool|string}, "reasons": [string]} in any order.
func (d *resultDecoder) decision(r *rawDecision) error {
	return d.list('{', '}', "a decision object", func() error {
		key, err := d.key()
		if err != nil {
			return err
		}
		switch {
		case key == "allow" && r.allow == nil:
			v, err := d.scalar()
			b, ok := v.(bool)
			if err != nil || !ok {
				return d.fail("allow is not a boolean")
			}
			r.allow = &b
		case key == "reasons" && !r.hasReasons:
			r.reasons, err = d.stringArray()
			r.hasReasons = err == nil
			return err
		case key == "obligations" && r.obligations == nil:
			r.obligations, err = d.obligationObject()
			return err
		default:
			return d.fail(fmt.Sprintf("unexpected or repeated member %q", key))
		}
		return nil
	})
}

func (d *resultDecoder) obligationObject() (map[string]any, error) {
	out := map[string]any{}
	err := d.list('{', '}', "an obligations object", func() error {
		key, err := d.key()
		if err != nil {
			return err
		}
		if _, dup := out[key]; dup {
			return d.fail(fmt.Sprintf("obligation %q twice", key))
		}
		// decisionFromResult checks each obligation's type; a value of another kind is refused here.
		v, err := d.scalar()
		if err != nil {
			return errors.Join(fmt.Errorf("obligation %q", key), err)
		}
		out[key] = v
		return nil
	})
	return out, err
}
