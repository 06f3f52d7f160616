package synapse

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartTimeout bounds how long Start and Restart wait for /health (a template-less first start migrates the
// whole schema, which takes up to a minute or more on a busy 2-core machine).
const StartTimeout = 120 * time.Second

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Server is one running (or stopped) Synapse process. Its methods are safe for concurrent use.
type Server struct {
	mu     sync.Mutex
	cfg    Config
	host   string
	port   int
	keyID  string
	pub    ed25519.PublicKey
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
}

// Start writes the configuration into cfg.DataDir, seeds the database from cfg.Template (unless DataDir
// already has one), generates a signing key (unless DataDir has one), launches Synapse and waits until
// GET /health answers 200. On failure the process is stopped and the error carries the log tail.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" || cfg.Venv == "" {
		return nil, errors.New("synapse: Config.DataDir and Config.Venv are required")
	}
	if err := absolutePaths(&cfg); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	host, port, err := loopbackAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = freePort(host); err != nil {
			return nil, err
		}
	}
	cfg.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	if cfg.ServerName == "" {
		cfg.ServerName = cfg.Addr
	}
	if cfg.PublicBaseURL == "" {
		cfg.PublicBaseURL = "http://" + cfg.Addr + "/"
	}
	if cfg.RegistrationSharedSecret == "" {
		cfg.RegistrationSharedSecret = rand.Text()
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "media"), 0o700); err != nil {
		return nil, fmt.Errorf("synapse: data dir: %w", err)
	}
	if err := seedDatabase(cfg); err != nil {
		return nil, err
	}
	keyID, pub, err := ensureSigningKey(filepath.Join(cfg.DataDir, "signing.key"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, host: host, port: port, keyID: keyID, pub: pub}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the homeserver's base URL, "http://127.0.0.1:port" (no trailing slash).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.cfg.Addr
}

// Addr is the loopback listen address host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Addr
}

// ServerName is the configured Matrix server name.
func (s *Server) ServerName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.ServerName
}

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SigningKeyID is the server's signing key ID, "ed25519:a_XXXX".
func (s *Server) SigningKeyID() string { return "ed25519:" + s.keyID }

// SigningPublicKey is the public half of the server's ed25519 signing key.
func (s *Server) SigningPublicKey() ed25519.PublicKey { return s.pub }

// LogPath is Synapse's log file (INFO and above).
func (s *Server) LogPath() string { return filepath.Join(s.cfg.DataDir, "homeserver.log") }

// LogTail returns the last n lines of Synapse's log and of its stdout/stderr, for failure messages.
func (s *Server) LogTail(n int) string {
	return logTail(s.cfg.DataDir, n)
}

// Stop sends SIGTERM to Synapse's process group, waits up to 10 s, then SIGKILLs it. Stopping a stopped
// server is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

// Restart stops the server and starts it again with the same configuration, address and data (rewriting
// homeserver.yaml first), waiting for /health.
func (s *Server) Restart(ctx context.Context) error {
	return s.Reconfigure(ctx, nil)
}

