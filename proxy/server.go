package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/policy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/dirfacts"
	"github.com/timstack/timstack/proxy/flist"
	"github.com/timstack/timstack/proxy/forward"
	"github.com/timstack/timstack/proxy/h1"
	"github.com/timstack/timstack/proxy/matrix"
	"github.com/timstack/timstack/proxy/mxerr"
	"github.com/timstack/timstack/proxy/route"
)

// Deps are what New needs beyond the configuration; zero values get production defaults.
type Deps struct {
	Log *slog.Logger
	// DecisionLog receives one JSON line per decision, each written at once (nil: per cfg.Log.DecisionLog).
	DecisionLog io.Writer
	Now         func() time.Time
	// ListSource overrides the configured federation-list source (tests).
	ListSource flist.Source
	// ListVerifier overrides how the list is verified (tests with a fixed clock); nil builds it from cfg.
	ListVerifier flist.Verifier
}

// New builds a ready proxy from a validated configuration: policy prepared, federation list loaded from
// its cache (and verified again), application-service registration read, proxy CA loaded.
func New(ctx context.Context, cfg *Config, deps Deps) (*Proxy, error) {
	p := &Proxy{cfg: cfg, log: deps.Log, now: deps.Now}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	delay := decisionLogDelay
	if cfg.Log.DecisionLogSync {
		delay = 0
	}
	switch {
	case deps.DecisionLog != nil:
		p.decisions = &decisionLog{w: deps.DecisionLog}
	case cfg.Log.DecisionLog == "-":
		p.decisions = &decisionLog{w: os.Stdout, delay: delay}
	case cfg.Log.DecisionLog != "":
		f, err := os.OpenFile(cfg.Log.DecisionLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log.decision_log: %w", err)
		}
		p.decisions, p.decisionFile = &decisionLog{w: f, delay: delay}, f
	}

	var err error
	if p.policy, err = policy.New(cfg.Policy, p.log.With("component", "policy")); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p.clientRoutes, p.fedRoutes = route.ClientTable(), route.FederationTable()

	// Upstream: the homeserver.
	if p.hsURL, err = url.Parse(cfg.Homeserver.URL); err != nil {
		return nil, fmt.Errorf("homeserver.url: %w", err)
	}
	upstreamDialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	p.upstream = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.hsURL)
			pr.Out.URL.Path, pr.Out.URL.RawPath = pr.In.URL.Path, pr.In.URL.RawPath
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			useBufferedBody(pr)
		},
		// Plain-HTTP requests with a body in memory (or none), almost all of them, are synchronous round
		// trips on the handler's goroutine (proxy/h1); TLS to the homeserver and streamed uploads use Go's
		// transport.
		Transport: &h1.Transport{
			Dial:        upstreamDialer.DialContext,
			MaxIdle:     1024,
			IdleTimeout: 90 * time.Second,
			Fallback: &http.Transport{
				Proxy:                 nil,
				DialContext:           upstreamDialer.DialContext,
				MaxIdleConns:          1024,
				MaxIdleConnsPerHost:   1024,
				IdleConnTimeout:       90 * time.Second,
				ResponseHeaderTimeout: 0, // per request via context (long-polls)
				// Forward the client's Accept-Encoding as is. Otherwise Go's transport asks for gzip on
				// every request and unpacks the answer again: the homeserver compresses what no client
				// asked to be compressed (Synapse on its one Python core) and the proxy decompresses it.
				DisableCompression: true,
			},
		},
		BufferPool: &p.buffers,
		// FlushInterval stays 0: ReverseProxy still flushes at once whatever has no length (chunked answers,
		// event streams), and everything else goes out with its headers in one write when the handler
		// returns. -1 flushed the headers by themselves through a timer goroutine per answer: a second
		// write syscall and a goroutine for every request, for answers that arrive whole anyway.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
				// The client went away (a sync given up, an app closed); the homeserver did nothing wrong
				// and nobody reads an answer. 499 as nginx and Oathkeeper log it.
				p.log.Debug("client went away before the homeserver answered", "request_id", r.Context().Value(requestIDKey))
				w.WriteHeader(499)
				return
			}
			p.metrics.upstreamErrors.WithLabelValues("homeserver", "roundtrip").Inc()
			p.log.Warn("homeserver unreachable", "request_id", r.Context().Value(requestIDKey), "err", err)
			mxerr.Write(w, refuse(policy.ReasonUpstreamUnavailable))
		},
	}

	// Application service.
	if p.asReg, err = appservice.LoadRegistration(cfg.Homeserver.AppServiceRegistration); err != nil {
		return nil, fmt.Errorf("homeserver.appservice_registration: %w", err)
	}
	if p.as, err = appservice.NewClient(appservice.ClientConfig{
		HomeserverURL: cfg.Homeserver.URL, ASToken: p.asReg.ASToken, ServerName: cfg.ServerName,
		AppserviceID: p.asReg.ID, Timeout: 10 * time.Second,
	}); err != nil {
		return nil, fmt.Errorf("homeserver: %w", err)
	}
	if p.perms, err = appservice.NewPermissionStore(p.as, cfg.Variant, cfg.Permissions.Default.Policy(cfg.ServerName),
		cfg.Permissions.CacheTTL, 100_000, p.now, p.log.With("component", "permissions")); err != nil {
		return nil, fmt.Errorf("permissions: %w", err)
	}
	if p.rooms, err = appservice.NewRoomIndex(appservice.IndexConfig{HSToken: p.asReg.HSToken}, p.as, p.log.With("component", "rooms")); err != nil {
		return nil, fmt.Errorf("homeserver.appservice_registration: %w", err)
	}
	p.tokens = newTokenCache(cfg.Limits.TokenCacheSize, cfg.Limits.TokenCacheTTL, p.now)
	if err := p.newSSO(cfg); err != nil {
		return nil, err
	}

	// Egress: forward proxy with TLS interception, and the transport to remote servers.
	caPEM, err := os.ReadFile(cfg.Forward.CACertFile)
	if err != nil {
		return nil, fmt.Errorf("forward.ca_cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.Forward.CAKeyFile)
	if err != nil {
		return nil, fmt.Errorf("forward.ca_key_file: %w", err)
	}
	ca, err := forward.LoadCA(caPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	var roots *x509.CertPool
	if len(cfg.Forward.RootCAFiles) > 0 {
		roots = x509.NewCertPool()
		for _, f := range cfg.Forward.RootCAFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("forward.root_ca_files: %w", err)
			}
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("forward.root_ca_files: %s holds no PEM certificate", f)
			}
		}
	}
	if p.egress, err = forward.NewEgress(forward.EgressConfig{
		Resolve: cfg.Discovery.Resolve, RootCAs: roots, Timeout: cfg.Forward.Timeout,
	}, p.log.With("component", "egress")); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	p.forward = forward.New(forward.Config{}, ca, http.HandlerFunc(p.serveEgress), p.log.With("component", "forward"))
	p.discovery = newDiscovery(&http.Client{Transport: p.egress, Timeout: cfg.Forward.Timeout}, p.now)
	p.keys = matrix.NewKeyRing(p.discovery.fetchKeys, p.now, p.log.With("component", "keyring"))

	if cfg.DirectoryFacts.Enabled() {
		if p.dirfacts, err = dirfacts.New(cfg.DirectoryFacts, nil, p.log.With("component", "directory_facts"), p.now); err != nil {
			return nil, fmt.Errorf("directory_facts: %w", err)
		}
	}

	// Federation list.
	src := deps.ListSource
	if src == nil {
		if src, err = listSource(cfg); err != nil {
			return nil, err
		}
	}
	verify := deps.ListVerifier
	if verify == nil {
		if verify, err = listVerifier(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if p.flist, err = flist.New(cfg.FederationList.Keeper, src, verify, p.log.With("component", "federation_list"), p.now); err != nil {
		return nil, fmt.Errorf("federation_list: %w", err)
	}
	p.metrics = newMetrics(func() float64 { return p.flist.Age().Seconds() }, func() float64 { return float64(p.flist.Version()) })
	p.flist.Subscribe(p.onListChange)
	p.onListChange(p.flist.Snapshot())
	return p, nil
}

// onListChange hands the verified list (or its absence) to the policy as data.
func (p *Proxy) onListChange(s flist.Snapshot) {
	f := policy.Federation{Version: s.Version, Status: s.Status, Domains: map[string]policy.Domain{}}
	if s.List != nil {
		for _, d := range s.List.Domains() {
			f.Domains[d.Domain] = policy.Domain{TelematikID: d.TelematikID, IsInsurance: d.IsInsurance, IK: d.IK}
		}
	}
	p.policy.SetFederation(f)
	p.peerList.Store(s.List)
	p.listFresh.Store(s.Status == "fresh")
	if s.Status != "fresh" {
		p.log.Error("federation blocked: federation list not fresh", "status", s.Status, "reason", s.Reason)
	}
}

// Handlers exposes the four surfaces for tests and for embedding (timstack up).
func (p *Proxy) ClientHandler() http.Handler     { return http.HandlerFunc(p.serveClient) }
func (p *Proxy) FederationHandler() http.Handler { return http.HandlerFunc(p.serveFederation) }
func (p *Proxy) ForwardHandler() http.Handler    { return p.forward }

// InternalHandler serves health, readiness, metrics and the application-service API the homeserver pushes
// transactions to.
func (p *Proxy) InternalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = p.writeJSON(w, 200, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Ready(); err != nil {
			_ = p.writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		_ = p.writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.metrics.registry, promhttp.HandlerOpts{}))
	as := p.rooms.Handler()
	mux.Handle("/_matrix/app/", as)
	mux.Handle("/transactions/", as)
	mux.Handle("/users/", as)
	mux.Handle("/rooms/", as)
	return mux
}

