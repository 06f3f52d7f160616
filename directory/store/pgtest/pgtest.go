// Package pgtest gives tests fresh, migrated PostgreSQL databases.
//
// With TIMSTACK_TEST_PG_DSN set, databases are created on that server (CREATE DATABASE from a migrated
// template; a schema per test when the role may not create databases). Otherwise the first test that asks
// starts a private server for the test binary: initdb into a temporary folder and postgres on a Unix socket
// only (no TCP). initdb and postgres refuse to run as root, so under root they run as an unprivileged user
// (TIMSTACK_TEST_PG_USER, default "nobody") that owns the temporary folder. Binaries come from
// TIMSTACK_TEST_PG_BIN, /usr/lib/postgresql/15/bin or the newest /usr/lib/postgresql/*/bin
// (scripts/postgres.sh installs them).
//
// When no database can be had, tests are skipped, unless TIMSTACK_TEST_REQUIRE_DB=1 (CI), which makes it a
// failure. Use one Server per test package:
//
//	var pg = pgtest.New()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Close()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) { dsn := pg.DSN(t); … }
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/timstack/timstack/directory/store/postgres"
)

// Server hands out databases; it starts (or connects) lazily on the first DSN call.
type Server struct {
	once sync.Once
	err  error // why no database is available

	admin    *pgxpool.Pool
	adminDSN string
	prefix   string // unique per Server: names of the template and test databases
	template string
	schemas  bool // the role may not create databases: one schema per test in the admin database

	mu sync.Mutex // serialises CREATE DATABASE … TEMPLATE (the template must not be in concurrent use)
	n  int

	proc *exec.Cmd
	done chan struct{} // closed when proc has exited
	dir  string
}

// New returns a Server; nothing is started until a test asks for a database.
func New() *Server { return &Server{} }

// DSN returns the connection string of a fresh, migrated database for t, dropped when t ends.
func (s *Server) DSN(t testing.TB) string {
	t.Helper()
	s.once.Do(func() { s.err = s.start() })
	if s.err != nil {
		if os.Getenv("TIMSTACK_TEST_REQUIRE_DB") == "1" {
			t.Fatalf("pgtest: PostgreSQL required (TIMSTACK_TEST_REQUIRE_DB=1) but unavailable: %v", s.err)
		}
		t.Skipf("pgtest: PostgreSQL unavailable, skipping (set TIMSTACK_TEST_PG_DSN or run scripts/postgres.sh): %v", s.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("%s_%d", s.prefix, s.n)
	var err error
	if s.schemas {
		_, err = s.admin.Exec(ctx, "CREATE SCHEMA "+name)
	} else {
		_, err = s.admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+s.template)
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: create %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if s.schemas {
			_, err = s.admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
		} else {
			_, err = s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	if s.schemas {
		dsn := withParam(s.adminDSN, "search_path", name)
		// the schema is empty: migrate it (no template to copy from)
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("pgtest: migrate schema %s: %v", name, err)
		}
		st.Close()
		return dsn
	}
	return withDatabase(s.adminDSN, name)
}

// Close drops the template and stops the private server, if one was started.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.admin != nil {
		if s.template != "" && s.proc == nil {
			_, _ = s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+s.template+" WITH (FORCE)")
		}
		s.admin.Close()
	}
	s.stop()
}

func (s *Server) start() error {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	s.prefix = fmt.Sprintf("timstack_test_%d_%s", os.Getpid(), hex.EncodeToString(b))
	s.adminDSN = os.Getenv("TIMSTACK_TEST_PG_DSN")
	if s.adminDSN == "" {
		dsn, err := s.startServer()
		if err != nil {
			s.stop()
			return err
		}
		s.adminDSN = dsn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(s.adminDSN)
	if err != nil {
		return fmt.Errorf("TIMSTACK_TEST_PG_DSN: %w", err)
	}
	cfg.MaxConns = 4
	if s.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	if err := s.admin.Ping(ctx); err != nil {
		return err
	}
	s.template = s.prefix + "_template"
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+s.template); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
			s.schemas, s.template = true, ""
			return nil
		}
		return err
	}
	st, err := postgres.Open(ctx, withDatabase(s.adminDSN, s.template))
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return st.Close()
}

// binDir finds the PostgreSQL server binaries.
func binDir() (string, error) {
	cands := []string{os.Getenv("TIMSTACK_TEST_PG_BIN"), "/usr/lib/postgresql/15/bin"}
	more, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(more)))
	cands = append(cands, more...)
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
				return d, nil
			}
		}
	}
	return "", errors.New("no initdb/postgres found (TIMSTACK_TEST_PG_BIN, /usr/lib/postgresql/*/bin)")
}

// startServer runs initdb and postgres in a temporary folder and returns the admin DSN.
func (s *Server) startServer() (string, error) {
	bin, err := binDir()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "timstack-pgtest-")
	if err != nil {
		return "", err
	}
	s.dir = dir
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return "", err
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		name := os.Getenv("TIMSTACK_TEST_PG_USER")
		if name == "" {
			name = "nobody"
		}
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("running as root, and no unprivileged user %q for PostgreSQL: %w", name, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		for _, p := range []string{dir, sock} {
			if err := os.Chown(p, uid, gid); err != nil {
				return "", err
			}
		}
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	if uid >= 0 {
		if err := logf.Chown(uid, gid); err != nil {
			return "", err
		}
	}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C", "TZ=UTC"}

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Env, initdb.Dir = env, dir
	initdb.Stdout, initdb.Stderr = logf, logf
	if err := asUser(initdb, uid, gid); err != nil {
		return "", err
	}
	if err := initdb.Run(); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, tail(logPath))
	}

	pg := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", sock,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=128MB",
		"-c", "log_min_messages=warning")
	pg.Env, pg.Dir = env, dir
	pg.Stdout, pg.Stderr = logf, logf
	if err := asUser(pg, uid, gid); err != nil {
		return "", err
	}
	if err := pg.Start(); err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	s.proc = pg
	s.done = make(chan struct{})
	go func() { _ = pg.Wait(); close(s.done) }()

	dsn := "postgres://postgres@/postgres?host=" + url.QueryEscape(sock) + "&sslmode=disable"
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			return "", fmt.Errorf("postgres exited during start-up:\n%s", tail(logPath))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgconn.Connect(ctx, dsn)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return dsn, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the private server down (fast shutdown, then kill) and removes its folder.
func (s *Server) stop() {
	if s.proc != nil && s.proc.Process != nil {
		_ = s.proc.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.proc.Process.Kill()
			<-s.done
		}
		s.proc = nil
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// withDatabase returns dsn with its database replaced by name (URL or key=value form).
func withDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

// withParam returns dsn with a run-time parameter added (URL or key=value form).
func withParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}
