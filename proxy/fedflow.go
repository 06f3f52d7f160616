package proxy

// The inbound federation flow, top to bottom:
//
//  1. shape      — unambiguous target, endpoint on the server-server v1.11 allow-list;
//  2. exceptions — /.well-known/matrix/server (answered here), key endpoints and openid/userinfo stay
//                  reachable without X-Matrix (the VZD and the registration service call userinfo);
//  3. X-Matrix   — the Authorization header parses exactly as the spec defines it and names us as
//                  destination (else 401 M_UNAUTHORIZED);
//  4. federation — the origin is on the verified federation list (else 403 M_FORBIDDEN) — checked before
//                  any key is fetched, so the proxy never contacts a server outside the federation;
//  5. signature  — the ed25519 signature over the canonical request verifies with the origin's key (key
//                  ring: cache, else the origin's /_matrix/key/v2/server through our own egress rules);
//  6. content    — invites are checked against the local invitee's permission configuration and the ePA
//                  rules; the room directory is closed over federation;
//  7. forward    — the body goes to the homeserver byte-identical.

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/matrix"
	"github.com/timstack/timstack/proxy/route"
)

// maxFederationBody bounds inbound federation JSON: a transaction holds at most 50 PDUs and 100 EDUs of at
// most 64 KiB each.
const maxFederationBody = 16 << 20

func (p *Proxy) serveFederation(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, "federation", p.federation)
}

func (p *Proxy) federation(w http.ResponseWriter, r *http.Request) (string, error) {
	// 1. shape
	tgt, err := route.CheckTarget(r.Method, r.RequestURI)
	if err != nil {
		return "", refuse(policy.ReasonAmbiguousRequest).Wrap(err)
	}
	m, err := p.fedRoutes.Lookup(r.Method, tgt)
	if err != nil {
		return "", routeError(err)
	}
	id := m.Route.ID

	// 2. exceptions
	switch {
	case id == "wellknown.server":
		return id, p.writeJSON(w, http.StatusOK, map[string]string{"m.server": p.delegatedServer()})
	case id == "federation.legacy_media.download" || id == "federation.legacy_media.thumbnail":
		// Only our own media; anything else would make our homeserver fetch from a third server.
		if !strings.EqualFold(m.Params["serverName"], p.cfg.ServerName) {
			return id, refuse(policy.ReasonEndpointUnknown)
		}
		_, err := p.forwardUpstream(w, r, nil, false)
		return id, err
	case m.Route.Flags.Has(route.Blocked | route.Unauthenticated):
		// Blocked routes without X-Matrix (3pid/onbind) have nobody to decide about: refused as unknown.
		return id, refuse(policy.ReasonEndpointUnknown)
	case m.Route.Flags.Has(route.Unauthenticated):
		_, err := p.forwardUpstream(w, r, nil, false)
		return id, err
	}

	// 3. X-Matrix
	xm, err := parseXMatrixHeaders(r.Header.Values("Authorization"))
	if err != nil {
		return id, err
	}
	// A missing destination (servers older than Matrix v1.3) means us; a different one is refused.
	if xm, err = xm.WithDestination(p.cfg.ServerName); err != nil {
		return id, refuse(policy.ReasonXMatrixWrongDest).Wrap(err)
	}

	// 4. federation
	origin := matrix.ServerNameHost(xm.Origin)
	if _, err := p.decide(r.Context(), "federation", id, &policy.Input{
		Action: policy.ActionFederationInbound, Origin: origin, Destination: p.cfg.ServerName,
	}); err != nil {
		return id, err
	}

	// 5. signature
	body, err := readJSONBody(r, maxFederationBody)
	if err != nil {
		return id, err
	}
	if err := p.keys.Verify(r.Context(), xm, r.Method, r.RequestURI, body); err != nil {
		return id, refuse(policy.ReasonXMatrixBadSignature).Wrap(err)
	}

	// 6. content
	var in *policy.Input
	switch id {
	case "federation.invite.v1", "federation.invite.v2":
		if in, err = p.federationInviteInput(r, id, origin, body); err != nil {
			return id, err
		}
	case "federation.publicRooms":
		in = &policy.Input{Action: policy.ActionPublicRooms, Origin: origin, Destination: p.cfg.ServerName,
			Request: &policy.Request{Method: r.Method, Surface: "federation", Authenticated: true}}
	}
	if in != nil {
		if _, err := p.decide(r.Context(), "federation", id, in); err != nil {
			return id, err
		}
	}

	// 7. forward, byte-identical
	_, err = p.forwardUpstream(w, r, body, false)
	return id, err
}

