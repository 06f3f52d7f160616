package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/timstack/timstack/cmd/timstack/devstack"
	"github.com/timstack/timstack/proxy/e2e/synapse"
)

// upConfig is the YAML of `timstack up --config FILE`.
type upConfig struct {
	Dir              string                  `yaml:"dir"`
	Host             string                  `yaml:"host"`
	IDPPort          int                     `yaml:"idp_port"`
	DirectoryPort    int                     `yaml:"directory_port"`
	RegistrationPort int                     `yaml:"registration_port"`
	Variant          string                  `yaml:"variant"`
	Nodes            []devstack.NodeConfig   `yaml:"nodes"`
	Organizations    []devstack.Organization `yaml:"organizations"`
}

// Fixed default ports: a homeserver is configured with its proxy's forward and internal addresses, so they
// must not change between runs.
const (
	upIDPPort      = 8580
	upDirPort      = 8581
	upRegPort      = 8582
	upNodePortBase = 8600 // node i: client +10i, federation +10i+1, forward +10i+2, internal +10i+3
)

func loadUpConfig(path string) (*upConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c upConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Dir == "" {
		c.Dir = "data/up"
	}
	if len(c.Nodes) == 0 {
		return nil, fmt.Errorf("%s: nodes: at least one homeserver is required", path)
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.ServerName == "" || n.HomeserverURL == "" {
			return nil, fmt.Errorf("%s: nodes[%d]: server_name and homeserver_url are required", path, i)
		}
		base := upNodePortBase + 10*i
		for j, p := range []*int{&n.ClientPort, &n.FederationPort, &n.ForwardPort, &n.InternalPort} {
			if *p == 0 {
				*p = base + j
			}
		}
	}
	for _, p := range []struct {
		v   *int
		def int
	}{{&c.IDPPort, upIDPPort}, {&c.DirectoryPort, upDirPort}, {&c.RegistrationPort, upRegPort}} {
		if *p.v == 0 {
			*p.v = p.def
		}
	}
	return &c, nil
}

