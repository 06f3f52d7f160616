package bench

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/forward"
)

// ProxyFixture is everything a `timstack proxy` process needs to start in front of one homeserver: test
// PKI, a signed federation list naming the server, the application-service registration and the
// configuration file that points at them.
type ProxyFixture struct {
	Dir        string
	ServerName string
	ConfigFile string
	// Registration is the application-service registration the homeserver must load (Synapse:
	// app_service_config_files); against the trivial upstream it is unused.
	Registration string
	// ClientAddr and InternalAddr are the client and internal listeners (host:port).
	ClientAddr   string
	InternalAddr string
	// DecisionLog is the decision-log file the proxy writes, as in production.
	DecisionLog string
}

// WriteProxyFixture writes a fixture into dir for a proxy with server name serverName in front of
// homeserverURL. The federation list holds serverName and one other Pro domain, signed by a fresh
// brainpool test CA that the configuration trusts (allow_test_trust); OCSP is off and the room jobs are
// off, so nothing but client traffic costs CPU. The listeners get free loopback ports.
func WriteProxyFixture(dir, serverName, homeserverURL string) (*ProxyFixture, error) {
	f := &ProxyFixture{Dir: dir, ServerName: serverName}
	now := time.Now()
	komp, err := certs.NewTestCA("bench KOMP-CA", certs.KeyBrainpoolP256r1, now.Add(-time.Hour), now.Add(48*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	signer, signerKey, err := komp.Issue(certs.IssueRequest{Profile: certs.IssueProfileFListSigner, CommonName: "VZD-FHIR-FList-Signer"})
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	tlsCA, err := certs.NewTestCA("bench TLS CA", certs.KeyP256, now.Add(-time.Hour), now.Add(48*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	tlsCert, tlsKey, err := tlsCA.Issue(certs.IssueRequest{Profile: certs.IssueProfileTLSServer, CommonName: serverName, DNSNames: []string{serverName}})
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	if err := certs.WriteCertAndKey(filepath.Join(dir, "tls"), tlsCert, tlsKey); err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	caPEM, caKey, err := forward.GenerateCA("bench proxy CA", 48*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	jws, err := certs.SignFederationList(signerKey, certs.AlgBP256R1, []*certs.Certificate{signer}, 1, []certs.FederationDomain{
		{Domain: serverName, TelematikID: "1-bench"},
		{Domain: "peer.bench.test", TelematikID: "1-peer"},
	})
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	f.ClientAddr, f.InternalAddr = addr(ports[0]), addr(ports[3])
	reg, err := appservice.NewRegistration(serverName, "http://"+f.InternalAddr)
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	regYAML, err := reg.YAML()
	if err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	f.Registration = filepath.Join(dir, "appservice.yaml")
	f.DecisionLog = filepath.Join(dir, "decisions.jsonl")
	files := map[string][]byte{
		"appservice.yaml":     regYAML,
		"trust/komp-ca.pem":   komp.Cert.EncodePEM(),
		"proxy-ca.pem":        caPEM,
		"proxy-ca.key":        caKey,
		"federation-list.jws": jws,
	}
	if err := os.MkdirAll(filepath.Join(dir, "flist-cache"), 0o755); err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("bench fixture: %w", err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, fmt.Errorf("bench fixture: %w", err)
		}
	}
	j := func(name string) string { return strconv.Quote(filepath.Join(dir, name)) }
	cfg := fmt.Sprintf(`# written by proxy/bench: a timstack proxy in front of %[2]s
server_name: %[1]s
variant: pro
listen:
  client: %[3]s
  federation: %[4]s
  federation_tls: {cert_file: %[7]s, key_file: %[8]s}
  forward: %[5]s
  internal: %[6]s
homeserver:
  url: %[2]q
  appservice_registration: %[9]s
forward:
  ca_cert_file: %[10]s
  ca_key_file: %[11]s
federation_list:
  source: file
  file: %[12]s
  trust_dir: %[13]s
  ocsp: "off"
  allow_test_trust: true
  cache_dir: %[14]s
  refresh_interval: 1h
room_jobs:
  enabled: false
log:
  level: warn
  decision_log: %[15]s
`, serverName, homeserverURL, addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3]),
		j("tls/cert.pem"), j("tls/key.pem"), j("appservice.yaml"), j("proxy-ca.pem"), j("proxy-ca.key"),
		j("federation-list.jws"), j("trust"), j("flist-cache"), strconv.Quote(f.DecisionLog))
	f.ConfigFile = filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(f.ConfigFile, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("bench fixture: %w", err)
	}
	return f, nil
}

// FreePort asks the kernel for a free loopback port. Another process may take it before it is bound; the
// bench runs on a machine where that is unlikely and a clash fails loudly at listen.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
