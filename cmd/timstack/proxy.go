package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/timstack/timstack/proxy"
	"github.com/timstack/timstack/proxy/appservice"
	"github.com/timstack/timstack/proxy/forward"
)

// runProxy implements `timstack proxy`: the Messenger-Proxy, plus the set-up helpers a vendor needs before
// the first start (application-service registration, proxy CA).
func runProxy(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "appservice-registration":
			return runProxyRegistration(args[1:], stdout, stderr)
		case "gen-ca":
			return runProxyGenCA(args[1:], stdout, stderr)
		}
	}
	fs := newFlagSet("proxy", stderr)
	configFile := fs.String("config", os.Getenv("TIMSTACK_CONFIG"), "configuration file (YAML); env TIMSTACK_CONFIG")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	cpuProfile := fs.String("cpu-profile", "", "write a Go CPU profile of the proxy's whole run to this file, finished on shutdown (go tool pprof)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *configFile == "" {
		return usageError("proxy: --config FILE is required (subcommands: appservice-registration, gen-ca)")
	}
	cfg, err := proxy.LoadConfig(*configFile)
	if err != nil {
		return failure("%v", err)
	}
	if *check {
		fmt.Fprintln(stdout, "configuration valid")
		return nil
	}
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return failure("%v", err)
		}
		defer stopProfile()
	}
	p, err := proxy.New(ctx, cfg, proxy.Deps{Log: log})
	if err != nil {
		return failure("%v", err)
	}
	if err := p.Run(ctx); err != nil {
		return failure("%v", err)
	}
	return nil
}

// runProxyRegistration writes the homeserver's application-service registration for the proxy.
func runProxyRegistration(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("proxy appservice-registration", stderr)
	serverName := fs.String("server-name", "", "the homeserver's server name")
	url := fs.String("url", "", "URL of the proxy's internal listener, as the homeserver reaches it")
	out := fs.String("out", "", "output file (homeserver's app_service_config_files entry)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *serverName == "" || *url == "" || *out == "" {
		return usageError("proxy appservice-registration: --server-name, --url and --out are required")
	}
	reg, err := appservice.NewRegistration(*serverName, *url)
	if err != nil {
		return failure("%v", err)
	}
	y, err := reg.YAML()
	if err != nil {
		return failure("%v", err)
	}
	if err := os.WriteFile(*out, y, 0o600); err != nil {
		return failure("%v", err)
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret: it holds the as_token and hs_token)\n", *out)
	return nil
}

// runProxyGenCA creates the proxy CA the homeserver trusts for its intercepted outbound TLS.
func runProxyGenCA(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("proxy gen-ca", stderr)
	name := fs.String("name", "timstack proxy CA", "common name")
	certOut := fs.String("cert", "", "output certificate PEM")
	keyOut := fs.String("key", "", "output key PEM")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError("%v", err)
	}
	if len(pos) != 0 || *certOut == "" || *keyOut == "" {
		return usageError("proxy gen-ca: --cert and --key are required")
	}
	certPEM, keyPEM, err := forward.GenerateCA(*name, 10*365*24*time.Hour)
	if err != nil {
		return failure("%v", err)
	}
	if err := os.WriteFile(*certOut, certPEM, 0o644); err != nil {
		return failure("%v", err)
	}
	if err := os.WriteFile(*keyOut, keyPEM, 0o600); err != nil {
		return failure("%v", err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", *certOut, *keyOut)
	return nil
}
