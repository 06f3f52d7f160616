// Package postgres is the PostgreSQL engine of the directory store (pgx v5, pgxpool). Bulk writes go through
// COPY; every search is one SQL statement answered from B-tree indexes.
package postgres

import (
	"bytes"
	"context"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the pg_advisory_xact_lock key that serialises concurrent migrations ("timstack" in hex).
const migrationLock = 0x74696d737461636b

// copyThreshold is the number of index rows from which Put uses COPY instead of INSERT statements.
const copyThreshold = 200

// Store is a directory store in a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// bulk is set while the store is in a bulk load (BeginBulkLoad, or Open finding one unfinished):
	// writes leave the chain rows to EndBulkLoad, which computes them all at once (per batch, on tables
	// without statistics, the planner joined whole tables: 1.2k instead of 3k resources/s at a tenth of
	// full scale), and searches do not use them.
	bulk atomic.Bool
	// targets remembers the chain targets this process wrote in a bulk load (putBulk).
	targets chainTargetMemory
}

// Open connects to the database named by dsn (a postgres:// URL or key=value string; search_path and other
// settings may be given as parameters) and applies pending migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "timstack-directory"
	}
	// Search statements are prepared and cached by pgx; a generic plan cannot see how selective a prefix
	// range or an id list is and picks scans over the whole index tables. Plan every execution with its
	// values instead (planning costs about a millisecond; a bad plan costs 100x that).
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	// Every statement of the store is a set of index lookups; JIT compiling one (when the planner's
	// estimate passes jit_above_cost, as it does for the bulk load's lookups on tables without
	// statistics) took 50-200 ms for statements that run in 3 ms without it, and made a full-scale
	// bulk load 100 s slower.
	if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: migrate: %w", err)
	}
	var inBulk bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM kv WHERE key = $1)`, bulkLoadKey).Scan(&inBulk); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	s.bulk.Store(inBulk)
	return s, nil
}

// migrate applies pending migrations in one transaction under an advisory lock, so concurrent Opens of
// the same database apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := core.Migrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		applied := map[int]bool{}
		for _, v := range versions {
			applied[int(v)] = true
		}
		for _, m := range ms {
			if applied[m.Version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil { // no arguments: simple protocol, many statements
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: postgres: %w", err)
}

// Put creates or replaces resources in one transaction. A resource given several times in one call is
// written once per occurrence, in order (occurrence k goes into round k).
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
	occ := make(map[index.Ref]int, len(rs))
	var rounds [][]int
	for i, r := range rs {
		key := index.Ref{Type: r.Type, ID: r.ID}
		k := occ[key]
		occ[key]++
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], i)
	}
	out := make([]index.Resource, len(rs))
	written := make([]index.Ref, 0, len(occ))
	for ref := range occ {
		written = append(written, ref)
	}
	var bulk bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if bulk, err = s.inBulk(ctx, tx); err != nil {
			return err
		}
		if bulk {
			return s.putBulk(ctx, tx, rs, rounds, now, out)
		}
		if err := lockChainRows(ctx, tx, written); err != nil {
			return err
		}
		for _, round := range rounds {
			if err := s.putRound(ctx, tx, rs, round, now, out); err != nil {
				return err
			}
		}
		return refreshChainRows(ctx, tx, written)
	})
	if err != nil {
		return nil, wrap(err)
	}
	if bulk {
		s.targets.remember(rs) // committed: what a query would now see
	}
	return out, nil
}

// putRound writes rs[i] for i in round (no key twice): upsert the resource rows, drop the old index rows
// of the ones that existed, then write the new index rows.
func (s *Store) putRound(ctx context.Context, tx pgx.Tx, rs []index.Resource, round []int, now time.Time, out []index.Resource) error {
	// a fixed lock order (type, id) keeps concurrent Puts of overlapping sets from deadlocking
	sort.Slice(round, func(a, b int) bool {
		ra, rb := rs[round[a]], rs[round[b]]
		if ra.Type != rb.Type {
			return ra.Type < rb.Type
		}
		return ra.ID < rb.ID
	})
	types := make([]string, len(round))
	ids := make([]string, len(round))
	jsons := make([][]byte, len(round))
	for j, i := range round {
		types[j], ids[j], jsons[j] = rs[i].Type, rs[i].ID, nonNil(rs[i].JSON)
	}
	rows, err := tx.Query(ctx, `INSERT INTO resources (type, id, version_id, last_updated, json)
