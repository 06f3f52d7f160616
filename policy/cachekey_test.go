package policy

import (
	"fmt"
	"reflect"
	"testing"
)

// fullInput sets every field of every part of Input to a non-zero value, by reflection, so a field added to
// Input later is set too.
func fullInput(t *testing.T) *Input {
	t.Helper()
	in := &Input{}
	fill(t, reflect.ValueOf(in).Elem(), "Input")
	return in
}

func fill(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k1-"+path), reflect.Zero(v.Type().Elem()))
		m.SetMapIndex(reflect.ValueOf("k2-"+path), reflect.Zero(v.Type().Elem()))
		v.Set(m)
	default:
		t.Fatalf("%s: kind %s is not handled by the cache key; extend appendInputKey and this test", path, v.Kind())
	}
}

// mutations lists, for every leaf of Input, a change to that leaf alone.
func mutations(t *testing.T, v reflect.Value, path string, out *[]string, apply map[string]func()) {
	switch v.Kind() {
	case reflect.String:
		*out = append(*out, path)
		apply[path] = func() { v.SetString(v.String() + "x") }
	case reflect.Bool:
		*out = append(*out, path)
		apply[path] = func() { v.SetBool(!v.Bool()) }
	case reflect.Int, reflect.Int64:
		*out = append(*out, path)
		apply[path] = func() { v.SetInt(v.Int() + 1) }
	case reflect.Pointer:
		*out = append(*out, path+"=nil")
		apply[path+"=nil"] = func() { v.Set(reflect.Zero(v.Type())) }
		mutations(t, v.Elem(), path, out, apply)
	case reflect.Struct:
		for i := range v.NumField() {
			mutations(t, v.Field(i), path+"."+v.Type().Field(i).Name, out, apply)
		}
	case reflect.Slice:
		*out = append(*out, path+"=shorter", path+"=nil")
		apply[path+"=shorter"] = func() { v.Set(v.Slice(0, 1)) }
		apply[path+"=nil"] = func() { v.Set(reflect.Zero(v.Type())) }
		mutations(t, v.Index(0), path+"[0]", out, apply)
	case reflect.Map:
		*out = append(*out, path+"+key", path+"=nil")
		apply[path+"+key"] = func() { v.SetMapIndex(reflect.ValueOf("k3"), reflect.Zero(v.Type().Elem())) }
		apply[path+"=nil"] = func() { v.Set(reflect.Zero(v.Type())) }
	}
}

// Every fact of an input must reach the cache key: two inputs differing in any one field must never share
// a cached decision.
// Both key forms — the encoding itself and its hash — must tell every field apart.
func TestCacheKeyCoversEveryField(t *testing.T) {
	for name, maxExact := range map[string]int{"exact": 1 << 20, "hashed": 0} {
		t.Run(name, func(t *testing.T) { testCacheKeyCoversEveryField(t, maxExact) })
	}
}

func testCacheKeyCoversEveryField(t *testing.T, maxExact int) {
	base := fullInput(t)
	baseKey, _ := cacheKeyWithin(base, maxExact, nil)
	if (baseKey.exact != "") != (maxExact > 0) {
		t.Fatalf("key form: exact %q with a limit of %d", baseKey.exact, maxExact)
	}
	var paths []string
	probe := fullInput(t)
	apply := map[string]func(){}
	mutations(t, reflect.ValueOf(probe).Elem(), "Input", &paths, apply)
	if len(paths) < 40 {
		t.Fatalf("only %d leaves found; the walk is broken", len(paths))
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			in := fullInput(t)
			var sub []string
			fns := map[string]func(){}
			mutations(t, reflect.ValueOf(in).Elem(), "Input", &sub, fns)
			fns[p]()
			k, ok := cacheKeyWithin(in, maxExact, nil)
			if !ok {
				t.Fatal("no key")
			}
			if k == baseKey {
				t.Fatalf("changing %s leaves the cache key unchanged", p)
			}
		})
	}
}

func TestCacheKeyIsStableAndOrderIndependent(t *testing.T) {
	a, b := fullInput(t), fullInput(t)
	ka, _ := cacheKeyFor(a)
	kb, _ := cacheKeyFor(b)
	if ka != kb {
		t.Fatal("equal inputs have different keys")
	}
	// Maps iterate in random order; the key must not.
	for range 20 {
		if k, _ := cacheKeyFor(a); k != ka {
			t.Fatal("key depends on map iteration order")
		}
	}
	// Adjacent strings must not run together: ("ab","c") and ("a","bc").
	x := &Input{Action: ActionInvite, Origin: "ab", Destination: "c"}
	y := &Input{Action: ActionInvite, Origin: "a", Destination: "bc"}
	kx, _ := cacheKeyFor(x)
	ky, _ := cacheKeyFor(y)
	if kx == ky {
		t.Fatal("field boundaries are ambiguous")
	}
}

// Short inputs key on their encoding, long ones on its hash; an input whose encoding reaches the limit
// changes form, and the two forms of one input never compare equal.
func TestCacheKeyForms(t *testing.T) {
	short := inviteInput()
	k, _ := cacheKeyFor(short)
	if k.exact == "" || k.sum != ([32]byte{}) {
		t.Fatalf("a short invite is not keyed by its encoding: %+v", k)
	}
	long := inviteInput()
	for i := range 50 {
		long.PermissionConfig.UserExceptions[fmt.Sprintf("@user%02d:d0002.example", i)] = struct{}{}
	}
	kl, _ := cacheKeyFor(long)
	if kl.exact != "" || kl.sum == ([32]byte{}) {
		t.Fatalf("a long invite is not keyed by a hash: exact of %d bytes", len(kl.exact))
	}
	hashed, _ := cacheKeyWithin(short, 0, nil)
	if hashed == k {
		t.Fatal("the hashed and the exact key of one input are equal")
	}
}

func BenchmarkCacheKey(b *testing.B) {
	in := &Input{Action: ActionPresence, Origin: "hs1.tim.test", Actor: &User{UserID: "@alice:hs1.tim.test", Domain: "hs1.tim.test", Local: true},
		Request: &Request{StatusMsgLength: 20, Authenticated: true}}
	b.ReportAllocs()
	for b.Loop() {
		cacheKeyFor(in)
	}
}