// federationInviteInput: inbound invites (v1: the event is the body; v2: {"event": …}). Sender and invitee
// must be federated, the invitee must be ours, and the invitee's permission configuration must allow the
// sender (A_26021-01), including the isInsuredPerson group via the sender domain's isInsurance.
func (p *Proxy) federationInviteInput(r *http.Request, id, origin string, body []byte) (*policy.Input, error) {
	type pdu struct {
		Type     string `json:"type"`
		Sender   string `json:"sender"`
		StateKey string `json:"state_key"`
		RoomID   string `json:"room_id"`
		Content  struct {
			Membership string `json:"membership"`
		} `json:"content"`
	}
	var ev pdu
	if id == "federation.invite.v2" {
		var req struct {
			Event *pdu `json:"event"`
		}
		if err := decodeBody(body, &req); err != nil {
			return nil, err
		}
		if req.Event == nil {
			return nil, refuse(policy.ReasonBadJSON)
		}
		ev = *req.Event
	} else if err := decodeBody(body, &ev); err != nil {
		return nil, err
	}
	if ev.Type != "m.room.member" || ev.Content.Membership != "invite" || ev.Sender == "" || ev.StateKey == "" {
		return nil, refuse(policy.ReasonBadJSON)
	}
	in := &policy.Input{Action: policy.ActionFederationInvite, Origin: origin, Destination: p.cfg.ServerName,
		Actor: p.user(ev.Sender), Room: &policy.Room{RoomID: ev.RoomID}}
	if in.Actor.Domain != origin {
		// The homeserver would refuse an invite whose sender is not of the origin; refusing here keeps a
		// forged sender from probing permission configurations.
		return nil, refuse(policy.ReasonInviterNotFederated)
	}
	if err := p.invitee(r.Context(), in, ev.StateKey); err != nil {
		return nil, err
	}
	if !in.Target.Local {
		return nil, refuse(policy.ReasonInviteeNotFederated)
	}
	return in, nil
}

// parseXMatrixHeaders reads the X-Matrix Authorization headers. Several are allowed (one per signing key)
// but they must agree on origin and destination; the first is verified.
func parseXMatrixHeaders(values []string) (matrix.XMatrix, error) {
	var first matrix.XMatrix
	found := false
	for _, v := range values {
		xm, err := matrix.ParseXMatrix(v)
		if err != nil {
			// The homeserver reads every value starting with "X-Matrix" as X-Matrix ("X-MatrixFoo …"
			// included) and takes the last origin; such a value must parse here too.
			if errors.Is(err, matrix.ErrXMatrixMissing) && !hasPrefixFold(strings.TrimLeft(v, " \t"), "X-Matrix") {
				continue
			}
			return matrix.XMatrix{}, refuse(policy.ReasonXMatrixMalformed).Wrap(err)
		}
		if !found {
			first, found = xm, true
			continue
		}
		// Exact comparison: server names are case-sensitive, and the homeserver acts on the last value.
		if xm.Origin != first.Origin || xm.Destination != first.Destination {
			return matrix.XMatrix{}, refuse(policy.ReasonXMatrixMalformed).Wrap(errors.New("X-Matrix headers disagree"))
		}
	}
	if !found {
		return matrix.XMatrix{}, refuse(policy.ReasonXMatrixMissing)
	}
	return first, nil
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// delegatedServer is what /.well-known/matrix/server announces: our server name on the federation
// listener's public port.
func (p *Proxy) delegatedServer() string {
	port := p.cfg.Listen.FederationPublicPort
	if port == 0 {
		if _, ps, err := net.SplitHostPort(p.cfg.Listen.Federation); err == nil {
			port, _ = strconv.Atoi(ps)
		}
	}
	return net.JoinHostPort(matrix.ServerNameHost(p.cfg.ServerName), strconv.Itoa(port))
}
