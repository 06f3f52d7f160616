package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/timstack/timstack/proxy/matrix"
)

// discovery resolves Matrix server names to the host and port serving their federation API (Matrix v1.11
// server discovery without SRV: explicit port, else /.well-known/matrix/server, else port 8448) and remembers
// delegations seen by the egress flow, so that the proxy knows which host speaks for which server.
type discovery struct {
	mu      sync.Mutex
	now     func() time.Time
	ttl     time.Duration
	max     int
	entries map[string]delegation // server host → delegate
	client  *http.Client          // through the egress transport
}

type delegation struct {
	host    string
	port    int
	expires time.Time
}

func newDiscovery(client *http.Client, now func() time.Time) *discovery {
	return &discovery{now: now, ttl: time.Hour, max: 50_000, entries: map[string]delegation{}, client: client}
}

// rememberDelegation records what a federated server's well-known announced.
func (d *discovery) rememberDelegation(server string, body []byte) {
	host, port, ok := delegationOf(body)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.entries) >= d.max {
		for k, e := range d.entries {
			if d.now().After(e.expires) || len(d.entries) >= d.max {
				delete(d.entries, k)
			}
		}
	}
	d.entries[strings.ToLower(server)] = delegation{host: host, port: port, expires: d.now().Add(d.ttl)}
}

// serverForHost names the server a host serves: the server that delegated to it, else the host itself.
func (d *discovery) serverForHost(host string, port int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for server, e := range d.entries {
		if e.host == host && e.port == port && d.now().Before(e.expires) {
			return server
		}
	}
	return host
}

// hostServes reports whether connecting to host:port is talking to server: the server itself, or its
// remembered delegate.
func (d *discovery) hostServes(host string, port int, server string) bool {
	server = strings.ToLower(server)
	if host == server {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[server]
	return ok && e.host == host && d.now().Before(e.expires)
}

// baseURL finds the federation base URL of a server name (for fetching its keys).
func (d *discovery) baseURL(ctx context.Context, serverName string) (string, error) {
	if !matrix.ValidServerName(serverName) {
		return "", fmt.Errorf("discovery: invalid server name %q", serverName)
	}
	host, port, err := net.SplitHostPort(serverName)
	if err == nil {
		return "https://" + net.JoinHostPort(host, port), nil
	}
	host = strings.ToLower(strings.Trim(serverName, "[]"))
	if net.ParseIP(host) != nil {
		return "https://" + net.JoinHostPort(host, "8448"), nil
	}
	d.mu.Lock()
	e, ok := d.entries[host]
	d.mu.Unlock()
	if ok && d.now().Before(e.expires) {
		return "https://" + net.JoinHostPort(e.host, strconv.Itoa(e.port)), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", err
	}
	resp, err := d.client.Do(req)
	if err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			d.rememberDelegation(host, body)
			if h, p, ok := delegationOf(body); ok {
				return "https://" + net.JoinHostPort(h, strconv.Itoa(p)), nil
			}
		}
	}
	return "https://" + net.JoinHostPort(host, "8448"), nil
}

// fetchKeys is the key ring's fetcher: GET /_matrix/key/v2/server of the origin, through our egress rules.
func (d *discovery) fetchKeys(ctx context.Context, serverName string) ([]byte, error) {
	base, err := d.baseURL(ctx, serverName)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_matrix/key/v2/server", nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch keys of %s: %w", serverName, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch keys of %s: status %d", serverName, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 256<<10))
}
