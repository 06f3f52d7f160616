package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/bufpool"
	"github.com/timstack/timstack/proxy/dirfacts"
	"github.com/timstack/timstack/proxy/flist"
	"github.com/timstack/timstack/proxy/forward"
	"github.com/timstack/timstack/proxy/matrix"
	"github.com/timstack/timstack/proxy/mxerr"
	"github.com/timstack/timstack/proxy/route"
	"github.com/timstack/timstack/proxy/sso"
)

// Proxy is the Messenger-Proxy: three surfaces (client, inbound federation, outbound forward proxy) in front
// of one homeserver, every decision taken by the policy engine.
type Proxy struct {
	cfg *Config
	log *slog.Logger
	now func() time.Time

	policy  *policy.Engine
	flist   *flist.Keeper
	keys    *matrix.KeyRing
	as      *appservice.Client
	asReg   *appservice.Registration
	perms   *appservice.PermissionStore
	rooms   *appservice.RoomIndex
	tokens  *tokenCache
	egress  *forward.Egress
	forward *forward.Proxy

	clientRoutes *route.Table
	fedRoutes    *route.Table

	upstream  *httputil.ReverseProxy
	buffers   bufpool.Pool // the upstream hop's copy buffers
	hsURL     *url.URL
	decisions *decisionLog
	// decisionFile is the decision log file the proxy opened; Run closes it at the end.
	decisionFile io.Closer
	metrics      *metrics
	discovery    *discovery
	// listFresh mirrors whether the policy currently holds a fresh list.
	listFresh atomic.Bool
	// peerList is the verified list the policy holds, for resolving a peer's Telematik-ID.
	peerList atomic.Pointer[certs.FederationList]
	// dirfacts resolves directory facts of remote domains for operator modules (nil: off).
	dirfacts *dirfacts.Resolver
	// sso is the smartcard login bridge (nil: logins pass to the homeserver).
	sso *sso.Bridge
}

// ctxKey carries per-request values.
type ctxKey int

const requestIDKey ctxKey = iota

// handlerFunc is a surface's flow: it answers the request itself (returning nil) or returns an error that
// the one writer turns into a Matrix error. The route ID it returns labels metrics and logs.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (routeID string, err error)

// serve adapts a flow to http: request ID, panic recovery, the single error writer, metrics.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, surface string, flow handlerFunc) {
	start := p.now()
	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		rid = newID()
	}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, rid))
	sw := &statusWriter{ResponseWriter: w}
	routeID := "unknown"
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			p.log.Error("panic in handler", "surface", surface, "route", routeID, "request_id", rid, "panic", v)
			if !sw.wrote {
				mxerr.Write(sw, mxerr.Unknown())
			}
		}
		p.metrics.requests.WithLabelValues(surface, routeID, metricMethod(r.Method), sw.codeLabel()).Inc()
		p.metrics.requestDuration.WithLabelValues(surface, routeID).Observe(p.now().Sub(start).Seconds())
	}()
	id, err := flow(sw, r)
	if id != "" {
		routeID = id
	}
	if err != nil {
		if sw.wrote {
			// The response started (a streaming upstream failed midway); nothing sane can be added.
			p.log.Warn("error after response started", "surface", surface, "route", routeID, "request_id", rid, "err", err)
			return
		}
		e := mxerr.Write(sw, err)
		level := slog.LevelInfo
		if e.Status >= 500 {
			level = slog.LevelWarn
		}
		p.log.Log(r.Context(), level, "refused", "surface", surface, "route", routeID, "request_id", rid,
			"status", e.Status, "errcode", e.ErrCode, "reason_id", e.Reason, "cause", errors.Unwrap(e))
	}
}

