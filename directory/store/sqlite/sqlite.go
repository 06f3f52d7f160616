// Package sqlite is the SQLite engine of the directory store (modernc.org/sqlite, no cgo): one database
// file in WAL mode, one writer connection (BEGIN IMMEDIATE) and a pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is a directory store in one SQLite file.
type Store struct {
	w *sql.DB // exactly one connection: SQLite has one writer
	r *sql.DB // readers (WAL lets them run beside the writer)
}

// Open opens or creates the database file at path and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		return nil, fmt.Errorf("store: sqlite: need a file path without '?' or '#'")
	}
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-65536)"
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{w: w}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: sqlite: migrate: %w", err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := core.Migrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	// BEGIN IMMEDIATE (the writer's _txlock) serialises concurrent openers of the same file.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, time.Now().Unix()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Close closes the database.
func (s *Store) Close() error {
	_, _ = s.w.Exec(`PRAGMA optimize`)
	return errors.Join(s.r.Close(), s.w.Close())
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: sqlite: %w", err)
}

// Put creates or replaces resources in one transaction.
func (s *Store) Put(ctx context.Context, rs ...index.Resource) ([]index.Resource, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	for _, r := range rs {
		if err := core.Validate(r); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	now := core.Now()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback()
	upsert, err := tx.PrepareContext(ctx, `INSERT INTO resources (type, id, version_id, last_updated, json) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (type, id) DO UPDATE SET version_id = resources.version_id + 1, last_updated = excluded.last_updated, json = excluded.json
RETURNING version_id`)
	if err != nil {
		return nil, wrap(err)
	}
	defer upsert.Close()
	tables := core.Tables()
	var dels [core.NumTables]*sql.Stmt
	for i, t := range tables {
		if dels[i], err = tx.PrepareContext(ctx, `DELETE FROM `+t.Name+` WHERE type = ? AND id = ?`); err != nil {
			return nil, wrap(err)
		}
		defer dels[i].Close()
	}
	out := make([]index.Resource, len(rs))
	var tabs [core.NumTables][][]any
	pending := make(map[index.Ref]int, len(rs))
	for _, r := range rs {
		pending[index.Ref{Type: r.Type, ID: r.ID}]++
	}
	for i, r := range rs {
		var v int64
		if err := upsert.QueryRowContext(ctx, r.Type, r.ID, now.UnixMicro(), nonNil(r.JSON)).Scan(&v); err != nil {
			return nil, wrap(err)
		}
		if v > 1 {
			for _, d := range dels {
				if _, err := d.ExecContext(ctx, r.Type, r.ID); err != nil {
					return nil, wrap(err)
				}
			}
		}
		r.VersionID, r.LastUpdated = v, now
		core.Encode(&tabs, r)
		out[i] = index.Resource{Type: r.Type, ID: r.ID, VersionID: v, LastUpdated: now}
		key := index.Ref{Type: r.Type, ID: r.ID}
		if pending[key]--; pending[key] > 0 {
			// the same resource again later in this call: write its rows now so the later delete sees them
			if err := insertRows(ctx, tx, &tabs); err != nil {
				return nil, wrap(err)
			}
		}
	}
	if err := insertRows(ctx, tx, &tabs); err != nil {
		return nil, wrap(err)
	}
	written := make([]index.Ref, 0, len(pending))
	for ref := range pending {
		written = append(written, ref)
	}
	if err := refreshChainRows(ctx, tx, written); err != nil {
		return nil, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// refreshChainRows recomputes the chain rows (core.ChainRows) the written or deleted resources change.
func refreshChainRows(ctx context.Context, tx *sql.Tx, written []index.Ref) error {
	query := func(q string, args ...any) ([]string, error) { return queryStrings(ctx, tx, q, args...) }
	exec := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	if err := core.RefreshChainRows(core.SQLite, written, query, exec); err != nil {
		return fmt.Errorf("chain rows: %w", err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// insertRows writes the collected rows with multi-row INSERTs and empties tabs.
func insertRows(ctx context.Context, tx *sql.Tx, tabs *[core.NumTables][][]any) error {
	tables := core.Tables()
	for i, t := range tables {
		rows := tabs[i]
		per := 500 / len(t.Columns)
		for len(rows) > 0 {
			n := min(per, len(rows))
			var sb strings.Builder
			sb.WriteString("INSERT INTO " + t.Name + " (" + strings.Join(t.Columns, ", ") + ") VALUES ")
			tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.Columns)), ", ") + ")"
			args := make([]any, 0, n*len(t.Columns))
			for j := 0; j < n; j++ {
				if j > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(tuple)
				args = append(args, rows[j]...)
			}
			if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
				return err
			}
			rows = rows[n:]
		}
		tabs[i] = tabs[i][:0]
	}
	return nil
}

// Get returns one resource (without Rows).
func (s *Store) Get(ctx context.Context, typ, id string) (index.Resource, error) {
	r := index.Resource{Type: typ, ID: id}
	var lu int64
	err := s.r.QueryRowContext(ctx, `SELECT version_id, last_updated, json FROM resources WHERE type = ? AND id = ?`, typ, id).Scan(&r.VersionID, &lu, &r.JSON)
	if errors.Is(err, sql.ErrNoRows) {
		return index.Resource{}, fmt.Errorf("store: %s/%s: %w", typ, id, core.ErrNotFound)
	}
	if err != nil {
		return index.Resource{}, wrap(err)
	}
	r.LastUpdated = time.UnixMicro(lu).UTC()
	return r, nil
}

// GetMany returns the resources named by refs in their order, skipping missing ones.
func (s *Store) GetMany(ctx context.Context, refs []index.Ref) ([]index.Resource, error) {
	types, ids := core.GroupRefs(refs)
	found := make(map[index.Ref]index.Resource, len(refs))
	for _, typ := range types {
		all := ids[typ]
		for len(all) > 0 {
			chunk := all[:min(len(all), 500)]
			all = all[len(chunk):]
			b := &core.Builder{D: core.SQLite}
			b.W("SELECT id, version_id, last_updated, json FROM resources WHERE type = ")
			b.Arg(typ)
			b.W(" AND ")
			b.In("id", chunk)
			rows, err := s.r.QueryContext(ctx, b.SQL(), b.Args...)
			if err != nil {
				return nil, wrap(err)
			}
			for rows.Next() {
				r := index.Resource{Type: typ}
				var lu int64
				if err := rows.Scan(&r.ID, &r.VersionID, &lu, &r.JSON); err != nil {
					rows.Close()
					return nil, wrap(err)
				}
				r.LastUpdated = time.UnixMicro(lu).UTC()
				found[index.Ref{Type: typ, ID: r.ID}] = r
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, wrap(err)
			}
		}
	}
	out := make([]index.Resource, 0, len(found))
	for _, ref := range refs {
		if r, ok := found[ref]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// Delete removes a resource and its index rows.
func (s *Store) Delete(ctx context.Context, typ, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM resources WHERE type = ? AND id = ?`, typ, id)
	if err != nil {
		return wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err)
	} else if n == 0 {
		return fmt.Errorf("store: %s/%s: %w", typ, id, core.ErrNotFound)
	}
	for _, t := range core.Tables() {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.Name+` WHERE type = ? AND id = ?`, typ, id); err != nil {
			return wrap(err)
		}
	}
	if err := refreshChainRows(ctx, tx, []index.Ref{{Type: typ, ID: id}}); err != nil {
		return wrap(err)
	}
	return wrap(tx.Commit())
}

// Search evaluates q.
func (s *Store) Search(ctx context.Context, q index.Query) (index.Result, error) {
	page, count, args, err := core.SearchSQL(core.SQLite, q)
	if err != nil {
		return index.Result{}, fmt.Errorf("store: %w", err)
	}
	res := index.Result{Total: -1}
	// one read transaction: the page and the total see the same snapshot
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return index.Result{}, wrap(err)
	}
	defer tx.Rollback()
	if q.Total && q.Limit > 0 {
		// One statement gives the page and the total (count(*) OVER ()); only a page past the end needs
		// the separate count.
		withTotal, _, wargs, err := core.SearchWithTotalSQL(core.SQLite, q)
		if err != nil {
			return index.Result{}, fmt.Errorf("store: %w", err)
		}
		rows, err := tx.QueryContext(ctx, withTotal, wargs...)
		if err != nil {
			return index.Result{}, wrap(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id, &res.Total); err != nil {
				return index.Result{}, wrap(err)
			}
			res.IDs = append(res.IDs, id)
		}
		if err := rows.Err(); err != nil {
			return index.Result{}, wrap(err)
		}
		if len(res.IDs) > 0 {
			return res, nil
		}
	}
	if q.Total {
		if err := tx.QueryRowContext(ctx, count, args[:len(args)-2]...).Scan(&res.Total); err != nil {
			return index.Result{}, wrap(err)
		}
	}
	if q.Limit > 0 && !q.Total {
		if res.IDs, err = queryStrings(ctx, tx, page, args...); err != nil {
			return index.Result{}, wrap(err)
		}
	}
	return res, nil
}

func queryStrings(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// References returns the targets of the reference rows of (typ, ids) for param ("" = all).
func (s *Store) References(ctx context.Context, typ string, ids []string, param string) ([]index.Ref, error) {
	seen := map[index.Ref]bool{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		b := &core.Builder{D: core.SQLite}
		b.W("SELECT DISTINCT ref_type, ref_id FROM idx_reference WHERE type = ")
		b.Arg(typ)
		b.W(" AND ")
		b.In("id", chunk)
		if param != "" {
			b.W(" AND param = ")
			b.Arg(param)
		}
		if err := s.scanRefs(ctx, b, func(r index.Ref) { seen[r] = true }); err != nil {
			return nil, err
		}
	}
	return core.SortedRefs(seen), nil
}

// ReferencedBy returns the sourceType resources whose sourceParam ("" = any) points at any of targets.
func (s *Store) ReferencedBy(ctx context.Context, sourceType, sourceParam string, targets []index.Ref) ([]index.Ref, error) {
	types, ids := core.GroupRefs(targets)
	seen := map[index.Ref]bool{}
	for _, tt := range types {
		all := ids[tt]
		for len(all) > 0 {
			chunk := all[:min(len(all), 500)]
			all = all[len(chunk):]
			b := &core.Builder{D: core.SQLite}
			b.W("SELECT DISTINCT type, id FROM idx_reference WHERE ")
			b.In("ref_id", chunk)
			b.W(" AND ref_type = ")
			b.Arg(tt)
			b.W(" AND type = ")
			b.Arg(sourceType)
			if sourceParam != "" {
				b.W(" AND param = ")
				b.Arg(sourceParam)
			}
			if err := s.scanRefs(ctx, b, func(r index.Ref) { seen[r] = true }); err != nil {
				return nil, err
			}
		}
	}
	return core.SortedRefs(seen), nil
}

func (s *Store) scanRefs(ctx context.Context, b *core.Builder, f func(index.Ref)) error {
	rows, err := s.r.QueryContext(ctx, b.SQL(), b.Args...)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r index.Ref
		if err := rows.Scan(&r.Type, &r.ID); err != nil {
			return wrap(err)
		}
		f(r)
	}
	return wrap(rows.Err())
}

// Count returns the number of resources of typ.
func (s *Store) Count(ctx context.Context, typ string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM resources WHERE type = ?`, typ).Scan(&n); err != nil {
		return 0, wrap(err)
	}
	return n, nil
}

// GetKV returns the value stored under key.
func (s *Store) GetKV(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: key %q: %w", key, core.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(err)
	}
	return v, nil
}

// PutKV stores value under key.
func (s *Store) PutKV(ctx context.Context, key string, value []byte) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, nonNil(value))
	return wrap(err)
}

// Analyze refreshes the query planner statistics; call it after a bulk load.
func (s *Store) Analyze(ctx context.Context) error {
	_, err := s.w.ExecContext(ctx, `ANALYZE`)
	return wrap(err)
}
