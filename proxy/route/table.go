package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Surface is the API surface a route belongs to.
type Surface int

// The surfaces. Client and Media are served on the client listener, Federation and Key on the federation
// listener; WellKnown appears on both.
const (
	Client Surface = iota + 1
	Federation
	Media
	WellKnown
	Key
)

// String returns the surface's metric and log label.
func (s Surface) String() string {
	switch s {
	case Client:
		return "client"
	case Federation:
		return "federation"
	case Media:
		return "media"
	case WellKnown:
		return "wellknown"
	case Key:
		return "key"
	default:
		return fmt.Sprintf("surface(%d)", int(s))
	}
}

// Flags describe how the proxy treats a route. Exactly one of NeedsAuth and Unauthenticated is set.
type Flags uint16

// The route flags.
const (
	// NeedsAuth: the caller must authenticate, with an access token on the client surfaces and an X-Matrix
	// signature on the federation surface. Requests without are refused before forwarding.
	NeedsAuth Flags = 1 << iota
	// Unauthenticated: the proxy must not demand credentials. On user-interactive-auth routes
	// (account/password, account/deactivate) a token is optional and is resolved when present.
	Unauthenticated
	// Blocked: the proxy answers itself and never forwards (URL previews, login/get_token, federation
	// publicRooms, …); the status comes from the proxy's reason table.
	Blocked
	// Streams: the body is media and is streamed, never buffered or size-limited like JSON.
	Streams
	// SSO: part of the homeserver's single-sign-on flow (redirects and Synapse's /_synapse/client pages).
	SSO
	// InboundOnly: forwarded from remote servers to the homeserver but never sent out by it (A_26224,
	// A_26244: the key variants with a {keyId} segment).
	InboundOnly
	// LongPoll: the response may be held open for the client's timeout (sync, events); it needs its own
	// write deadline.
	LongPoll
	// Deprecated: deprecated in Matrix v1.11 but still part of it, so still forwarded.
	Deprecated
)

var flagNames = [...]string{"needs_auth", "unauthenticated", "blocked", "streams", "sso", "inbound_only",
	"long_poll", "deprecated"}

// Has reports whether all of want are set.
func (f Flags) Has(want Flags) bool { return f&want == want }