// decide evaluates the policy, logs the decision and turns a denial into the Matrix error of its first
// reason. An evaluation error is a denial (policy_error): fail closed.
func (p *Proxy) decide(ctx context.Context, surface, routeID string, in *policy.Input) (policy.Decision, error) {
	// The list turns stale by the clock alone; the keeper notices on its timer, but a decision must never
	// rest on a list older than the maximum age, so the age is checked here too (a cheap atomic read).
	if p.listFresh.Load() && p.flist.Age() > p.cfg.FederationList.Keeper.MaxAge {
		p.onListChange(p.flist.Snapshot())
	}
	p.refetchOnMiss(ctx, in)
	start := time.Now()
	var dec policy.Decision
	var err error
	if ferr := p.peerFacts(ctx, in); ferr != nil && p.dirfacts.Required() {
		// The operator requires directory facts and the directory cannot give them: fail closed.
		p.log.Warn("directory facts unavailable; denying", "action", in.Action, "err", ferr)
		dec = policy.Decision{Reasons: []policy.Reason{policy.ReasonDirectoryUnavailable}, Revision: p.policy.Revision()}
	} else {
		dec, err = p.policy.Eval(ctx, in)
	}
	p.metrics.policyEval.Observe(time.Since(start).Seconds())
	ev := &decisionEvent{
		Time: p.now().UTC(), DecisionID: newID(), Surface: surface, Action: in.Action, Route: routeID,
		Origin: in.Origin, Destination: in.Destination, Allow: dec.Allow, Reasons: dec.Reasons,
		Revision: dec.Revision, Cached: dec.Cached,
	}
	if rid, ok := ctx.Value(requestIDKey).(string); ok {
		ev.RequestID = rid
	}
	if in.Actor != nil {
		ev.Actor = in.Actor.UserID
	}
	if in.Target != nil {
		ev.Target = in.Target.UserID
	}
	if in.Room != nil {
		ev.RoomID = in.Room.RoomID
	}
	if err != nil {
		ev.Allow, ev.Reasons = false, []policy.Reason{policy.ReasonPolicyError}
		p.log.Error("policy evaluation failed; denying", "request_id", ev.RequestID, "action", in.Action, "err", err)
	}
	var refusalErr *mxerr.Error
	if !ev.Allow {
		var mapped bool
		refusalErr, mapped = refusal(ev.Reasons)
		if !mapped {
			p.log.Warn("denial reason has no mapping; answering 403", "reasons", ev.Reasons, "request_id", ev.RequestID)
		}
		ev.Status = refusalErr.Status
	}
	p.decisions.write(ev)
	result, first := "allow", ""
	if !ev.Allow {
		result = "deny"
		first = refusalErr.Reason
	}
	p.metrics.decisions.WithLabelValues(result, first).Inc()
	if refusalErr != nil {
		return dec, refusalErr.Wrap(err)
	}
	return dec, nil
}

// refetchOnMiss: A_25537 — before a domain the input names is refused as unknown, the list is fetched again
// (rate-limited and shared by the keeper); a newer verified list reaches the policy through the keeper's
// subscription before the decision is made.
func (p *Proxy) refetchOnMiss(ctx context.Context, in *policy.Input) {
	if !p.listFresh.Load() {
		return
	}
	list := p.peerList.Load()
	check := func(domain string) bool {
		if domain == "" || strings.EqualFold(domain, p.cfg.ServerName) {
			return false
		}
		if _, ok := list.Lookup(domain); ok {
			return false
		}
		p.flist.Lookup(ctx, domain)
		return true
	}
	switch {
	case check(in.Origin), check(in.Destination):
	case in.Actor != nil && !in.Actor.Local && check(in.Actor.Domain):
	case in.Target != nil && !in.Target.Local && check(in.Target.Domain):
	case in.Request != nil && check(in.Request.MediaServer):
	}
}

// peerFacts adds the remote domain's directory facts (organisation types) to federation and invite
// decisions when directory facts are configured. Unlisted domains get none: the built-in rules deny them.
func (p *Proxy) peerFacts(ctx context.Context, in *policy.Input) error {
	if p.dirfacts == nil || in.Peer != nil {
		return nil
	}
	var remote string
	switch in.Action {
	case policy.ActionFederationInbound, policy.ActionFederationInvite:
		remote = in.Origin
	case policy.ActionFederationOutbound:
		remote = in.Destination
	case policy.ActionInvite, policy.ActionRoomCreate:
		if in.Target != nil && !in.Target.Local {
			remote = in.Target.Domain
		}
	}
	if remote == "" {
		return nil
	}
	d, ok := p.peerList.Load().Lookup(remote)
	if !ok || d.TelematikID == "" {
		return nil
	}
	types, err := p.dirfacts.OrganizationTypes(ctx, d.TelematikID)
	if err != nil {
		return err
	}
	in.Peer = &policy.Peer{Domain: remote, OrganizationTypes: types}
	return nil
}

