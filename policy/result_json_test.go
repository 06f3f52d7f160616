package policy

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeWasmResult(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		short   bool
		want    rawDecision
		wantErr bool
	}{
		{name: "an undefined entrypoint is an empty result set", in: `[]`, want: rawDecision{}},
		{name: "reasons of a short decision", in: `[{"result":["inviter_not_federated","invite_not_permitted"]}]`, short: true,
			want: rawDecision{defined: true, hasReasons: true, reasons: []string{"inviter_not_federated", "invite_not_permitted"}}},
		{name: "no reasons", in: `[{"result":[]}]`, short: true, want: rawDecision{defined: true, hasReasons: true, reasons: []string{}}},
		{name: "a full decision with obligations", in: `[{"result":{"allow":true,"obligations":{"force_federate_false":true,"room_version":"10"},"reasons":[]}}]`,
			want: rawDecision{defined: true, allow: ptr(true), hasReasons: true, reasons: []string{},
				obligations: map[string]any{"force_federate_false": true, "room_version": "10"}}},
		{name: "members in another order and white space", in: " [ { \"result\" : { \"reasons\" : [ \"a\" ] , \"allow\" : false , \"obligations\" : { } } } ] ",
			want: rawDecision{defined: true, allow: ptr(false), hasReasons: true, reasons: []string{"a"}, obligations: map[string]any{}}},
		{name: "an escaped string is decoded", in: `[{"result":["a\"b\u00e4"]}]`, short: true,
			want: rawDecision{defined: true, hasReasons: true, reasons: []string{"a\"bä"}}},
		{name: "a missing member stays missing", in: `[{"result":{"reasons":[]}}]`, want: rawDecision{defined: true, hasReasons: true, reasons: []string{}}},
		{name: "allow of another type is refused", in: `[{"result":{"allow":"yes","reasons":[]}}]`, wantErr: true},
		{name: "an obligation that is a number is refused", in: `[{"result":{"allow":true,"obligations":{"x":1},"reasons":[]}}]`, wantErr: true},
		{name: "an obligation that is null is refused", in: `[{"result":{"allow":true,"obligations":{"x":null},"reasons":[]}}]`, wantErr: true},
		{name: "a repeated obligation is refused", in: `[{"result":{"obligations":{"x":true,"x":false}}}]`, wantErr: true},
		{name: "a repeated member is refused", in: `[{"result":{"allow":true,"allow":false}}]`, wantErr: true},
		{name: "an unknown member is refused", in: `[{"result":{"allow":true,"deny":[]}}]`, wantErr: true},
		{name: "a reason that is not a string is refused", in: `[{"result":[1]}]`, short: true, wantErr: true},
		{name: "two results are refused", in: `[{"result":[]},{"result":[]}]`, short: true, wantErr: true},
		{name: "bindings instead of a result are refused", in: `[{"bindings":{}}]`, short: true, wantErr: true},
		{name: "trailing bytes are refused", in: `[]x`, wantErr: true},
		{name: "a truncated result is refused", in: `[{"result":["a`, short: true, wantErr: true},
		{name: "a control character in a string is refused", in: "[{\"result\":[\"a\x01\"]}]", short: true, wantErr: true},
		{name: "invalid UTF-8 is refused", in: "[{\"result\":[\"\xff\"]}]", short: true, wantErr: true},
		{name: "null is refused", in: `null`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeWasmResult([]byte(tc.in), tc.short)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error, decoded %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(rawDecision{})); diff != "" {
				t.Fatalf("(-want +got)\n%s", diff)
			}
		})
	}
}

// FuzzDecodeWasmResult: whatever the reader accepts, encoding/json reads the same way.
func FuzzDecodeWasmResult(f *testing.F) {
	for _, s := range []string{`[]`, `[{"result":["a","b"]}]`, `[{"result":{"allow":true,"obligations":{"x":true,"y":"10"},"reasons":[]}}]`,
		`[{"result":["a\u0041\n"]}]`, `[{"result":{"allow":false,"reasons":["r"]}}]`} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, short bool) {
		got, err := decodeWasmResult(b, short)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var std []map[string]any
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("accepted %q, encoding/json refuses it: %v", b, err)
		}
		if len(std) == 0 {
			if got.defined {
				t.Fatalf("empty result set read as defined")
			}
			return
		}
		want := rawDecision{defined: true}
		if short {
			want.hasReasons = true
			for _, r := range std[0]["result"].([]any) {
				want.reasons = append(want.reasons, r.(string))
			}
		} else {
			obj := std[0]["result"].(map[string]any)
			if a, ok := obj["allow"]; ok {
				want.allow = ptr(a.(bool))
			}
			if rs, ok := obj["reasons"]; ok {
				want.hasReasons = true
				for _, r := range rs.([]any) {
					want.reasons = append(want.reasons, r.(string))
				}
			}
			if o, ok := obj["obligations"]; ok {
				want.obligations = o.(map[string]any)
			}
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(rawDecision{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q: (-encoding/json +reader)\n%s", b, diff)
		}
	})
}