SELECT t, i, 1, $3, j FROM unnest($1::text[], $2::text[], $4::bytea[]) WITH ORDINALITY AS u(t, i, j, n) ORDER BY n
ON CONFLICT (type, id) DO UPDATE SET version_id = resources.version_id + 1, last_updated = excluded.last_updated, json = excluded.json
RETURNING type, id, version_id`, types, ids, now, jsons)
	if err != nil {
		return err
	}
	versions := make(map[index.Ref]int64, len(round))
	var oldTypes, oldIDs []string
	var key index.Ref
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&key.Type, &key.ID, &v}, func() error {
		versions[key] = v
		if v > 1 {
			oldTypes, oldIDs = append(oldTypes, key.Type), append(oldIDs, key.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	tables := core.Tables()
	if len(oldIDs) > 0 {
		var b pgx.Batch
		for _, t := range tables {
			b.Queue(`DELETE FROM `+t.Name+` WHERE (type, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, oldTypes, oldIDs)
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
	}
	upTo := 0 // rows to write, at most (before duplicates are dropped)
	for _, i := range round {
		upTo += len(rs[i].Rows) + 1
	}
	var tabs [core.NumTables][][]any
	var copies copyTables
	for _, i := range round {
		r := rs[i]
		key := index.Ref{Type: r.Type, ID: r.ID}
		v, ok := versions[key]
		if !ok {
			return fmt.Errorf("%s/%s: no version returned", r.Type, r.ID)
		}
		r.VersionID, r.LastUpdated = v, now
		if upTo >= copyThreshold {
			core.EachRow(r, func(tab int, row *index.Row) { copies.add(r, tab, row) })
		} else {
			core.Encode(&tabs, r)
		}
		out[i] = index.Resource{Type: r.Type, ID: r.ID, VersionID: v, LastUpdated: now}
	}
	if upTo >= copyThreshold {
		return copies.copy(ctx, tx)
	}
	return insertRows(ctx, tx, &tabs)
}

// copyTables collects index rows in PostgreSQL's binary COPY format, one stream per table, encoded here
// straight from the rows: pgx's CopyFrom looked up an encode plan for every value, and Encode's []any
// rows boxed every string; both were a fifth of an import's CPU on the goroutine that stores.
type copyTables struct {
	streams [core.NumTables][]byte
	keys    paramKeys
}

// paramKeys remembers core.ParamKey per (type, param): a batch has a few dozen pairs and a million rows.
type paramKeys map[[2]string]int32

func (k *paramKeys) key(typ, param string) int32 {
	if *k == nil {
		*k = paramKeys{}
	}
	v, ok := (*k)[[2]string{typ, param}]
	if !ok {
		v = core.ParamKey(typ, param)
		(*k)[[2]string{typ, param}] = v
	}
	return v
}

// pgColumns returns the columns of the index table tab as this engine writes them: core.Tables' plus
// the string table's param_key (core.ParamKey), which only the PostgreSQL schema has.
func pgColumns(tab int) []string {
	cols := core.Tables()[tab].Columns
	if tab == core.TabString {
		cols = append(cols[:len(cols):len(cols)], "param_key")
	}
	return cols
}

// copyColumns is the number of columns of each table.
var copyColumns = func() (n [core.NumTables]uint16) {
	for i := range core.NumTables {
		n[i] = uint16(len(pgColumns(i)))
	}
	return n
}()