// forwardClient sends a client request to the homeserver and post-processes the answers the proxy owns.
func (p *Proxy) forwardClient(w http.ResponseWriter, cr *clientRequest) error {
	id := cr.match.Route.ID
	switch {
	case id == "client.versions":
		return p.forwardRewritten(w, cr, rewriteVersions)
	case id == "client.account_data.global" && cr.r.Method == http.MethodGet &&
		isPermissionConfigType(cr.match.Params["type"]):
		return p.forwardPermissionConfigGet(w, cr)
	}
	if cr.match.Route.Flags.Has(route.LongPoll) && longPollMillis(cr.r) >= 1000 {
		handled, status, err := p.forwardLongPoll(w, cr.r, p.upstreamTimeout(cr.r, true))
		if handled {
			if sw, ok := w.(*statusWriter); ok && !sw.wrote {
				if status != 0 {
					sw.status, sw.wrote = status, true
				} else if err == nil {
					sw.hijacked = true
				}
			}
			return err
		}
	}
	// Answers whose success changes what the proxy caches are buffered: the cache changes before the client
	// sees the answer, so no request the client sends next can meet the old entry.
	var after func()
	var rec *bufferWriter // the buffered answer, for after
	switch {
	case id == "client.logout":
		after = func() { p.tokens.forgetToken(accessToken(cr.r)) }
	case id == "client.logout.all":
		after = func() {
			if cr.userID != "" {
				p.tokens.forgetUser(cr.userID)
			}
			p.tokens.forgetToken(accessToken(cr.r))
		}
	case id == "client.account_data.global" && cr.r.Method == http.MethodPut && isPermissionConfigType(cr.match.Params["type"]):
		after = func() { p.perms.Invalidate(cr.match.Params["userId"]) }
	case id == "client.join" || id == "client.rooms.join":
		after = func() { p.indexJoinedRoom(cr, rec) }
	}
	if after == nil {
		_, err := p.forwardUpstream(w, cr.r, cr.body, false)
		return err
	}
	rec = newBufferWriter()
	identityEncoding(cr.r)
	if _, err := p.forwardUpstream(rec, cr.r, cr.body, false); err != nil {
		return err
	}
	if rec.status/100 == 2 {
		after()
	}
	rec.copyHeaders(w)
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.buf.Bytes())
	return nil
}

// indexJoinedRoom reads the state of a room a local user just joined into the room index unless the index
// has followed the room since its creation. The homeserver's application-service transactions carry only
// new events, so a room joined mid-life — a practice's room an insured user was invited to — would lack its
// earlier members, and the ePA profile rule would never see the shared room. A join by alias names the room
// only in the homeserver's answer ({"room_id"}). The join itself has succeeded; a failed read is only logged.
func (p *Proxy) indexJoinedRoom(cr *clientRequest, answer *bufferWriter) {
	roomID := cr.match.Params["roomId"]
	if roomID == "" {
		roomID = cr.match.Params["roomIdOrAlias"]
	}
	if !strings.HasPrefix(roomID, "!") {
		var joined struct {
			RoomID string `json:"room_id"`
		}
		if json.Unmarshal(answer.buf.Bytes(), &joined) == nil {
			roomID = joined.RoomID
		}
	}
	if p.rooms == nil || cr.userID == "" || !strings.HasPrefix(roomID, "!") {
		return
	}
	if f, ok := p.rooms.Room(roomID); ok && f.FromCreate {
		return
	}
	ctx, cancel := context.WithTimeout(cr.r.Context(), p.cfg.Homeserver.Timeout)
	defer cancel()
	if _, err := p.rooms.Backfill(ctx, roomID, cr.userID); err != nil {
		p.log.Warn("room index: reading a joined room's state failed", "room_id", roomID, "err", err)
	}
}

// forwardUpstream proxies r to the homeserver; body replaces r.Body when the proxy read it. It returns the
// upstream status (0 when the upstream could not be reached, with the error already answered).
func (p *Proxy) forwardUpstream(w http.ResponseWriter, r *http.Request, body []byte, long bool) (int, error) {
	ctx, cancel := context.WithTimeout(r.Context(), p.upstreamTimeout(r, long))
	defer cancel()
	out := r.WithContext(ctx)
	if body != nil {
		out = withBody(out, body)
	}
	sw, ok := w.(*statusWriter)
	if !ok {
		sw = &statusWriter{ResponseWriter: w}
	}
	start := time.Now()
	p.upstream.ServeHTTP(sw, out)
	p.metrics.upstreamDuration.WithLabelValues("homeserver").Observe(time.Since(start).Seconds())
	return sw.code(), nil
}

