// Package forward is the Messenger-Proxy's egress forward proxy (tim-proxy-spec.md §3.1, §3.3): the listener
// the homeserver's https_proxy points at, and the transport that carries allowed requests out.
//
// Flow: Synapse sends `CONNECT hs2.example:8448`; [Proxy] validates the authority, answers 200, terminates
// TLS inside the tunnel with a leaf for that host minted by [CA] (trusted by Synapse through
// federation_custom_ca_list), and serves HTTP/1.1 from the tunnel. Each request reaches the egress handler
// (written elsewhere: X-Matrix destination against the federation list, policy) as
// https://<CONNECT authority><raw request URI> with the tunnel's [Target] in the context ([TargetFrom]).
// Allowed requests go out through [Egress], whose dialer refuses private and special-purpose addresses and
// whose TLS verifies the remote for the original host name. Nothing here decides; the handler does.
package forward
