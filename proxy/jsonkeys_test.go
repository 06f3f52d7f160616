package proxy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSONKeys(t *testing.T) {
	cases := []struct {
		name, body string
		refused    bool
	}{
		{"distinct keys pass", `{"user_id":"@a:hs1","reason":"x"}`, false},
		{"the same key in sibling objects passes", `[{"a":1},{"a":2}]`, false},
		{"the same key at different depths passes", `{"a":{"a":{"a":1}}}`, false},
		{"keys inside string values are not keys", `{"a":"{\"a\":1,\"a\":2}","b":"A"}`, false},
		{"values equal to a key pass", `{"a":"A","A2":"a"}`, false},
		{"an exact duplicate is refused", `{"user_id":"@a","user_id":"@b"}`, true},
		{"a case variant is refused", `{"user_id":"@a","User_Id":"@b"}`, true},
		{"a case variant in a nested object is refused", `{"event":{"state_key":"@a","State_Key":"@b"}}`, true},
		{"a case variant inside an array element is refused", `{"initial_state":[{"type":"a","TYPE":"b"}]}`, true},
		{"a long s that folds to s is refused", `{"user_id":"@a","uſer_id":"@b"}`, true},
		{"a Kelvin sign that folds to k is refused", `{"key":"a","` + "\u212a" + `ey":"b"}`, true},
		{"an escaped duplicate is refused", `{"user_id":"@a","user\u005fid":"@b"}`, true},
		{"an escaped quote in a key is decoded", `{"a\"b":1,"A\"B":2}`, true},
		{"a dotless i does not fold to i", `{"invite":1,"ınvite":2}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.body)) {
				t.Fatalf("test body is not JSON: %s", tc.body)
			}
			err := checkJSONKeys([]byte(tc.body))
			if refused := errors.Is(err, errJSONKeyCollision); refused != tc.refused {
				t.Fatalf("err %v, want refused=%v", err, tc.refused)
			}
		})
	}
}

// decodeBody refuses the body before any struct sees it.
func TestDecodeBodyRefusesFoldedKeys(t *testing.T) {
	var v struct {
		UserID string `json:"user_id"`
	}
	if err := decodeBody([]byte(`{"user_id":"@blocker:hs1","User_Id":"@open:hs1"}`), &v); err == nil {
		t.Fatalf("decoded %q", v.UserID)
	}
	if err := decodeBody([]byte(`{"user_id":"@open:hs1"}`), &v); err != nil || v.UserID != "@open:hs1" {
		t.Fatalf("plain body: %v %q", err, v.UserID)
	}
}

// FuzzCheckJSONKeys: on valid JSON it never panics, and an object it passes has no two top-level keys that
// encoding/json would match to the same field.
func FuzzCheckJSONKeys(f *testing.F) {
	f.Add(`{"user_id":"@a","User_Id":"@b"}`)
	f.Add(`{"a":[{"b":"}"},{"c":"\\\""}],"d":{"e":null}}`)
	f.Add(`{"uſer_id":1}`)
	f.Add(`[1,"x",{"k":true}]`)
	f.Fuzz(func(t *testing.T, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		if checkJSONKeys([]byte(body)) != nil {
			return
		}
		var exact map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &exact) != nil {
			return
		}
		// No two top-level keys may be equal for encoding/json's case-insensitive matching.
		keys := make([]string, 0, len(exact))
		for k := range exact {
			keys = append(keys, k)
		}
		for i, a := range keys {
			for _, b := range keys[i+1:] {
				if utf8.ValidString(a) && utf8.ValidString(b) && strings.EqualFold(a, b) {
					t.Fatalf("keys %q and %q passed", a, b)
				}
			}
		}
	})
}