// longPollMillis is the timeout query parameter of a long-poll (0 when absent or bad).
func longPollMillis(r *http.Request) int {
	ms, err := strconv.Atoi(r.URL.Query().Get("timeout"))
	if err != nil || ms < 0 {
		return 0
	}
	return ms
}

// upstreamTimeout is the homeserver budget of a request; a long-poll gets its timeout parameter on top.
func (p *Proxy) upstreamTimeout(r *http.Request, long bool) time.Duration {
	timeout := p.cfg.Homeserver.Timeout
	if long {
		if ms, err := strconv.Atoi(r.URL.Query().Get("timeout")); err == nil && ms > 0 {
			timeout += min(time.Duration(ms)*time.Millisecond, 10*time.Minute)
		}
	}
	return timeout
}

// forwardRewritten forwards, buffers the JSON answer and lets fn rewrite a 200 body.
func (p *Proxy) forwardRewritten(w http.ResponseWriter, cr *clientRequest, fn func([]byte) ([]byte, error)) error {
	rec := newBufferWriter()
	identityEncoding(cr.r)
	if _, err := p.forwardUpstream(rec, cr.r, cr.body, false); err != nil {
		return err
	}
	body := rec.buf.Bytes()
	if rec.status == http.StatusOK {
		if nb, err := fn(body); err == nil {
			body = nb
		} else {
			return refuse(policy.ReasonUpstreamUnavailable).Wrap(err)
		}
	}
	rec.copyHeaders(w)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.status)
	_, _ = w.Write(body)
	return nil
}

// identityEncoding asks the homeserver for an uncompressed answer: the proxy reads (or rewrites) it before the
// client gets it, and a gzip body would not parse. Other answers pass with the client's Accept-Encoding.
func identityEncoding(r *http.Request) { r.Header.Del("Accept-Encoding") }

// forwardPermissionConfigGet answers a GET of an absent permission configuration with the server default
// (A_25043/A_25044 as the reference proxy and Famedly behave).
func (p *Proxy) forwardPermissionConfigGet(w http.ResponseWriter, cr *clientRequest) error {
	rec := newBufferWriter()
	identityEncoding(cr.r)
	if _, err := p.forwardUpstream(rec, cr.r, nil, false); err != nil {
		return err
	}
	if rec.status == http.StatusNotFound {
		body, err := appservice.EncodePermissionConfig(cr.match.Params["type"], p.perms.DefaultFor(cr.match.Params["userId"]))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return nil
	}
	rec.copyHeaders(w)
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.buf.Bytes())
	return nil
}

// rewriteVersions keeps only spec versions up to v1.11 (A_25641-01).
func rewriteVersions(body []byte) ([]byte, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	var versions []string
	if err := json.Unmarshal(v["versions"], &versions); err != nil {
		return nil, err
	}
	kept := []string{}
	for _, s := range versions {
		if versionAtMost(s, 1, 11) {
			kept = append(kept, s)
		}
	}
	if !slices.Contains(kept, "v1.11") {
		kept = append(kept, "v1.11")
	}
	v["versions"], _ = json.Marshal(kept)
	return json.Marshal(v)
}

// versionAtMost parses "vX.Y" (and "r0.x.y", all before v1.1) and compares.
func versionAtMost(s string, major, minor int) bool {
	if strings.HasPrefix(s, "r0.") {
		return true
	}
	if !strings.HasPrefix(s, "v") {
		return false
	}
	a, b, ok := strings.Cut(s[1:], ".")
	if !ok {
		return false
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return x < major || (x == major && y <= minor)
}

func (p *Proxy) writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// routeError maps the route table's verdict to the Matrix answer.
func routeError(err error) error {
	switch {
	case errors.Is(err, route.ErrMethodNotAllowed):
		e := refuse(policy.ReasonMethodNotAllowed)
		var mna *route.MethodError
		if errors.As(err, &mna) {
			e.Allow = mna.Allowed
		}
		return e.Wrap(err)
	default:
		return refuse(policy.ReasonEndpointUnknown).Wrap(err)
	}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// metricMethod bounds the method label.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodConnect:
		return m
	}
	return "other"
}