// Reconfigure stops the server, applies change to its configuration (if non-nil) and starts it again. The
// address, data directory and signing key stay; a change of ServerName only works while no user exists.
func (s *Server) Reconfigure(ctx context.Context, change func(*Config)) error {
	s.mu.Lock()
	if err := s.stopLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	if change != nil {
		addr, dir := s.cfg.Addr, s.cfg.DataDir
		change(&s.cfg)
		s.cfg.Addr, s.cfg.DataDir = addr, dir
	}
	s.mu.Unlock()
	return s.start(ctx)
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	// the whole group: Synapse itself never forks workers here, but a wrapper or helper might
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// start writes the config files, launches the process and waits for health.
func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	hsYAML, err := homeserverConfig(cfg, s.port)
	if err != nil {
		return err
	}
	lc, err := logConfig(cfg.DataDir)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(cfg.DataDir, "homeserver.yaml")
	if err := os.WriteFile(cfgPath, hsYAML, 0o600); err != nil {
		return fmt.Errorf("synapse: write config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "log.config"), lc, 0o600); err != nil {
		return fmt.Errorf("synapse: write log config: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(cfg.DataDir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("synapse: stdout log: %w", err)
	}
	defer out.Close() // the child has its own descriptor after Start

	// not CommandContext: ctx bounds the start-up wait, not the server's lifetime
	cmd := exec.Command(filepath.Join(cfg.Venv, "bin", "python"), "-m", "synapse.app.homeserver", "-c", cfgPath)
	cmd.Dir = cfg.DataDir
	cmd.Env = processEnv(os.Environ(), cfg.HTTPSProxy)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("synapse: start %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		// the exit status carries nothing Stop could act on: SIGTERM makes it non-zero by design
		_ = cmd.Wait()
		close(exited)
	}()

	if err := waitHealthy(ctx, "http://"+cfg.Addr+"/health", exited); err != nil {
		_ = s.Stop()
		return fmt.Errorf("synapse: %s did not become healthy: %w\n%s", cfg.ServerName, err, logTail(cfg.DataDir, 40))
	}
	return nil
}

// absolutePaths makes every path in cfg absolute. Synapse runs with DataDir as its working directory and
// reads the paths written into homeserver.yaml from there, so a path relative to ours (the demo passes
// data/demo/stack/…) would name a file that does not exist.
func absolutePaths(cfg *Config) error {
	cfg.AppServiceFiles = slices.Clone(cfg.AppServiceFiles) // the caller's slice stays as it was
	paths := []*string{&cfg.DataDir, &cfg.Venv, &cfg.Template, &cfg.FederationCAFile}
	for i := range cfg.AppServiceFiles {
		paths = append(paths, &cfg.AppServiceFiles[i])
	}
	for _, p := range paths {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("synapse: %w", err)
		}
		*p = abs
	}
	return nil
}

// waitHealthy polls url until it answers 200, the process exits, ctx ends or StartTimeout passes.
func waitHealthy(ctx context.Context, url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("process exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("waiting for /health: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// processEnv is the parent's environment with every proxy variable replaced: an inherited machine proxy must
// not capture the homeserver's traffic, and a configured one must not capture loopback calls.
func processEnv(parent []string, httpsProxy string) []string {
	env := make([]string, 0, len(parent)+4)
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(name) {
		case "http_proxy", "https_proxy", "no_proxy", "all_proxy":
			continue
		}
		env = append(env, kv)
	}
	if httpsProxy != "" {
		const local = "127.0.0.1,localhost,::1"
		env = append(env, "https_proxy="+httpsProxy, "HTTPS_PROXY="+httpsProxy, "no_proxy="+local, "NO_PROXY="+local)
	}
	return env
}

// seedDatabase copies the template to DataDir/homeserver.db unless a database is already there (a restart
// or a caller-prepared directory).
func seedDatabase(cfg Config) error {
	dst := filepath.Join(cfg.DataDir, "homeserver.db")
	if cfg.Template == "" {
		return nil
	}
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	src, err := os.Open(cfg.Template)
	if err != nil {
		return fmt.Errorf("synapse: template database: %w", err)
	}
	defer src.Close()
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("synapse: copy template: %w", err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return fmt.Errorf("synapse: copy template: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("synapse: copy template: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("synapse: copy template: %w", err)
	}
	return nil
}

// freePort asks the kernel for a free TCP port on host. Another process may take it before Synapse binds
// it; Start then fails with the bind error in the log tail rather than hanging.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("synapse: pick free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last n lines of homeserver.log and stdout.log in dir.
func logTail(dir string, n int) string {
	var b strings.Builder
	for _, name := range []string{"stdout.log", "homeserver.log"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- %s (last %d lines) ---\n%s\n", name, len(lines), bytes.Join(lines, []byte("\n")))
	}
	return b.String()
}