// copyHeader starts a binary COPY stream: signature, flags, header extension length.
const copyHeader = "PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// add appends row, a row of r in table tab (core.EachRow), with the columns of core.Values.
func (c *copyTables) add(r index.Resource, tab int, row *index.Row) {
	b := c.streams[tab]
	if len(b) == 0 {
		b = append(b, copyHeader...)
	}
	str := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	num := func(u uint64) {
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, u)
	}
	b = binary.BigEndian.AppendUint16(b, copyColumns[tab])
	str(r.Type)
	str(r.ID)
	switch tab {
	case core.TabToken:
		str(row.Param)
		str(row.System)
		str(row.Code)
		str(row.Display)
	case core.TabString:
		str(row.Param)
		str(row.Value)
		b = binary.BigEndian.AppendUint32(b, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(c.keys.key(r.Type, row.Param)))
	case core.TabReference:
		str(row.Param)
		str(row.RefType)
		str(row.RefID)
	case core.TabDate:
		lo, hi := core.DateRange(row.Low, row.High)
		str(row.Param)
		num(uint64(lo))
		num(uint64(hi))
	case core.TabNumber:
		str(row.Param)
		num(math.Float64bits(row.Number))
	case core.TabGeo:
		str(row.Param)
		num(math.Float64bits(row.Lat))
		num(math.Float64bits(row.Lon))
	case core.TabText:
		str(row.Value)
	}
	c.streams[tab] = b
}

// copy sends every table's stream with one COPY each.
func (c *copyTables) copy(ctx context.Context, tx pgx.Tx) error {
	for tab, t := range core.Tables() {
		b := c.streams[tab]
		if len(b) == 0 {
			continue
		}
		b = binary.BigEndian.AppendUint16(b, 0xffff) // end of data
		columns := pgColumns(tab)
		cols := make([]string, len(columns))
		for i, col := range columns {
			cols[i] = pgx.Identifier{col}.Sanitize()
		}
		sql := "COPY " + pgx.Identifier{t.Name}.Sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(b), sql); err != nil {
			return err
		}
	}
	return nil
}

