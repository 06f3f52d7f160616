// Package proxy will own the Messenger-Proxy: client-server and inbound-federation reverse proxies, the
// egress forward proxy, X-Matrix verification and the federation-list holder.
//
// It is empty until the proxy issue lands; the folder exists so the layout holds from the start.
package proxy
