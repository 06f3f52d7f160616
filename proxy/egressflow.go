package proxy

// The outbound (egress) flow, top to bottom. The homeserver reaches the internet only through the forward
// listener (https_proxy); the forward proxy terminates the tunnel's TLS with a certificate of our proxy CA
// and hands each request here:
//
//  1. allow-listed hosts (push gateways, the SSO host) pass unchanged;
//  2. /.well-known/matrix/server may only be fetched from federated hosts; the delegation it announces is
//     remembered so that the delegated host counts as that server;
//  3. federation, key and media requests: the X-Matrix destination (or, for unauthenticated key requests,
//     the server the host belongs to) must be federated, and the host must be that server or its delegate;
//  4. everything else is 404;
//  5. the request leaves through the egress transport, which verifies the remote TLS certificate; the bytes
//     pass unmodified (the homeserver signed them).

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/forward"
	"github.com/timstack/timstack/proxy/matrix"
	"github.com/timstack/timstack/proxy/route"
)

func (p *Proxy) serveEgress(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, "egress", p.egressFlow)
}

func (p *Proxy) egressFlow(w http.ResponseWriter, r *http.Request) (string, error) {
	target, ok := forward.TargetFrom(r.Context())
	if !ok {
		return "", refuse(policy.ReasonEgressNotAllowed)
	}
	host := strings.ToLower(target.Host)

	// 1. allow-listed hosts
	if p.allowedEgressHost(host) {
		return "egress.allowed_host", p.forwardEgress(w, r, nil)
	}

	tgt, err := route.CheckTarget(r.Method, r.URL.RequestURI())
	if err != nil {
		return "", refuse(policy.ReasonAmbiguousRequest).Wrap(err)
	}
	path := tgt.Path

	// 2. well-known
	if path == "/.well-known/matrix/server" {
		if _, err := p.decide(r.Context(), "egress", "egress.wellknown", &policy.Input{
			Action: policy.ActionFederationOutbound, Origin: p.cfg.ServerName, Destination: host,
		}); err != nil {
			return "egress.wellknown", err
		}
		return "egress.wellknown", p.forwardEgress(w, r, func(status int, body []byte) {
			if status == http.StatusOK {
				p.discovery.rememberDelegation(host, body)
			}
		})
	}

	// 3. federation, keys, media
	if !(strings.HasPrefix(path, "/_matrix/federation/") || strings.HasPrefix(path, "/_matrix/key/") ||
		strings.HasPrefix(path, "/_matrix/media/")) {
		return "egress.other", refuse(policy.ReasonEgressNotAllowed)
	}
	destination := ""
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		xm, err := parseXMatrixHeaders(vals)
		if err != nil {
			return "egress.federation", err
		}
		if xm.Destination == "" {
			// Since Matrix v1.3 servers name the destination; without it the proxy cannot decide.
			return "egress.federation", refuse(policy.ReasonXMatrixMalformed)
		}
		destination = matrix.ServerNameHost(xm.Destination)
		if !strings.EqualFold(matrix.ServerNameHost(xm.Origin), matrix.ServerNameHost(p.cfg.ServerName)) {
			return "egress.federation", refuse(policy.ReasonXMatrixMalformed)
		}
	} else {
		destination = p.discovery.serverForHost(host, target.Port)
	}
	if _, err := p.decide(r.Context(), "egress", "egress.federation", &policy.Input{
		Action: policy.ActionFederationOutbound, Origin: p.cfg.ServerName, Destination: destination,
	}); err != nil {
		return "egress.federation", err
	}
	if !p.discovery.hostServes(host, target.Port, destination) {
		p.log.Info("egress host is not the destination or its delegate", "host", host, "destination", destination)
		return "egress.federation", refuse(policy.ReasonDestinationNotFederated)
	}
	return "egress.federation", p.forwardEgress(w, r, nil)
}

// allowedEgressHost: push gateways and the SSO host need no federation check.
func (p *Proxy) allowedEgressHost(host string) bool {
	for _, h := range p.cfg.Forward.AllowHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// forwardEgress sends the request on through the egress transport. inspect, when set, sees the buffered
// answer (well-known delegation); everything else streams.
func (p *Proxy) forwardEgress(w http.ResponseWriter, r *http.Request, inspect func(status int, body []byte)) error {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	resp, err := p.egress.RoundTrip(out)
	if err != nil {
		p.metrics.upstreamErrors.WithLabelValues("remote", "roundtrip").Inc()
		return refuse(policy.ReasonUpstreamUnavailable).Wrap(err)
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	if inspect != nil {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return refuse(policy.ReasonUpstreamUnavailable).Wrap(err)
		}
		inspect(resp.StatusCode, body)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return nil
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return nil
}

// delegationOf reads m.server from a well-known answer.
func delegationOf(body []byte) (host string, port int, ok bool) {
	var wk struct {
		Server string `json:"m.server"`
	}
	if json.Unmarshal(body, &wk) != nil || !matrix.ValidServerName(wk.Server) {
		return "", 0, false
	}
	h, ps, err := net.SplitHostPort(wk.Server)
	if err != nil {
		return strings.ToLower(strings.Trim(wk.Server, "[]")), 8448, true
	}
	port, err = strconv.Atoi(ps)
	if err != nil {
		return "", 0, false
	}
	return strings.ToLower(h), port, true
}