// Ready is nil when the proxy can decide: a fresh verified list and a loaded policy.
func (p *Proxy) Ready() error {
	s := p.flist.Snapshot()
	if s.Status != "fresh" {
		return fmt.Errorf("federation list %s: %s", s.Status, s.Reason)
	}
	return p.policy.Ready()
}

// Run serves the four listeners and the background loops until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fedCert, err := tls.LoadX509KeyPair(p.cfg.Listen.FederationTLS.CertFile, p.cfg.Listen.FederationTLS.KeyFile)
	if err != nil {
		return fmt.Errorf("listen.federation_tls: %w", err)
	}
	servers := []struct {
		name, addr string
		h          http.Handler
		tls        *tls.Config
	}{
		{"client", p.cfg.Listen.Client, p.ClientHandler(), nil},
		{"federation", p.cfg.Listen.Federation, p.FederationHandler(), &tls.Config{Certificates: []tls.Certificate{fedCert}, MinVersion: tls.VersionTLS12}},
		{"forward", p.cfg.Listen.Forward, p.ForwardHandler(), nil},
		{"internal", p.cfg.Listen.Internal, p.InternalHandler(), nil},
	}
	if p.cfg.Listen.ClientTLS.enabled() {
		c, err := tls.LoadX509KeyPair(p.cfg.Listen.ClientTLS.CertFile, p.cfg.Listen.ClientTLS.KeyFile)
		if err != nil {
			return fmt.Errorf("listen.client_tls: %w", err)
		}
		servers[0].tls = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(servers)+4)
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("listen.%s: %w", s.name, err)
		}
		if s.tls != nil {
			ln = tls.NewListener(ln, s.tls)
		}
		h := s.h
		var connContext func(context.Context, net.Conn) context.Context
		if s.name == "client" || s.name == "federation" {
			// After TLS, so the guard reads plaintext: requests with more than one framing never reach
			// net/http (framing.go).
			ln = wrapListener(ln)
			h, connContext = restoreTLS(h), framingConnContext
		}
		srv := &http.Server{
			Handler:           h,
			ConnContext:       connContext,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		p.log.Info("listening", "surface", s.name, "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", s.name, err)
			}
		}()
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); p.flist.Run(ctx) }()
	go func() { defer wg.Done(); p.policy.Run(ctx) }()
	if p.cfg.RoomJobs.Enabled {
		jobs, err := appservice.NewJobs(appservice.JobsConfig{
			Interval: p.cfg.RoomJobs.Interval, OrphanedAfter: p.cfg.RoomJobs.OrphanedAfter,
			InsuredOnlyAfter: p.cfg.RoomJobs.InsuredOnlyAfter, Variant: p.cfg.Variant,
			ShortThresholds: p.cfg.RoomJobs.ShortThresholds,
		}, p.rooms, p.as, p.isInsured, p.log.With("component", "room_jobs"))
		if err != nil {
			return fmt.Errorf("room_jobs: %w", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = jobs.Run(ctx) }()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		cancel()
	}
	wg.Wait()
	p.decisions.close(p.decisionFile)
	return runErr
}

