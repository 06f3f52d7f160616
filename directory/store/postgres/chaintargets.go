package postgres

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
)

// maxRememberedBytes bounds the memory of chainTargetMemory's records (about 60 bytes per target);
// beyond it, lookups of the targets not remembered go to the database.
const maxRememberedBytes = 1 << 30

// ambiguous marks a hash that two remembered targets share: lookups of either go to the database.
const ambiguous = ^uint32(0)

// chainTargetMemory remembers, during a bulk load, what the chain rows take from the targets this
// process has written (core.ChainTarget: active, and the string rows of the chains' parameters), so that
// the load's roots find them without a query. A load writes the Practitioners before the roles that link
// to them, and reading them back was 22 s of the database's CPU in a full-scale load (700k targets, four
// index probes each). Entries are added when the write that stored them has committed, as a query would
// see them; a lookup that misses (a load resumed by a new process, say) asks the database. It holds only
// this process's writes: a bulk load has one writer (BeginBulkLoad).
//
// The records live in one byte slice, found through a map from a hash of type and id to their offset:
// neither holds pointers, so the garbage collector does not walk them. As a map of strings and slices
// (700k entries at full scale) they made the collector's marking 14 s of CPU more and took back what the
// queries saved.
type chainTargetMemory struct {
	mu    sync.Mutex
	seed  maphash.Seed
	at    map[uint64]uint32 // hash of type and id → offset of the newest record in recs, or ambiguous
	recs  []byte            // records: key, active, pairs of parameter and value (appendField each)
	ready bool
}

// key is the lookup key of a target: type and id, which cannot contain a NUL byte.
func key(typ, id string) string { return typ + "\x00" + id }

func (c *chainTargetMemory) hash(k string) uint64 {
	if !c.ready {
		c.seed, c.at, c.ready = maphash.MakeSeed(), map[uint64]uint32{}, true
	}
	return maphash.String(c.seed, k)
}

// remember records the chain-target view of the targets among rs, written by a committed bulk write.
func (c *chainTargetMemory) remember(rs []index.Resource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	paramsOf := map[string][]string{} // per type; nil: no chain target
	for _, r := range rs {
		params, ok := paramsOf[r.Type]
		if !ok {
			params = chainStringParams(r.Type)
			paramsOf[r.Type] = params
		}
		if params == nil {
			continue
		}
		k := key(r.Type, r.ID)
		h := c.hash(k)
		if off, ok := c.at[h]; ok && (off == ambiguous || c.recordKey(off) != k) {
			c.at[h] = ambiguous
			continue
		}
		if len(c.recs) >= maxRememberedBytes {
			continue
		}
		t := core.ChainTargetOf(r.Rows, params)
		off := uint32(len(c.recs))
		c.recs = appendField(c.recs, k)
		active := ""
		if t.Active {
			active = "1"
		}
		c.recs = appendField(c.recs, active)
		c.recs = binary.AppendUvarint(c.recs, uint64(2*len(t.Strings)))
		for _, row := range t.Strings {
			c.recs = appendField(appendField(c.recs, row.Param), row.Value)
		}
		c.at[h] = off // a later version replaces an earlier one
	}
}

// forget drops a deleted target.
func (c *chainTargetMemory) forget(typ, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(typ, id)
	h := c.hash(k)
	if off, ok := c.at[h]; ok && off != ambiguous && c.recordKey(off) == k {
		delete(c.at, h)
	}
}

// clear empties the memory (the end of a bulk load).
func (c *chainTargetMemory) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at, c.recs, c.ready = nil, nil, false
}

// lookup returns the remembered targets of type target among ids, with the string rows of params, and
// the ids it does not know.
func (c *chainTargetMemory) lookup(target string, ids, params []string) (map[string]core.ChainTarget, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	found := make(map[string]core.ChainTarget, len(ids))
	var missing []string
	for _, id := range ids {
		k := key(target, id)
		off, ok := c.at[c.hash(k)]
		if !ok || off == ambiguous || c.recordKey(off) != k {
			missing = append(missing, id)
			continue
		}
		b := c.recs[off:]
		_, b = readField(b)
		active, b := readField(b)
		n, w := binary.Uvarint(b)
		b = b[w:]
		t := core.ChainTarget{Active: active == "1"}
		for i := uint64(0); i < n; i += 2 {
			var p, v string
			p, b = readField(b)
			v, b = readField(b)
			if slices.Contains(params, p) {
				t.Strings = append(t.Strings, index.Row{Param: p, Type: index.TypeString, Value: v})
			}
		}
		found[id] = t
	}
	return found, missing
}

// recordKey returns the key of the record at off.
func (c *chainTargetMemory) recordKey(off uint32) string {
	k, _ := readField(c.recs[off:])
	return k
}

func appendField(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func readField(b []byte) (string, []byte) {
	n, w := binary.Uvarint(b)
	return string(b[w : w+int(n)]), b[w+int(n):]
}

// chainStringParams returns the string parameters the chains with target typ copy (nil: typ is no
// chain target).
func chainStringParams(typ string) []string {
	var params []string
	for _, cr := range core.AllChainRows() {
		if cr.Target == typ {
			params = append(params, cr.Strings...)
		}
	}
	return params
}