// insertRows writes a few index rows with one batch of multi-row INSERTs.
func insertRows(ctx context.Context, tx pgx.Tx, tabs *[core.NumTables][][]any) error {
	tables := core.Tables()
	var b pgx.Batch
	for i, t := range tables {
		rows := tabs[i]
		if len(rows) == 0 {
			continue
		}
		bld := &core.Builder{D: core.Postgres}
		bld.W("INSERT INTO ", t.Name, " (", strings.Join(pgColumns(i), ", "), ") VALUES ")
		for j, row := range rows {
			if j > 0 {
				bld.W(", ")
			}
			if i == core.TabString {
				row = append(row[:len(row):len(row)], core.ParamKey(row[0].(string), row[2].(string)))
			}
			bld.W("(")
			for k, v := range row {
				if k > 0 {
					bld.W(", ")
				}
				bld.Arg(v)
			}
			bld.W(")")
		}
		b.Queue(bld.SQL(), bld.Args...)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &b).Close()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Get returns one resource (without Rows).
func (s *Store) Get(ctx context.Context, typ, id string) (index.Resource, error) {
	r := index.Resource{Type: typ, ID: id}
	err := s.pool.QueryRow(ctx, `SELECT version_id, last_updated, json FROM resources WHERE type = $1 AND id = $2`, typ, id).Scan(&r.VersionID, &r.LastUpdated, &r.JSON)
	if errors.Is(err, pgx.ErrNoRows) {
		return index.Resource{}, fmt.Errorf("store: %s/%s: %w", typ, id, core.ErrNotFound)
	}
	if err != nil {
		return index.Resource{}, wrap(err)
	}
	r.LastUpdated = r.LastUpdated.UTC()
	return r, nil
}

// getManySQL reads the resources of one type among the ids $2 with a primary-key probe per id, whatever
// the planner statistics say. The plain `type = $1 AND id = ANY($2)` was planned as a bitmap scan of the
// whole type filtered by id when the statistics were older than the table: during a bulk load, where the
// writer reads the Practitioners its roles link to, that read all 50k Practitioners of a tenth of full
// scale for every batch of 1,000 roles (32 µs per id instead of a few). OFFSET 0 keeps the lateral
// subquery from being flattened into a join the planner could hash.
const getManySQL = `SELECT r.id, r.version_id, r.last_updated, r.json
FROM unnest($2::text[]) AS k(id)
CROSS JOIN LATERAL (SELECT id, version_id, last_updated, json FROM resources WHERE type = $1 AND id = k.id OFFSET 0) r`

// GetMany returns the resources named by refs in their order, skipping missing ones.
func (s *Store) GetMany(ctx context.Context, refs []index.Ref) ([]index.Resource, error) {
	types, ids := core.GroupRefs(refs)
	found := make(map[index.Ref]index.Resource, len(refs))
	for _, typ := range types {
		rows, err := s.pool.Query(ctx, getManySQL, typ, ids[typ])
		if err != nil {
			return nil, wrap(err)
		}
		r := index.Resource{Type: typ}
		_, err = pgx.ForEachRow(rows, []any{&r.ID, &r.VersionID, &r.LastUpdated, &r.JSON}, func() error {
			x := r
			x.LastUpdated = x.LastUpdated.UTC()
			x.JSON = append([]byte(nil), r.JSON...)
			found[index.Ref{Type: typ, ID: x.ID}] = x
			return nil
		})
		if err != nil {
			return nil, wrap(err)
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		bulk, err := s.inBulk(ctx, tx)
		if err != nil {
			return wrap(err)
		}
		if !bulk {
			if err := lockChainRows(ctx, tx, []index.Ref{{Type: typ, ID: id}}); err != nil {
				return wrap(err)
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM resources WHERE type = $1 AND id = $2`, typ, id)
		if err != nil {
			return wrap(err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: %s/%s: %w", typ, id, core.ErrNotFound)
		}
		var b pgx.Batch
		for _, t := range core.Tables() {
			b.Queue(`DELETE FROM `+t.Name+` WHERE type = $1 AND id = $2`, typ, id)
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return wrap(err)
		}
		if bulk {
			s.targets.forget(typ, id)
			// The roots of a deleted target keep its chain rows until EndBulkLoad recomputes them.
			if isChainTarget(typ) {
				return wrap(markChainRowsStale(ctx, tx))
			}
			return nil
		}
		return wrap(refreshChainRows(ctx, tx, []index.Ref{{Type: typ, ID: id}}))
	})
	return err
}

// chainRowsLock is the pg_advisory_xact_lock key that serialises writes that may change chain rows
// ("timchain" in hex).
const chainRowsLock = 0x74696d636861696e

// lockChainRows waits for other writers of chain rows (see core.TouchesChainRows) when refs may change
// them; call it first in the transaction.
func lockChainRows(ctx context.Context, tx pgx.Tx, refs []index.Ref) error {
	if !core.TouchesChainRows(refs) {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(chainRowsLock))
	return err
}

// refreshChainRows recomputes the chain rows (core.ChainRows) the written or deleted resources change.
func refreshChainRows(ctx context.Context, tx pgx.Tx, written []index.Ref) error {
	if !core.TouchesChainRows(written) {
		return nil
	}
	// A refresh reads and writes the rows of a batch's roots and targets through the (type, id) and
	// reference indexes. Statistics of tables that are still filling (or were analysed empty by a
	// migration) made the planner join whole tables instead, per batch: 1.2k instead of 3k resources/s on
	// a tenth of the data set. Index nested loops are right for any batch size.
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off`); err != nil {
		return err
	}
	query := func(sql string, args ...any) ([]string, error) {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	exec := func(sql string, args ...any) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	if err := core.RefreshChainRows(core.Postgres, written, query, exec); err != nil {
		return fmt.Errorf("chain rows: %w", err)
	}
	return nil
}

// Search evaluates q.
func (s *Store) Search(ctx context.Context, q index.Query) (index.Result, error) {
	bulk, err := s.inBulk(ctx, s.pool)
	if err != nil {
		return index.Result{}, wrap(err)
	}
	sql := func(withTotal bool) (string, string, []any, error) {
		if bulk {
			return core.SearchSQLWithoutChainRows(core.Postgres, q, withTotal)
		}
		if withTotal {
			return core.SearchWithTotalSQL(core.Postgres, q)
		}
		return core.SearchSQL(core.Postgres, q)
	}
	page, count, args, err := sql(false)
	if err != nil {
		return index.Result{}, fmt.Errorf("store: %w", err)
	}
	res := index.Result{Total: -1}
	if q.Total && q.Limit > 0 {
		res.Total = 0 // stays 0 when the first page is empty
	}
	countOnly := func(db interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) error {
		return db.QueryRow(ctx, count, args[:len(args)-2]...).Scan(&res.Total)
	}
	switch {
	case q.Total && q.Limit > 0:
		// One statement gives the page and the total (count(*) OVER ()), so both see one snapshot and the
		// matches are computed once; only a page past the end needs the separate count.
		withTotal, _, wargs, err := sql(true)
		if err != nil {
			return index.Result{}, fmt.Errorf("store: %w", err)
		}
		rows, err := s.pool.Query(ctx, withTotal, wargs...)
		if err != nil {
			return index.Result{}, wrap(err)
		}
		for rows.Next() {
			var id string
			var total int64
			if err := rows.Scan(&id, &total); err != nil {
				rows.Close()
				return index.Result{}, wrap(err)
			}
			res.IDs = append(res.IDs, id)
			res.Total = int(total)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return index.Result{}, wrap(err)
		}
		// An empty first page means no match at all (same statement, same snapshot); only an empty page
		// past the first can hide matches before it.
		if len(res.IDs) == 0 && q.Offset > 0 {
			if err := countOnly(s.pool); err != nil {
				return index.Result{}, wrap(err)
			}
		}
	case q.Total:
		if err := countOnly(s.pool); err != nil {
			return index.Result{}, wrap(err)
		}
	case q.Limit > 0:
		rows, err := s.pool.Query(ctx, page, args...)
		if err != nil {
			return index.Result{}, wrap(err)
		}
		if res.IDs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return index.Result{}, wrap(err)
		}
	}
	return res, nil
}

// References returns the targets of the reference rows of (typ, ids) for param ("" = all).
func (s *Store) References(ctx context.Context, typ string, ids []string, param string) ([]index.Ref, error) {
	if len(ids) == 0 {
		return []index.Ref{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ref_type, ref_id FROM idx_reference
WHERE type = $1 AND id = ANY($2::text[]) AND ($3 = '' OR param = $3) ORDER BY ref_type, ref_id`, typ, ids, param)
	if err != nil {
		return nil, wrap(err)
	}
	return collectRefs(rows)
}

// ReferencedBy returns the sourceType resources whose sourceParam ("" = any) points at any of targets.
func (s *Store) ReferencedBy(ctx context.Context, sourceType, sourceParam string, targets []index.Ref) ([]index.Ref, error) {
	if len(targets) == 0 {
		return []index.Ref{}, nil
	}
	tt := make([]string, len(targets))
	ti := make([]string, len(targets))
	for i, t := range targets {
		tt[i], ti[i] = t.Type, t.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT r.type, r.id FROM idx_reference r
JOIN unnest($3::text[], $4::text[]) AS t(ref_type, ref_id) ON r.ref_id = t.ref_id AND r.ref_type = t.ref_type
WHERE r.type = $1 AND ($2 = '' OR r.param = $2) ORDER BY r.type, r.id`, sourceType, sourceParam, tt, ti)
	if err != nil {
		return nil, wrap(err)
	}
	return collectRefs(rows)
}

func collectRefs(rows pgx.Rows) ([]index.Ref, error) {
	out := []index.Ref{}
	var r index.Ref
	_, err := pgx.ForEachRow(rows, []any{&r.Type, &r.ID}, func() error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// Count returns the number of resources of typ.
func (s *Store) Count(ctx context.Context, typ string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM resources WHERE type = $1`, typ).Scan(&n); err != nil {
		return 0, wrap(err)
	}
	return n, nil
}

// GetKV returns the value stored under key.
func (s *Store) GetKV(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store: key %q: %w", key, core.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(err)
	}
	return v, nil
}

// PutKV stores value under key.
func (s *Store) PutKV(ctx context.Context, key string, value []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, nonNil(value))
	return wrap(err)
}

// Analyze refreshes the planner statistics; call it after a bulk load (autovacuum does it eventually).
func (s *Store) Analyze(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `ANALYZE`)
	return wrap(err)
}
