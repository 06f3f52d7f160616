package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/timstack/timstack/authn/idp"
	"github.com/timstack/timstack/authn/matrixopenid"
	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/cmd/timstack/wiring"
	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/generate"
	"github.com/timstack/timstack/directory/store"
)

func runDirectory(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return runDirectoryServe(args[1:], stdout, stderr)
		case "import":
			return runDirectoryImport(args[1:], stdout, stderr)
		case "token":
			return runDirectoryToken(args[1:], stdout, stderr)
		case "client":
			return runDirectoryClient(args[1:], stdout, stderr)
		case "generate":
			return runDirectoryGenerate(args[1:], stdout, stderr)
		case "bench":
			return runDirectoryBench(args[1:], stdout, stderr)
		}
	}
	return usageError("usage: timstack directory serve|import|token|client|generate|bench [flags]")
}

const defaultDirectoryDB = "sqlite:data/directory.db"

func openStore(ctx context.Context, dsn string) (store.Store, error) {
	if strings.HasPrefix(dsn, "sqlite:") {
		if err := os.MkdirAll(filepath.Dir(strings.TrimPrefix(dsn, "sqlite:")), 0o755); err != nil {
			return nil, err
		}
	}
	return store.Open(ctx, dsn)
}

func notFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// listSigners loads the federation-list signers: DIR/cert.pem + DIR/key.pem each; the algorithm follows the
// key (brainpool → BP256R1, P-256 → ES256).
func listSigners(dirs []string) ([]directory.ListSigner, error) {
	var out []directory.ListSigner
	for _, dir := range dirs {
		kp, err := loadKeyPair(dir)
		if err != nil {
			return nil, fmt.Errorf("list signer %s: %w", dir, err)
		}
		alg := certs.AlgBP256R1
		if kp.Cert.Curve() == "P-256" {
			alg = certs.AlgES256
		}
		out = append(out, directory.ListSigner{Alg: alg, Signer: kp.Key, Chain: []*certs.Certificate{kp.Cert}})
	}
	return out, nil
}

// runDirectoryServe implements `timstack directory serve --listen ADDR --db DSN`.
func runDirectoryServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("directory serve", stderr)
	listen := fs.String("listen", "127.0.0.1:8480", "listen address")
	dsn := fs.String("db", defaultDirectoryDB, "sqlite:PATH or postgres://…")
	base := fs.String("base-url", "", "public base URL (default http://LISTEN)")
	var signerDirs, resolve stringList
	fs.Var(&signerDirs, "list-signer", "federation-list signer directory with cert.pem and key.pem (repeatable: one brainpool, one P-256)")
	fs.Var(&resolve, "resolve", "TEST ONLY: server-name=base-URL for Matrix OpenID userinfo calls (repeatable), instead of .well-known")
	var o ownerAuthOptions
	fs.StringVar(&o.regCADir, "regservice-ca-dir", "", "CA certificates (PEM) the C.FD.SIG/oid_tim signers of RegService-OpenID-Tokens chain to; without it or --regservice-tsl, /owner-authenticate refuses bearer tokens")
	fs.StringVar(&o.regTSL, "regservice-tsl", "", "TSL file whose CAs anchor RegService-token signers (needs --regservice-tsl-anchor)")
	fs.StringVar(&o.regTSLAnchor, "regservice-tsl-anchor", "", "directory with the TSL signer's CA certificates")
	fs.StringVar(&o.regOCSP, "regservice-ocsp", string(certs.OCSPRequire), "OCSP policy for RegService-token signers: require (fail closed) or off")
	fs.StringVar(&o.idpIssuer, "idp-issuer", "", "gematik IDP-Dienst issuer for /owner-authenticate without a header; empty: that form answers 401")
	fs.StringVar(&o.idpClientID, "idp-client-id", "", "client_id registered with the IDP")
	fs.StringVar(&o.idpRedirect, "idp-redirect-uri", "", "redirect_uri registered with the IDP (default BASE-URL/signin-gematik-idp-dienst)")
	fs.StringVar(&o.idpCADir, "idp-ca-dir", "", "component CA certificates (PEM) the IDP's discovery and signing certificates chain to")
	fs.BoolVar(&o.idpTest, "idp-test", false, "TEST ONLY: also trust the built-in gematik test CAs, allow http/loopback issuers, no OCSP for the IDP signers")
	if _, err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	if len(signerDirs) == 0 {
		return usageError("directory serve: at least one --list-signer DIR is required (timstack pki issue --profile flist-signer)")
	}
	signers, err := listSigners(signerDirs)
	if err != nil {
		return failure("directory serve: %v", err)
	}
	resolver, err := parseResolver(resolve)
	if err != nil {
		return usageError("directory serve: %v", err)
	}
	ctx := context.Background()
	st, err := openStore(ctx, *dsn)
	if err != nil {
		return failure("directory serve: %v", err)
	}
	defer st.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return failure("directory serve: %v", err)
	}
	if *base == "" {
		*base = "http://" + ln.Addr().String()
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	// The validator's federation gate asks the directory's own list; the server is built after the
	// validator, and requests only arrive once both exist.
	var fed *directory.Federation
	validator, err := matrixopenid.NewValidator(matrixopenid.Config{
		Federated: func(serverName string) bool { return fed != nil && fed.Federated(serverName) },
		AllowHost: func(serverName, host string) bool { return fed != nil && fed.AllowsHost(serverName, host) },
		Resolve:   resolver,
		Logger:    log,
	})
	if err != nil {
		return failure("directory serve: %v", err)
	}
	deps := directory.Deps{
		Store: st, NotFound: notFound, ListSigners: signers, Log: log, Version: version(),
		OpenID: wiring.DirectoryOpenID(validator),
	}
	if err := o.apply(&deps, *base, log); err != nil {
		return usageError("directory serve: %v", err)
	}
	srv, err := directory.New(ctx, directory.Config{BaseURL: *base}, deps)
	if err != nil {
		return failure("directory serve: %v", err)
	}
	fed = srv.Federation()
	fmt.Fprintf(stdout, "directory listening on %s (base URL %s, db %s)\n", ln.Addr(), *base, redactDSN(*dsn))
	return serveUntilSignal(&http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}, ln)
}