// String lists the set flags, comma-separated, in declaration order.
func (f Flags) String() string {
	var names []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// Route is one allowed endpoint.
type Route struct {
	// ID is the stable dotted name the proxy dispatches on ("client.rooms.invite"). Versions of the same
	// endpoint (r0 and v3) share an ID; variants with different bodies (federation invite v1 and v2) do not.
	ID string
	// Surface is the API surface.
	Surface Surface
	// Methods are the allowed methods. GET also admits HEAD, as in Synapse.
	Methods []string
	// Pattern is the path with {name} parameters, each exactly one non-empty segment; {name?} (last segment
	// only) may be empty or absent together with its slash. Literal segments match the raw path exactly.
	Pattern string
	// Flags describe the proxy's treatment.
	Flags Flags
}

// Match is the result of a successful Lookup.
type Match struct {
	// Route is the matched route; it belongs to the table and must not be modified.
	Route *Route
	// Params are the pattern's parameters, percent-decoded. An absent optional parameter is "".
	Params map[string]string
}

// ErrUnknownEndpoint is returned by Lookup for a path that no route matches (404 M_UNRECOGNIZED).
var ErrUnknownEndpoint = errors.New("route: unknown endpoint")

// ErrMethodNotAllowed is matched (errors.Is) by the *MethodError Lookup returns for a known path with a method
// it does not allow (405 M_UNRECOGNIZED).
var ErrMethodNotAllowed = errors.New("route: method not allowed")

// MethodError is the 405 case of Lookup; Allowed feeds the Allow header.
type MethodError struct {
	// Allowed are the methods the path allows, sorted.
	Allowed []string
}

// Error implements error.
func (e *MethodError) Error() string {
	return ErrMethodNotAllowed.Error() + " (allowed: " + strings.Join(e.Allowed, ", ") + ")"
}

// Is makes errors.Is(err, ErrMethodNotAllowed) true.
func (e *MethodError) Is(target error) bool { return target == ErrMethodNotAllowed }

// Table is an immutable set of routes, safe for concurrent use.
type Table struct {
	routes []*Route
	root   *node
}

// node is one position in the segment trie.
type node struct {
	lit   map[string]*node // raw literal segment → child
	param *node            // child for a {name} segment
	name  string           // parameter name, on param children
	opt   bool             // {name?}: may be empty or absent
	leaf  *leaf            // routes ending here
}

// leaf holds the routes that end at a node, with their method sets.
type leaf struct {
	byMethod map[string]*Route
	allowed  []string
	names    []string // parameter names along the path, in order
	pos      []int    // segment index of each parameter
}

// Routes returns the table's routes in definition order. The routes belong to the table and must not be
// modified.
func (t *Table) Routes() []*Route { return slices.Clone(t.routes) }

// NewTable builds a table and checks that the routes are consistent: valid patterns, one auth flag each,
// no two routes claiming the same pattern and method.
func NewTable(routes []Route) (*Table, error) {
	t := &Table{root: &node{}}
	var errs []error
	for i := range routes {
		r := &routes[i]
		if err := t.add(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s %s: %w", r.ID, r.Pattern, err))
			continue
		}
		t.routes = append(t.routes, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Table) add(r *Route) error {
	if r.ID == "" || r.Surface == 0 || len(r.Methods) == 0 {
		return errors.New("needs an ID, a surface and methods")
	}
	if r.Flags.Has(NeedsAuth) == r.Flags.Has(Unauthenticated) {
		return errors.New("needs exactly one of NeedsAuth and Unauthenticated")
	}
	if !strings.HasPrefix(r.Pattern, "/") || strings.Contains(r.Pattern, "//") {
		return errors.New("pattern must be an absolute path without empty segments")
	}
	segs := strings.Split(r.Pattern[1:], "/")
	n := t.root
	var names []string
	var pos []int
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name, opt := strings.CutSuffix(s[1:len(s)-1], "?")
			if name == "" || (opt && i != len(segs)-1) {
				return errors.New("bad parameter " + s)
			}
			if n.param == nil {
				n.param = &node{name: name, opt: opt}
			} else if n.param.name != name || n.param.opt != opt {
				return fmt.Errorf("parameter {%s} conflicts with {%s} at the same position", s, n.param.name)
			}
			n = n.param
			names = append(names, name)
			pos = append(pos, i)
			continue
		}
		if s == "" && i != len(segs)-1 {
			return errors.New("empty literal segment")
		}
		if strings.ContainsAny(s, "{}%") {
			return errors.New("bad literal segment " + s)
		}
		if n.lit == nil {
			n.lit = map[string]*node{}
		}
		c := n.lit[s]
		if c == nil {
			c = &node{}
			n.lit[s] = c
		}
		n = c
	}
	if n.leaf == nil {
		n.leaf = &leaf{byMethod: map[string]*Route{}, names: names, pos: pos}
	} else if !slices.Equal(n.leaf.names, names) || !slices.Equal(n.leaf.pos, pos) {
		return errors.New("same path shape as another route with different parameter names")
	}
	for _, m := range r.Methods {
		if m == "HEAD" || m != strings.ToUpper(m) {
			return errors.New("bad method " + m)
		}
		if other := n.leaf.byMethod[m]; other != nil {
			return fmt.Errorf("%s already claimed by %s", m, other.ID)
		}
		n.leaf.byMethod[m] = r
		n.leaf.allowed = append(n.leaf.allowed, m)
		if m == "GET" {
			n.leaf.allowed = append(n.leaf.allowed, "HEAD")
		}
	}
	slices.Sort(n.leaf.allowed)
	return nil
}

// Lookup finds the route for a checked target. It returns ErrUnknownEndpoint when no route's path matches and
// a *MethodError (errors.Is ErrMethodNotAllowed) when a path matches but the method is not allowed. HEAD is
// treated as GET. Literal segments match the raw path, parameters are returned decoded.
func (t *Table) Lookup(method string, tgt Target) (Match, error) {
	raw := tgt.raw
	if raw == nil || len(raw) != len(tgt.Segments) {
		// A Target built by hand: re-check it rather than trust it.
		checked, err := CheckTarget(method, tgt.Path)
		if err != nil || !slices.Equal(checked.Segments, tgt.Segments) {
			return Match{}, ErrUnknownEndpoint
		}
		raw = checked.raw
	}
	lf := t.root.match(raw, tgt.Segments, 0)
	if lf == nil {
		return Match{}, ErrUnknownEndpoint
	}
	m := method
	if m == "HEAD" {
		m = "GET"
	}
	r := lf.byMethod[m]
	if r == nil {
		return Match{}, &MethodError{Allowed: slices.Clone(lf.allowed)}
	}
	params := make(map[string]string, len(lf.names))
	for i, name := range lf.names {
		if p := lf.pos[i]; p < len(tgt.Segments) {
			params[name] = tgt.Segments[p]
		} else {
			params[name] = "" // optional last parameter, absent
		}
	}
	return Match{Route: r, Params: params}, nil
}

// match walks the trie depth first, literal children before the parameter child, and returns the first leaf
// whose path matches completely, like Synapse's first matching pattern. Parameters sit at fixed segment
// positions per leaf, so nothing is collected on the way.
func (n *node) match(raw, dec []string, i int) *leaf {
	if i == len(raw) {
		if n.leaf != nil {
			return n.leaf
		}
		if p := n.param; p != nil && p.opt && p.leaf != nil {
			return p.leaf
		}
		return nil
	}
	if c := n.lit[raw[i]]; c != nil {
		if lf := c.match(raw, dec, i+1); lf != nil {
			return lf
		}
	}
	if p := n.param; p != nil && (dec[i] != "" || p.opt) {
		if lf := p.match(raw, dec, i+1); lf != nil {
			return lf
		}
	}
	return nil
}