// isInsured: a user is insured iff their domain has isInsurance on the federation list (tim-proxy-spec §3.11).
func (p *Proxy) isInsured(domain string) bool {
	d, ok := p.flist.Snapshot().List.Lookup(domain)
	return ok && d.IsInsurance
}

// listSource builds the configured federation-list source.
func listSource(cfg *Config) (flist.Source, error) {
	fl := cfg.FederationList
	hc := &http.Client{Timeout: fl.Keeper.FetchTimeout}
	switch fl.Source {
	case "file":
		return &flist.FileSource{Path: fl.File}, nil
	case "regservice":
		return &flist.RegServiceSource{URL: fl.URL, HTTP: hc}, nil
	case "provider_api":
		secret := fl.ClientSecret
		if fl.ClientSecretFile != "" {
			b, err := os.ReadFile(fl.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("federation_list.client_secret_file: %w", err)
			}
			secret = string(b)
		}
		return &flist.ProviderAPISource{BaseURL: fl.URL, ClientID: fl.ClientID, ClientSecret: secret, SigAlg: fl.SigAlg, HTTP: hc}, nil
	}
	return nil, fmt.Errorf("federation_list.source: unknown %q", fl.Source)
}

// listVerifier wraps certs.VerifyFederationList with the configured trust and OCSP policy.
func listVerifier(ctx context.Context, cfg *Config) (flist.Verifier, error) {
	fl := cfg.FederationList
	trust := certs.NewTrustStore()
	if fl.TrustDir != "" {
		if err := trust.LoadPEMDir(fl.TrustDir); err != nil {
			return nil, fmt.Errorf("federation_list.trust_dir: %w", err)
		}
	}
	if fl.TSL != "" {
		if err := trust.AddTSLFile(fl.TSL, fl.TSLAnchor, time.Now(), time.Now(), fl.TSLAllowStale); err != nil {
			return nil, fmt.Errorf("federation_list.tsl: %w", err)
		}
	}
	if trust.HasTestOnlyAnchor() && !fl.AllowTestTrust {
		return nil, errors.New("federation_list: the trust store holds TEST-ONLY anchors; set allow_test_trust only for test deployments")
	}
	var rc certs.RevocationChecker
	if fl.OCSP == "require" {
		oc := &certs.OCSPChecker{Trust: trust, Policy: certs.OCSPRequire, Timeout: 10 * time.Second}
		if u := fl.OCSPURLOverride; u != "" {
			oc.URLOverride = func(_, _ *certs.Certificate) string { return u }
		}
		rc = oc
	}
	return func(ctx context.Context, jws []byte, at time.Time) (*certs.FederationList, error) {
		return certs.VerifyFederationList(ctx, jws, certs.FederationListOptions{Trust: trust, At: at, Revocation: rc})
	}, nil
}

// RefreshFederationList asks the list source once now (operators' reload, tests).
func (p *Proxy) RefreshFederationList(ctx context.Context) error { return p.flist.Refresh(ctx) }
