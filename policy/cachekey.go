package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
)

// cacheKeyFor identifies an input in the decision cache. Two inputs get the same key only when every fact
// they carry is equal, so a cached decision is exactly the decision the policy would take again.
//
// Federation-only inputs (the bulk of inbound traffic) key on their few strings directly. Every other input
// is written field by field into an unambiguous byte encoding (a tag per field, lengths before strings,
// presence bytes before optional parts, map keys sorted). An encoding of up to maxExactKey bytes is the key
// itself; a longer one (a permission configuration with many exceptions) is keyed by its SHA-256, which
// bounds the cache's memory. TestCacheKeyCoversEveryField walks Input by reflection, for both forms, and
// fails when a field is added here or there without the other.
func cacheKeyFor(in *Input) (cacheKey, bool) { return cacheKeyWithin(in, maxExactKey, nil) }

// maxExactKey is the longest encoding used as a key as it is. Typical decisions (a presence update, an
// invite with a short permission configuration) stay below it; hashing them cost more than the rest of a
// cache hit together.
const maxExactKey = 256

// cacheKeyWithin is cacheKeyFor with the exact-key limit given, taking encoding buffers from buffers (a pool
// of *[]byte; nil allocates one).
func cacheKeyWithin(in *Input, maxExact int, buffers *sync.Pool) (cacheKey, bool) {
	if (in.Action == ActionFederationInbound || in.Action == ActionFederationOutbound) &&
		in.Actor == nil && in.Target == nil && in.PermissionConfig == nil && in.Room == nil && in.Event == nil &&
		in.Request == nil {
		k := cacheKey{action: in.Action, origin: in.Origin, destination: in.Destination}
		if in.Peer != nil {
			// "\x01" keeps "peer present, no types" apart from "no peer".
			k.peerDomain = "\x01" + in.Peer.Domain
			switch len(in.Peer.OrganizationTypes) {
			case 0:
			case 1:
				k.peerTypes = in.Peer.OrganizationTypes[0]
			default:
				k.peerTypes = strings.Join(in.Peer.OrganizationTypes, "\x00")
			}
		}
		return k, true
	}
	// The encoding escapes to the heap (through the append helpers); a pooled buffer spares an allocation
	// per key.
	var bp *[]byte
	if buffers != nil {
		bp, _ = buffers.Get().(*[]byte)
	}
	if bp == nil {
		b := make([]byte, 0, 512)
		bp = &b
	}
	b := appendInputKey((*bp)[:0], in)
	var k cacheKey
	if len(b) <= maxExact {
		// Never empty (every encoding starts with a tag), so it cannot meet a hashed key's empty exact.
		k = cacheKey{action: in.Action, exact: string(b)}
	} else {
		k = cacheKey{action: in.Action, sum: sha256.Sum256(b)}
	}
	if buffers != nil && cap(b) <= 16<<10 { // an outsized buffer (a huge permission configuration) is left to the GC
		*bp = b
		buffers.Put(bp)
	}
	return k, true
}

// keyWriter appends the encoding; field tags make the encoding of one struct independent of which
// optional fields precede it.
type keyWriter struct{ b []byte }

func (w *keyWriter) tag(t byte) { w.b = append(w.b, t) }

func (w *keyWriter) str(t byte, s string) {
	w.b = append(w.b, t)
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *keyWriter) boolean(t byte, v bool) {
	if v {
		w.b = append(w.b, t, 1)
	} else {
		w.b = append(w.b, t, 0)
	}
}

func (w *keyWriter) integer(t byte, v int64) {
	w.b = append(w.b, t)
	w.b = binary.AppendVarint(w.b, v)
}

func (w *keyWriter) strings(t byte, ss []string) {
	w.b = append(w.b, t)
	w.b = binary.AppendUvarint(w.b, uint64(len(ss)))
	for _, s := range ss {
		w.b = binary.AppendUvarint(w.b, uint64(len(s)))
		w.b = append(w.b, s...)
	}
}

func (w *keyWriter) set(t byte, m map[string]struct{}) {
	if m == nil {
		w.b = append(w.b, t, 0)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.b = append(w.b, t, 1)
	w.strings(t, keys)
}

// present writes whether an optional part exists; absent and zero-valued parts must not collide.
func (w *keyWriter) present(t byte, ok bool) bool {
	w.boolean(t, ok)
	return ok
}

func appendInputKey(b []byte, in *Input) []byte {
	w := &keyWriter{b: b}
	w.str('a', string(in.Action))
	w.str('o', in.Origin)
	w.str('d', in.Destination)
	for _, u := range []struct {
		t byte
		u *User
	}{{'A', in.Actor}, {'T', in.Target}} {
		if w.present(u.t, u.u != nil) {
			w.str('i', u.u.UserID)
			w.str('m', u.u.Domain)
			w.boolean('l', u.u.Local)
			w.boolean('x', u.u.Admin)
		}
	}
	if pc := in.PermissionConfig; w.present('P', pc != nil) {
		w.str('s', pc.DefaultSetting)
		w.set('u', pc.UserExceptions)
		w.set('v', pc.ServerExceptions)
		w.strings('g', pc.GroupExceptions)
	}
	if r := in.Room; w.present('R', r != nil) {
		w.str('1', r.RoomID)
		w.str('2', r.Version)
		w.str('3', r.Type)
		w.str('4', r.Preset)
		w.str('5', r.Visibility)
		w.str('6', r.JoinRule)
		w.str('7', r.HistoryVisibility)
		w.boolean('8', r.Encrypted)
		if w.present('9', r.Federate != nil) {
			w.boolean('f', *r.Federate)
		}
		w.integer('c', int64(r.InviteCount))
		w.str('e', r.StateEventType)
		w.str('r', r.CreatorDomain)
		w.boolean('n', r.Invited)
	}
	if e := in.Event; w.present('E', e != nil) {
		w.str('t', e.Type)
		w.str('y', e.RelType)
		w.str('k', e.Key)
		w.boolean('j', e.KeyIsSingleEmoji)
		w.integer('g', e.AgeMillis)
	}
	if q := in.Request; w.present('Q', q != nil) {
		w.str('M', q.Method)
		w.str('S', q.Surface)
		w.str('D', q.MediaServer)
		w.integer('L', int64(q.StatusMsgLength))
		w.str('K', q.RegisterKind)
		w.boolean('H', q.SharesRoom)
		w.boolean('U', q.Authenticated)
	}
	if p := in.Peer; w.present('N', p != nil) {
		w.str('O', p.Domain)
		w.strings('Y', p.OrganizationTypes)
	}
	w.tag('.')
	return w.b
}
