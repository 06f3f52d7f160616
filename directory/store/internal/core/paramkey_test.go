package core

import (
	"testing"

	"github.com/timstack/timstack/directory/index"
)

// knownParamPairs lists every (type, param) a store can hold rows for: the registry's parameters of every
// resource type and the chain-row parameters of the chain roots.
func knownParamPairs() [][2]string {
	var pairs [][2]string
	for _, typ := range index.ResourceTypes {
		for _, p := range index.Params(typ) {
			pairs = append(pairs, [2]string{typ, p.Code})
		}
	}
	for _, cr := range AllChainRows() {
		pairs = append(pairs, [2]string{cr.Root, cr.ActiveParam()})
		for _, s := range cr.Strings {
			pairs = append(pairs, [2]string{cr.Root, cr.prefix() + s})
		}
	}
	return pairs
}

// A PostgreSQL string search asks for the param_key alone, so two known pairs with one key would mix
// their rows in each other's results.
func TestParamKeysOfKnownPairsAreDistinct(t *testing.T) {
	pairs := knownParamPairs()
	if len(pairs) < 50 {
		t.Fatalf("only %d known pairs: the registry was not read", len(pairs))
	}
	seen := map[int32][2]string{}
	for _, p := range pairs {
		k := ParamKey(p[0], p[1])
		if q, ok := seen[k]; ok && q != p {
			t.Errorf("%s.%s and %s.%s share the param_key %d", p[0], p[1], q[0], q[1], k)
		}
		seen[k] = p
	}
}

// The key is part of the stored data: a change of the function would leave every stored row unfindable.
// The values are PostgreSQL's for ParamKeySQL (signed: the first bit of the MD5 is the sign).
func TestParamKeyIsStable(t *testing.T) {
	for _, c := range []struct {
		typ, param string
		want       int32
	}{
		{index.Practitioner, "family", 1146093611},
		{index.Location, "name", 1799641520},
		{index.Location, "address", 986035557},
		{index.Location, "address-state", -1633985742},
	} {
		if got := ParamKey(c.typ, c.param); got != c.want {
			t.Errorf("ParamKey(%s, %s) = %d, want %d", c.typ, c.param, got, c.want)
		}
	}
}