// ownerAuthOptions are the flags of /owner-authenticate: the RegService trust and the IDP login.
type ownerAuthOptions struct {
	regCADir, regTSL, regTSLAnchor, regOCSP string
	idpIssuer, idpClientID, idpRedirect     string
	idpCADir                                string
	idpTest                                 bool
}

func (o ownerAuthOptions) apply(deps *directory.Deps, base string, log *slog.Logger) error {
	if o.regCADir != "" || o.regTSL != "" {
		trust, err := loadTrust(o.regCADir, o.regTSL, o.regTSLAnchor, time.Now(), false)
		if err != nil {
			return fmt.Errorf("RegService trust: %w", err)
		}
		deps.RegServiceTrust = trust
		switch certs.OCSPPolicy(o.regOCSP) {
		case certs.OCSPRequire:
			deps.RegServiceRevocation = &certs.OCSPChecker{Trust: trust, Policy: certs.OCSPRequire, Timeout: certs.OCSPDefaultTimeout}
		case certs.OCSPOff:
			log.Warn("RegService-token signers are not checked for revocation (--regservice-ocsp off)")
		default:
			return fmt.Errorf("--regservice-ocsp must be require or off")
		}
	}
	if o.idpIssuer == "" {
		return nil
	}
	if o.idpClientID == "" {
		return fmt.Errorf("--idp-issuer needs --idp-client-id")
	}
	redirect := o.idpRedirect
	if redirect == "" {
		redirect = strings.TrimRight(base, "/") + "/signin-gematik-idp-dienst"
	}
	var trust *certs.TrustStore
	var err error
	if o.idpTest {
		trust, err = idpTrust(o.idpCADir)
	} else {
		if o.idpCADir == "" {
			return fmt.Errorf("--idp-issuer needs --idp-ca-dir (or --idp-test)")
		}
		trust = certs.NewTrustStore()
		err = trust.LoadPEMDir(o.idpCADir)
	}
	if err != nil {
		return fmt.Errorf("IDP trust: %w", err)
	}
	cfg := idp.Config{Issuer: o.idpIssuer, ClientID: o.idpClientID, RedirectURI: redirect, Trust: trust, Production: !o.idpTest, Logger: log}
	if !o.idpTest {
		cfg.Revocation = &certs.OCSPChecker{Trust: trust, Policy: certs.OCSPRequire, Timeout: certs.OCSPDefaultTimeout}
	}
	rp, err := idp.New(cfg)
	if err != nil {
		return fmt.Errorf("IDP: %w", err)
	}
	deps.OwnerLogin = wiring.DirectoryOwnerLogin(rp)
	return nil
}

