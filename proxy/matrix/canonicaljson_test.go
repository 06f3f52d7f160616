package matrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalJSONSpecExamples(t *testing.T) {
	// The examples of the "Canonical JSON" appendix, Matrix v1.11.
	tests := []struct {
		name, in, want string
	}{
		{"an empty object stays empty", `{}`, `{}`},
		{"whitespace is removed", "{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", `{"one":1,"two":"Two"}`},
		{"keys are sorted", "{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", `{"a":"1","b":"2"}`},
		{"compact input is sorted too", `{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
		{"nested objects and arrays are sorted recursively",
			`{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}`,
			`{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}`},
		{"non-ASCII stays raw UTF-8", `{"a": "日本語"}`, `{"a":"日本語"}`},
		{"non-ASCII keys sort by code point", `{"本": 2, "日": 1}`, `{"日":1,"本":2}`},
		{"unicode escapes are decoded to UTF-8", `{"a": "\u65E5"}`, `{"a":"日"}`},
		{"null survives", `{"a": null}`, `{"a":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalJSONEdgeCases(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"negative zero is written as zero", `{"a":-0}`, `{"a":0}`},
		{"the largest safe integer is kept", `9007199254740991`, `9007199254740991`},
		{"the smallest safe integer is kept", `-9007199254740991`, `-9007199254740991`},
		{"control characters use short escapes where they exist", `"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{"other control characters use lower-case \\u00xx", `"\u0001\u000B\u001f"`, `"\u0001\u000b\u001f"`},
		{"an escaped slash is unescaped", `"a\/b"`, `"a/b"`},
		{"quote and backslash stay escaped", `"\"\\"`, `"\"\\"`},
		{"DEL and line separators are not escaped", `"\u007f\u2028\u2029"`, "\"\x7f\u2028\u2029\""},
		{"a surrogate pair becomes one UTF-8 character", `"\ud83d\ude00"`, `"😀"`},
		{"escaped NUL stays escaped", `"\u0000"`, `"\u0000"`},
		{"keys sort by UTF-8 bytes, upper case before lower case", `{"b":1,"B":2,"a":3,"é":4,"z":5}`, `{"B":2,"a":3,"b":1,"z":5,"é":4}`},
		{"astral keys sort after BMP keys", `{"😀":1,"\uffff":2}`, "{\"\uffff\":2,\"😀\":1}"},
		{"empty arrays stay arrays", `{"a":[],"b":[[]]}`, `{"a":[],"b":[[]]}`},
		{"surrounding whitespace is ignored", " \t\r\n true \n", `true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalJSONRefuses(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		// The specification's own example maps 1e10 to 10000000000 but Synapse writes 10000000000.0;
		// we refuse rather than pick one.
		{"an exponent is refused", `{"b":1e10}`},
		{"a fraction is refused", `1.5`},
		{"a fraction of zero is refused", `1.0`},
		{"2^53 is out of range", `9007199254740992`},
		{"-(2^53) is out of range", `-9007199254740992`},
		{"a huge integer is out of range", `123456789012345678901234567890`},
		{"a leading zero is refused", `01`},
		{"a bare minus is refused", `-`},
		{"a plus sign is refused", `+1`},
		{"duplicate keys are refused", `{"a":1,"a":2}`},
		{"duplicate keys hidden by escapes are refused", `{"a":1,"\u0061":2}`},
		{"invalid UTF-8 is refused", "\"\xff\""},
		{"overlong UTF-8 is refused", "\"\xc0\xaf\""},
		{"UTF-8 encoded surrogates are refused", "\"\xed\xa0\x80\""},
		{"a lone high surrogate is refused", `"\ud800"`},
		{"a lone low surrogate is refused", `"\udc00"`},
		{"a high surrogate followed by a non-surrogate is refused", `"\ud800\u0041"`},
		{"a raw control character is refused", "\"a\nb\""},
		{"an unknown escape is refused", `"\x41"`},
		{"a short unicode escape is refused", `"\u12"`},
		{"trailing data is refused", `{} {}`},
		{"a trailing comma is refused", `[1,]`},
		{"a missing value is refused", `{"a":}`},
		{"an unquoted key is refused", `{a:1}`},
		{"NaN is refused", `NaN`},
		{"a truncated literal is refused", `tru`},
		{"empty input is refused", ``},
		{"an unterminated string is refused", `"abc`},
		{"nesting beyond the limit is refused", strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err == nil {
				t.Fatalf("CanonicalJSON(%q) = %s; want an error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalidJSON) {
				t.Errorf("error %v does not wrap ErrInvalidJSON", err)
			}
		})
	}
}

func TestCanonicalJSONAcceptsNestingUpToTheLimit(t *testing.T) {
	in := strings.Repeat(`{"a":`, MaxJSONDepth-1) + "[]" + strings.Repeat("}", MaxJSONDepth-1)
	if _, err := CanonicalJSON([]byte(in)); err != nil {
		t.Fatalf("depth %d refused: %v", MaxJSONDepth, err)
	}
}

// TestCanonicalJSONMatchesSynapse canonicalises the same inputs with Synapse's canonicaljson library.
// Inputs both sides accept must give identical bytes.
func TestCanonicalJSONMatchesSynapse(t *testing.T) {
	inputs := []string{
		`{}`, `{"one":1,"two":"Two"}`, `{"b":"2","a":"1"}`, `{"a":"日本語"}`, `{"本":2,"日":1}`,
		`{"a":"\u65E5"}`, `{"a":null}`, `{"a":-0}`, `"\b\f\n\r\t\u0001\u000B\u001f\u007f"`,
		`"\u2028\u2029 \ud83d\ude00 \/ \" \\"`, `{"b":1,"B":2,"a":3,"é":4,"z":5,"😀":6,"\uffff":7}`,
		`[true,false,null,[],{},-9007199254740991,9007199254740991]`, `"\u0000"`,
		`{"content":{"body":"x","msgtype":"m.text"},"origin":"a.example","pdus":[{"depth":3}]}`,
	}
	py := pythonCanonical(t, inputs)
	for i, in := range inputs {
		got, err := CanonicalJSON([]byte(in))
		if err != nil {
			t.Errorf("CanonicalJSON(%s): %v", in, err)
			continue
		}
		if py[i].Err != "" {
			t.Errorf("python refused %s: %s", in, py[i].Err)
			continue
		}
		if !bytes.Equal(got, py[i].Out) {
			t.Errorf("input %s:\n go     %q\n python %q", in, got, py[i].Out)
		}
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"one":1,"two":"Two"}`, `{"a":"\u65E5","本":2}`, `[1,-0,"\ud83d\ude00",null,true]`,
		`{"a":1,"a":2}`, `1e10`, `"\u0001\u007f"`, "\"\xff\"", `[[[[]]]]`, `9007199254740992`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalJSON(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("error %v does not wrap ErrInvalidJSON", err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted input encoding/json calls invalid: %q", in)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		again, err := CanonicalJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q (%v)", out, again, err)
		}
		var a, b any
		dec := func(raw []byte, v *any) {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(v); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
		}
		dec(in, &a)
		dec(out, &b)
		if !reflect.DeepEqual(normNumbers(a), normNumbers(b)) {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
	})
}

// normNumbers rewrites "-0" as "0" so input and output compare by value.
func normNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if x == "-0" {
			return json.Number("0")
		}
		return x
	case []any:
		for i := range x {
			x[i] = normNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normNumbers(x[k])
		}
	}
	return v
}