// runUp implements `timstack up --config FILE [--prepare]`.
func runUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	cfgPath := fs.String("config", "", "stack configuration (YAML): dir, ports, nodes (server_name, homeserver_url, users), organizations")
	prepare := fs.Bool("prepare", false, "only write the homeservers' artifacts (appservice registration, proxy CA) and print their settings")
	if _, err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	if *cfgPath == "" {
		return usageError("up: --config FILE is required")
	}
	c, err := loadUpConfig(*cfgPath)
	if err != nil {
		return usageError("up: %v", err)
	}
	logFile, err := openLog(c.Dir)
	if err != nil {
		return failure("up: %v", err)
	}
	defer logFile.Close()
	st, err := devstack.Prepare(devstack.Config{
		Dir: c.Dir, Host: c.Host, IDPPort: c.IDPPort, DirectoryPort: c.DirectoryPort, RegistrationPort: c.RegistrationPort,
		Variant: c.Variant, Nodes: c.Nodes, Organizations: c.Organizations,
		Log: slog.New(slog.NewJSONHandler(logFile, nil)),
	})
	if err != nil {
		return failure("up: %v", err)
	}
	printHomeserverSettings(stdout, st)
	if *prepare {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := st.Start(ctx); err != nil {
		st.Stop()
		return failure("up: %v", err)
	}
	defer st.Stop()
	printStack(stdout, st, logFile.Name())
	fmt.Fprintln(stdout, "Running. Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}

func openLog(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, "stack.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
}

func printHomeserverSettings(w io.Writer, st *devstack.Stack) {
	fmt.Fprintln(w, "Homeserver settings (Synapse keys):")
	for _, nd := range st.Nodes {
		h := nd.Homeserver
		fmt.Fprintf(w, "  %s:\n    app_service_config_files: [%s]\n    federation_custom_ca_list: [%s]\n    public_baseurl: %s\n    environment: https_proxy=%s\n",
			nd.Spec.ServerName, h.AppServiceFile, h.FederationCAFile, h.PublicBaseURL, h.HTTPSProxy)
	}
}

func printStack(w io.Writer, st *devstack.Stack, logPath string) {
	fmt.Fprintf(w, "dev IDP       %s   (gematik TEST-ONLY keys)\n", st.IDPURL)
	fmt.Fprintf(w, "directory     %s   (SQLite)\n", st.DirectoryURL)
	fmt.Fprintf(w, "registration  %s\n", st.RegistrationURL)
	for _, nd := range st.Nodes {
		fmt.Fprintf(w, "proxy %-24s clients: %s\n", nd.Spec.ServerName, nd.ClientURL)
	}
	fmt.Fprintf(w, "logs: %s\nTrust this dev stack relaxes:\n", logPath)
	for _, r := range devstack.Relaxations() {
		fmt.Fprintf(w, "  - %s\n", r)
	}
}

// runDemo implements `timstack demo`: two Synapse homeservers (installed by scripts/synapse.sh) behind the
// dev stack, the narrated walkthrough, then the stack keeps running until Ctrl-C (DEMO_EXIT=1: exit).
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	dir := fs.String("dir", "data/demo/stack", "state directory (wiped at start)")
	cards := fs.String("cards", filepath.Join("testdata", "gematik", "pki", "cards"), "gematik test cards")
	base := fs.Int("port-base", upIDPPort, "first of the loopback ports the demo uses (IDP, directory, registration, then proxies and homeservers up to +70)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	venv, tmpl, err := synapse.InstallOrFind(ctx)
	if err != nil {
		return failure("demo: Synapse is not installed (scripts/synapse.sh): %v", err)
	}
	if err := os.RemoveAll(*dir); err != nil {
		return failure("demo: %v", err)
	}
	logFile, err := openLog(*dir)
	if err != nil {
		return failure("demo: %v", err)
	}
	defer logFile.Close()
	hsAddr := map[string]string{}
	for i, n := range []string{devstack.PracticeDomain, devstack.PharmacyDomain} {
		hsAddr[n] = "127.0.0.1:" + strconv.Itoa(*base+60+i)
	}
	nodes := devstack.DemoNodes(func(n string) string { return "http://" + hsAddr[n] })
	for i := range nodes {
		p := *base + 20 + 10*i
		nodes[i].ClientPort, nodes[i].FederationPort, nodes[i].ForwardPort, nodes[i].InternalPort = p, p+1, p+2, p+3
	}
	st, err := devstack.Prepare(devstack.Config{
		Dir: *dir, IDPPort: *base, DirectoryPort: *base + 1, RegistrationPort: *base + 2,
		Nodes: nodes, Organizations: devstack.DemoOrganizations(), Log: slog.New(slog.NewJSONHandler(logFile, nil)),
	})
	if err != nil {
		return failure("demo: %v", err)
	}
	if err := st.Start(ctx); err != nil {
		st.Stop()
		return failure("demo: %v", err)
	}
	defer st.Stop()
	var servers []*synapse.Server
	defer func() {
		for _, s := range servers {
			_ = s.Stop()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, nd := range st.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs, err := synapse.Start(ctx, synapse.Config{
				ServerName: nd.Spec.ServerName, Addr: hsAddr[nd.Spec.ServerName], DataDir: filepath.Join(*dir, nd.Spec.ServerName, "synapse"),
				Venv: venv, Template: tmpl, AppServiceFiles: []string{nd.Homeserver.AppServiceFile},
				HTTPSProxy: nd.Homeserver.HTTPSProxy, FederationCAFile: nd.Homeserver.FederationCAFile,
				PublicBaseURL: nd.Homeserver.PublicBaseURL,
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", nd.Spec.ServerName, err))
				return
			}
			servers = append(servers, hs)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return failure("demo: Synapse: %v", err)
	}
	fmt.Fprintf(stdout, "\n\033[1m== The messenger stack: two Synapse %s homeservers, each behind a timstack proxy\033[0m\n", synapse.DefaultVersion)
	printStack(stdout, st, logFile.Name())
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := st.RunDemo(wctx, stdout, *cards); err != nil {
		return failure("demo: %v", err)
	}
	if os.Getenv("DEMO_EXIT") == "1" {
		return nil
	}
	fmt.Fprintln(stdout, "\nThe stack keeps running. Log in with a card: timstack idp login --issuer "+st.IDPURL+
		" --card "+filepath.Join(*cards, devstack.CardDoctorHBA)+"\nPress Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}