func parseResolver(entries []string) (func(context.Context, string) (string, error), error) {
	if len(entries) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, e := range entries {
		name, url, ok := strings.Cut(e, "=")
		if !ok || name == "" || url == "" {
			return nil, fmt.Errorf("--resolve %q: want server-name=base-URL", e)
		}
		m[strings.ToLower(name)] = url
	}
	return func(_ context.Context, serverName string) (string, error) {
		if u, ok := m[strings.ToLower(serverName)]; ok {
			return u, nil
		}
		return "", fmt.Errorf("server name %q not in the resolver map", serverName)
	}, nil
}

func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 && strings.Contains(dsn[:i], "://") {
		return dsn[:strings.Index(dsn, "://")+3] + "…" + dsn[i:]
	}
	return dsn
}

// runDirectoryToken implements `timstack directory token --db … --kind search|fdv|owner|provider --sub …`.
func runDirectoryToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("directory token", stderr)
	dsn := fs.String("db", defaultDirectoryDB, "sqlite:PATH or postgres://… (the signing key lives with the data)")
	base := fs.String("base-url", "http://127.0.0.1:8480", "the directory's public base URL (token audience)")
	kind := fs.String("kind", "", "search, fdv, owner or provider")
	sub := fs.String("sub", "", "subject: an MXID (search/fdv), a client id (provider), an owner id")
	telematikID := fs.String("telematik-id", "", "owner tokens: the Telematik-ID the owner may write")
	professionOID := fs.String("profession-oid", "", "owner tokens: the owner's profession OID")
	if _, err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	k := directory.TokenKind(*kind)
	switch k {
	case directory.TokenSearch, directory.TokenFdV, directory.TokenOwner, directory.TokenProvider:
	default:
		return usageError("directory token: --kind must be search, fdv, owner or provider")
	}
	if *sub == "" {
		return usageError("directory token: --sub is required")
	}
	if k == directory.TokenOwner && *telematikID == "" {
		return usageError("directory token: owner tokens need --telematik-id")
	}
	ctx := context.Background()
	st, err := openStore(ctx, *dsn)
	if err != nil {
		return failure("directory token: %v", err)
	}
	defer st.Close()
	key, err := directory.LoadOrCreateTokenKey(ctx, st, notFound)
	if err != nil {
		return failure("directory token: %v", err)
	}
	tokens, err := directory.NewTokens(*base, key, nil)
	if err != nil {
		return failure("directory token: %v", err)
	}
	claims := directory.Claims{TelematikID: *telematikID, ProfessionOID: *professionOID}
	if k == directory.TokenProvider {
		claims.ClientID = *sub
	}
	tok, _, err := tokens.Issue(k, *sub, claims)
	if err != nil {
		return failure("directory token: %v", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// runDirectoryClient implements `timstack directory client --db … --id ID`: registers (or rotates) a
// registration service for the client-credentials step and prints its secret once.
func runDirectoryClient(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("directory client", stderr)
	dsn := fs.String("db", defaultDirectoryDB, "sqlite:PATH or postgres://…")
	id := fs.String("id", "", "client id of the registration service")
	if _, err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	if *id == "" {
		return usageError("directory client: --id is required")
	}
	ctx := context.Background()
	st, err := openStore(ctx, *dsn)
	if err != nil {
		return failure("directory client: %v", err)
	}
	defer st.Close()
	secret, err := directory.KVClients{KV: st}.Register(ctx, *id)
	if err != nil {
		return failure("directory client: %v", err)
	}
	return writeJSON(stdout, map[string]string{"client_id": *id, "client_secret": secret})
}

// runDirectoryImport implements `timstack directory import --db … FILE…`: FHIR Bundles (JSON) or NDJSON.
func runDirectoryImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("directory import", stderr)
	dsn := fs.String("db", defaultDirectoryDB, "sqlite:PATH or postgres://…")
	legacy := fs.Bool("legacy", false, "accept resources without an Origin meta.tag (gematik's recorded TU data)")
	batchSize := fs.Int("batch", 1000, "resources per transaction")
	skip := fs.Int("skip", 0, "skip this many resources first (resume an interrupted import; see --progress-file)")
	progressFile := fs.String("progress-file", "", "after every committed batch, write the number of resources done so far here")
	bulk := fs.Bool("bulk", false, "initial load into an EMPTY PostgreSQL store: drop the value indexes, load, rebuild them (about 2x faster; the directory must not serve meanwhile; resumable with --skip)")
	cpuProfile := fs.String("cpu-profile", "", "write a Go CPU profile of the import to this file (go tool pprof)")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(files) == 0 {
		return usageError("directory import: at least one FILE is required")
	}
	ctx := context.Background()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return failure("directory import: %v", err)
		}
		defer stopProfile()
	}
	// Parsing and indexing allocate a lot of short-lived garbage; collecting it at 4x the live heap
	// instead of 2x took 11% off the load phase of a tenth of the synthetic data set (the live heap is a
	// few batches, tens of MB).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	st, err := openStore(ctx, *dsn)
	if err != nil {
		return failure("directory import: %v", err)
	}
	defer st.Close()
	type bulkLoader interface {
		BeginBulkLoad(context.Context) error
		EndBulkLoad(context.Context) error
	}
	var bl bulkLoader
	if *bulk {
		var ok bool
		if bl, ok = st.(bulkLoader); !ok {
			return usageError("directory import: --bulk needs a PostgreSQL store")
		}
		if err := bl.BeginBulkLoad(ctx); err != nil {
			return failure("directory import: --bulk: %v", err)
		}
	}
	w := &directory.Writer{Store: st, Legacy: *legacy}
	progress := newProgress(stderr)
	total := 0
	start := time.Now()
	toSkip := *skip
	for _, f := range files {
		n, err := importFile(ctx, w, f, *batchSize, &toSkip, func(done int) {
			progress.update(total + done)
			if *progressFile != "" {
				// Written after the batch committed, so a resumed import never skips uncommitted data.
				_ = os.WriteFile(*progressFile, []byte(strconv.Itoa(*skip+total+done)), 0o644)
			}
		})
		total += n
		if err != nil {
			progress.done()
			return failure("directory import: %s: %v", f, err)
		}
	}
	progress.done()
	loaded := time.Since(start)
	phases := map[string]float64{"load": round2(loaded.Seconds())}
	if bl != nil {
		fmt.Fprintln(stderr, "rebuilding the value indexes (bulk load)")
		var err error
		if tl, ok := bl.(interface {
			EndBulkLoadTimed(context.Context, func(string, time.Duration)) error
		}); ok {
			err = tl.EndBulkLoadTimed(ctx, func(phase string, d time.Duration) { phases[phase] = round2(d.Seconds()) })
		} else {
			err = bl.EndBulkLoad(ctx)
		}
		if err != nil {
			return failure("directory import: --bulk: rebuild indexes: %v", err)
		}
	}
	// Fresh planner statistics after a bulk load: without them SQLite in particular starts chained
	// searches from the least selective condition. EndBulkLoad has just analysed.
	if a, ok := st.(interface{ Analyze(context.Context) error }); ok && bl == nil {
		if err := a.Analyze(ctx); err != nil {
			return failure("directory import: analyze: %v", err)
		}
	}
	secs := time.Since(start).Seconds()
	return writeJSON(stdout, map[string]any{"imported": total, "seconds": round2(secs), "perSecond": round2(float64(total) / max(secs, 1e-9)), "phaseSeconds": phases})
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// importFile reads a file of FHIR resources and writes them in batches: NDJSON (one resource or one
// Bundle per line, streamed, so multi-gigabyte generated files need no memory) or one pretty-printed Bundle.
func importFile(ctx context.Context, w *directory.Writer, path string, batchSize int, skip *int, progress func(int)) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var batch [][]byte
	n := 0 // resources handed to the pipeline
	// The next batch is parsed and indexed while the previous one is stored; progress (and the resume
	// point) follows the committed batches.
	var committed atomic.Int64
	pipe := w.NewPipeline(ctx, func(done int) {
		committed.Store(int64(done))
		progress(done)
	})
	defer pipe.Close() // stops the storing goroutine on every early return
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := pipe.Add(batch); err != nil {
			return fmt.Errorf("after %d resources: %w", committed.Load(), err)
		}
		n += len(batch)
		batch = nil // the pipeline may still hold the previous slice
		return nil
	}
	finish := func() (int, error) {
		if err := flush(); err != nil {
			return int(committed.Load()), err
		}
		if err := pipe.Close(); err != nil {
			return int(committed.Load()), err
		}
		return n, nil
	}
	var addDocs func(docs [][]byte) error
	add := func(doc []byte) error {
		if !mayBeBundle(doc) {
			// A resource: PrepareBatch parses it (and refuses it if it is not JSON). Decoding it here just
			// to read resourceType was a tenth of the import's CPU.
			return addDocs([][]byte{doc})
		}
		var head struct {
			ResourceType string `json:"resourceType"`
			Entry        []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(doc, &head); err != nil {
			return fmt.Errorf("resource %d: not JSON: %w", n+len(batch)+1, err)
		}
		docs := [][]byte{doc}
		if head.ResourceType == "Bundle" {
			docs = docs[:0]
			for _, e := range head.Entry {
				docs = append(docs, []byte(e.Resource))
			}
		}
		return addDocs(docs)
	}
	addDocs = func(docs [][]byte) error {
		for _, d := range docs {
			if *skip > 0 {
				*skip--
				continue
			}
			batch = append(batch, d)
			if len(batch) >= batchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			trimmed := bytes.TrimSpace(line)
			if lineNo == 1 && !json.Valid(trimmed) {
				// Not NDJSON: one (pretty-printed) document.
				rest, rerr := io.ReadAll(br)
				if rerr != nil {
					return n, rerr
				}
				if err := add(append(line, rest...)); err != nil {
					return int(committed.Load()), err
				}
				return finish()
			}
			if err := add(append([]byte(nil), trimmed...)); err != nil {
				return int(committed.Load()), fmt.Errorf("line %d: %w", lineNo, err)
			}
		}
		if err == io.EOF {
			return finish()
		}
		if err != nil {
			return int(committed.Load()), err
		}
	}
}

// mayBeBundle reports whether doc could be a Bundle: it holds the word, or a \u escape that could spell
// it. Anything else is a single resource (or not JSON at all, which PrepareBatch reports).
func mayBeBundle(doc []byte) bool {
	return bytes.Contains(doc, []byte("Bundle")) || bytes.Contains(doc, []byte(`\u`))
}

// progress prints a one-line counter on a terminal and nothing otherwise (CI logs stay clean).
type progress struct {
	w       io.Writer
	enabled bool
	last    time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.enabled = true
		}
	}
	return p
}

func (p *progress) update(n int) {
	if !p.enabled || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\rimported %d resources", n)
}

func (p *progress) done() {
	if p.enabled {
		fmt.Fprintln(p.w)
	}
}

// runDirectoryGenerate implements `timstack directory generate --seed N --scale S --out FILE`: synthetic
// German directory data as NDJSON, deterministic per (seed, scale).
func runDirectoryGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("directory generate", stderr)
	seed := fs.Int64("seed", 1, "random seed (same seed and scale → same bytes)")
	scaleFlag := fs.String("scale", "fiftieth", "full (2.15 M resources), tenth, fiftieth, or a factor such as 0.001")
	out := fs.String("out", "", "output NDJSON file")
	if _, err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	scale, err := generate.ParseScale(*scaleFlag)
	if err != nil {
		return usageError("directory generate: --scale: %v", err)
	}
	if *out == "" {
		return usageError("directory generate: --out FILE is required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return failure("directory generate: %v", err)
	}
	counts, err := generate.Generate(f, generate.Options{Seed: *seed, Scale: scale})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return failure("directory generate: %v", err)
	}
	return writeJSON(stdout, map[string]any{"out": *out, "resources": counts.Total(), "counts": counts})
}
