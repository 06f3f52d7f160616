package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
)

// bulkLoadKey is the kv entry that marks an unfinished bulk load; its value lists the dropped indexes'
// definitions (pg_get_indexdef), so EndBulkLoad recreates exactly what was there, whatever later
// migrations add.
const bulkLoadKey = "store.postgres.bulk-load"

// bulkAutovacuumKey lists, while a bulk load runs, the index tables it turned autovacuum off for (those
// without an autovacuum_enabled setting of their own); EndBulkLoad resets them.
const bulkAutovacuumKey = bulkLoadKey + ".autovacuum"

// bulkChainRowsKey is set by BeginBulkLoad: the load's writes compute the chain rows of the roots they
// write (putBulk), so EndBulkLoad recomputes them only when bulkChainStaleKey says a write may have left
// some out of date. A load begun without it (by an older version) gets them all recomputed.
const bulkChainRowsKey = bulkLoadKey + ".chain-rows"

// bulkChainStaleKey is set by a write of the bulk load after which some chain rows may be out of date: a
// root linked to a target that was not stored yet, or a target was written or deleted while roots that
// link to it were stored already.
const bulkChainStaleKey = bulkLoadKey + ".chain-rows-stale"

// bulkInsertVacuumKey lists, while a bulk load runs, the tables it turned the insert-triggered vacuums
// off for; EndBulkLoad resets them.
const bulkInsertVacuumKey = bulkLoadKey + ".insert-vacuum"

// ErrNotEmpty is returned (wrapped) by BeginBulkLoad when the store already holds resources.
var ErrNotEmpty = errors.New("store is not empty")

// bulkKeep tells the secondary indexes a bulk load keeps: the per-resource (type, id) indexes (appended in
// id order, cheap, and what replacing or deleting a resource needs) and both reference indexes (the
// writer looks up, per batch, which stored roles and services link to new Practitioners, Organizations
// and Locations, to rebuild their _text rows). The value indexes (token, string, text, date, geo, number)
// are what makes loading slow: each index row is a random B-tree insert. (Dropping the (type, id) indexes
// too took 8 % off the load of the full data set, but building them afterwards cost 2.5 times that.)
func bulkKeep(name string) bool {
	return strings.HasSuffix(name, "_resource") || strings.HasPrefix(name, "idx_reference_")
}

// BeginBulkLoad prepares an empty store for a large initial import: it drops the value indexes of the
// index tables, so the import's COPYs append rows without maintaining them (about 2.5x the rate on the
// tenth data set), and records their definitions. EndBulkLoad recreates them. Until then every search
// stays correct but reads whole tables, so a directory must not serve from a store in a bulk load, and
// one process writes to it (the writes' chain rows come from what that process wrote before). A store
// that already holds resources is refused with ErrNotEmpty, unless it is in an unfinished bulk load, which
// is then continued (an interrupted import resumes with --skip).
func (s *Store) BeginBulkLoad(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		var marked bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM kv WHERE key = $1)`, bulkLoadKey).Scan(&marked); err != nil {
			return err
		}
		if marked {
			return nil
		}
		var nonEmpty bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM resources)`).Scan(&nonEmpty); err != nil {
			return err
		}
		if nonEmpty {
			return fmt.Errorf("bulk load: %w", ErrNotEmpty)
		}
		rows, err := tx.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname LIKE 'idx\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1`)
		if err != nil {
			return err
		}
		type index struct{ Name, Def string }
		var all []index
		var x index
		if _, err := pgx.ForEachRow(rows, []any{&x.Name, &x.Def}, func() error {
			all = append(all, x)
			return nil
		}); err != nil {
			return err
		}
		var drop []string
		var defs []string
		for _, ix := range all {
			if !bulkKeep(ix.Name) {
				drop = append(drop, pgx.Identifier{ix.Name}.Sanitize())
				defs = append(defs, ix.Def)
			}
		}
		marker, err := json.Marshal(defs)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2), ($3, '')`, bulkLoadKey, marker, bulkChainRowsKey); err != nil {
			return err
		}
		if len(drop) > 0 {
			if _, err := tx.Exec(ctx, `DROP INDEX `+strings.Join(drop, ", ")); err != nil {
				return err
			}
		}
		// Autovacuum would analyse the growing index tables again and again and, as they only grow,
		// vacuum them whole at every fifth more rows (autovacuum_vacuum_insert_scale_factor): 8 % of the
		// machine's CPU during a load of the tenth data set. EndBulkLoad analyses once at the end and turns
		// it back on. Not for the tables the writer reads during the load (resources by id, the reference
		// rows of new targets): without statistics the planner took 1,000 ids for a large part of the
		// table and read all 700k Locations per batch instead of probing the primary key.
		if err := suspendTableOption(ctx, tx, `relname LIKE 'idx\_%' AND relname <> 'idx_reference'`, "autovacuum_enabled", "false", bulkAutovacuumKey); err != nil {
			return err
		}
		// The tables the writer reads keep autovacuum for its statistics, but not for the vacuums that
		// every fifth more inserted rows trigger: each read the growing table again (four times the
		// resources table in a full-scale load, while both cores were busy with it). EndBulkLoad resets
		// them; the first vacuum after the load sets the visibility map once.
		return suspendTableOption(ctx, tx, `relname IN ('resources', 'idx_reference')`, "autovacuum_vacuum_insert_threshold", "-1", bulkInsertVacuumKey)
	})
	if err != nil {
		return wrap(err)
	}
	s.bulk.Store(true)
	return nil
}

// indexMemory is the maintenance_work_mem of EndBulkLoad's connections (session settings only). Index
// builds sort whole tables; at full scale 2 GB instead of 512 MB made no difference (42 s and 41 s for the
// token index), so the smaller value stays.
const indexMemory = "512MB"

// buildIndexes creates the indexes defs (pg_get_indexdef texts) with IF NOT EXISTS, largest table first,
// one at a time on each of conns (with PostgreSQL's parallel workers too). report is called after each.
func buildIndexes(ctx context.Context, conns []*pgxpool.Conn, defs []string, report func(string, time.Duration)) error {
	type build struct {
		stmt string
		size int64
	}
	builds := make([]build, 0, len(defs))
	for _, def := range defs {
		// pg_get_indexdef gives "CREATE [UNIQUE] INDEX name ON table USING …"; IF NOT EXISTS makes a rerun
		// skip what an interrupted run already built.
		stmt, ok := strings.CutPrefix(def, "CREATE INDEX ")
		if !ok {
			return fmt.Errorf("store: postgres: bulk load: unexpected index definition %q", def)
		}
		var size int64
		if err := conns[0].QueryRow(ctx, `SELECT coalesce(pg_relation_size(to_regclass($1)), 0)`, indexTable(def)).Scan(&size); err != nil {
			return wrap(err)
		}
		builds = append(builds, build{"CREATE INDEX IF NOT EXISTS " + stmt, size})
	}
	sort.SliceStable(builds, func(i, j int) bool { return builds[i].size > builds[j].size })
	queue := make(chan string, len(builds))
	for _, b := range builds {
		queue <- b.stmt
	}
	close(queue)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(conns))
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c *pgxpool.Conn) {
			defer wg.Done()
			for stmt := range queue {
				t0 := time.Now()
				if _, err := c.Exec(ctx, stmt); err != nil {
					errs <- wrap(fmt.Errorf("bulk load: recreate index: %w", err))
					cancel()
					return
				}
				name, _, _ := strings.Cut(strings.TrimPrefix(stmt, "CREATE INDEX IF NOT EXISTS "), " ")
				report("index "+name, time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when closed empty
}

// indexTable returns the table (as written, maybe schema-qualified) of a pg_get_indexdef text.
func indexTable(def string) string {
	_, rest, _ := strings.Cut(def, " ON ")
	table, _, _ := strings.Cut(strings.TrimPrefix(rest, "ONLY "), " ")
	return table
}

// inBulk reports whether the store is in a bulk load. Only a store that was (BeginBulkLoad, or Open
// finding the mark) asks the database, so one opened while another process loaded sees the end of it.
func (s *Store) inBulk(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, error) {
	if !s.bulk.Load() {
		return false, nil
	}
	var marked bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM kv WHERE key = $1)`, bulkLoadKey).Scan(&marked); err != nil {
		return false, err
	}
	if !marked {
		s.bulk.Store(false)
		s.targets.clear()
	}
	return marked, nil
}

// EndBulkLoad finishes a bulk load: it recreates the indexes BeginBulkLoad dropped (each one sorted once
// over the loaded rows), refreshes the planner statistics and clears the mark. Without an unfinished bulk
// load it does nothing. It is safe to run again after an interruption.
func (s *Store) EndBulkLoad(ctx context.Context) error {
	return s.EndBulkLoadTimed(ctx, nil)
}

// EndBulkLoadTimed is EndBulkLoad reporting the duration of each of its phases (chain rows, each index
// build, statistics) to report, when not nil, as they finish (one call at a time).
func (s *Store) EndBulkLoadTimed(ctx context.Context, report func(phase string, took time.Duration)) error {
	var reporting sync.Mutex // phases overlap: one call at a time
	timed := func(phase string, took time.Duration) {
		if report != nil {
			reporting.Lock()
			report(phase, took)
			reporting.Unlock()
		}
	}
	lap := time.Now()
	done := func(phase string) {
		timed(phase, time.Since(lap))
		lap = time.Now()
	}
	v, err := s.GetKV(ctx, bulkLoadKey)
	if errors.Is(err, core.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var defs []string
	if err := json.Unmarshal(v, &defs); err != nil {
		return fmt.Errorf("store: postgres: bulk load mark: %w", err)
	}
	// Two connections: the statements of each use a core (and parallel workers), and on two cores two
	// builds at a time took 12.4 s instead of 14.5 s for the tenth data set.
	conns := make([]*pgxpool.Conn, 2)
	for i := range conns {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return wrap(err)
		}
		defer c.Release()
		if _, err := c.Exec(ctx, `SET maintenance_work_mem = '`+indexMemory+`'`); err != nil {
			return wrap(err)
		}
		defer func() { _, _ = c.Exec(context.Background(), `RESET maintenance_work_mem`) }()
		if _, err := c.Exec(ctx, `SET max_parallel_maintenance_workers = 0`); err != nil {
			return wrap(err)
		}
		defer func() { _, _ = c.Exec(context.Background(), `RESET max_parallel_maintenance_workers`) }()
		conns[i] = c
	}
	conn := conns[0]
	var byPut, stale bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM kv WHERE key = $1), EXISTS (SELECT 1 FROM kv WHERE key = $2)`, bulkChainRowsKey, bulkChainStaleKey).Scan(&byPut, &stale); err != nil {
		return wrap(err)
	}
	if !byPut || stale {
		// The chain rows, all at once, before the value indexes, so they are built over them once.
		// Rerun after an interruption, it recomputes them. The joins read whole tables: the planner
		// needs their statistics first (otherwise it nested-loops over seq scans: 9 minutes at a tenth
		// of full scale instead of seconds). Building the indexes of the other tables meanwhile, on the
		// second connection, made the chain rows take 77 s instead of about 35 at full scale and saved
		// nothing.
		if _, err := conn.Exec(ctx, `ANALYZE idx_reference, idx_string, idx_token`); err != nil {
			return wrap(err)
		}
		done("analyze-chain-inputs")
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, st := range core.RebuildChainRows(core.Postgres) {
				if _, err := tx.Exec(ctx, st.SQL(), st.Args...); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `DELETE FROM kv WHERE key = $1`, bulkChainStaleKey)
			return err
		}); err != nil {
			return wrap(fmt.Errorf("bulk load: chain rows: %w", err))
		}
		done("chain-rows")
	}
	if err := buildIndexes(ctx, conns, defs, timed); err != nil {
		return err
	}
	done("indexes")
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		return wrap(err)
	}
	done("analyze")
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// A load begun by an older version may lack either list: nothing to reset then.
		if err := restoreTableOption(ctx, tx, bulkAutovacuumKey, "autovacuum_enabled"); err != nil {
			return err
		}
		if err := restoreTableOption(ctx, tx, bulkInsertVacuumKey, "autovacuum_vacuum_insert_threshold"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM kv WHERE key = ANY($1)`, []string{bulkLoadKey, bulkAutovacuumKey, bulkInsertVacuumKey, bulkChainRowsKey, bulkChainStaleKey})
		return err
	}); err != nil {
		return wrap(err)
	}
	s.bulk.Store(false)
	s.targets.clear()
	return nil
}

// suspendTableOption sets the storage parameter option to value on the tables of the schema that match
// where (a condition on pg_class) and have no setting of their own for it (an operator's is kept), and
// records them under key for restoreTableOption.
func suspendTableOption(ctx context.Context, tx pgx.Tx, where, option, value, key string) error {
	rows, err := tx.Query(ctx, `SELECT relname FROM pg_class
WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND `+where+`
  AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(reloptions, '{}')) o WHERE o LIKE $1)
ORDER BY 1`, strings.ReplaceAll(option, "_", `\_`)+"=%")
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{t}.Sanitize()+` SET (`+option+` = `+value+`)`); err != nil {
			return err
		}
	}
	list, err := json.Marshal(tables)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)`, key, list)
	return err
}

// restoreTableOption resets option on the tables suspendTableOption recorded under key (none when the
// key is absent).
func restoreTableOption(ctx context.Context, tx pgx.Tx, key, option string) error {
	var list []byte
	err := tx.QueryRow(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&list)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	var tables []string
	if err := json.Unmarshal(list, &tables); err != nil {
		return fmt.Errorf("bulk load: %s mark: %w", option, err)
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{t}.Sanitize()+` RESET (`+option+`)`); err != nil {
			return err
		}
	}
	return nil
}

// putBulk is Put in a bulk load: the resources with the chain rows of their roots computed here from the
// targets in rs, remembered from this process's earlier writes (chainTargetMemory) or stored
// (core.WithChainRows), instead of the joins refreshChainRows runs per write
// (without statistics on the growing tables those read whole tables) or EndBulkLoad runs over
// everything (50 s of a full-scale load). What this cannot see is marked for EndBulkLoad
// (bulkChainStaleKey): a root's target not stored yet, and targets written while roots linking to them
// were stored already. Concurrent writes of a root and its new target cannot both miss each other: the
// root's write either sees the committed target or marks it unseen.
func (s *Store) putBulk(ctx context.Context, tx pgx.Tx, rs []index.Resource, rounds [][]int, now time.Time, out []index.Resource) error {
	withChains, stale, err := core.WithChainRows(rs, func(target string, ids, params []string) (map[string]core.ChainTarget, error) {
		found, missing := s.targets.lookup(target, ids, params)
		if len(missing) == 0 {
			return found, nil
		}
		stored, err := chainTargets(ctx, tx, target, missing, params)
		if err != nil {
			return nil, err
		}
		for id, t := range stored {
			found[id] = t
		}
		return found, nil
	})
	if err != nil {
		return fmt.Errorf("chain rows: %w", err)
	}
	for _, round := range rounds {
		if err := s.putRound(ctx, tx, withChains, round, now, out); err != nil {
			return err
		}
	}
	if !stale {
		if stale, err = linkedByStoredRoots(ctx, tx, rs, out); err != nil {
			return fmt.Errorf("chain rows: %w", err)
		}
	}
	if stale {
		return markChainRowsStale(ctx, tx)
	}
	return nil
}

// chainTargets reads the stored targets among ids for core.WithChainRows. The index tables have no
// statistics during a bulk load (autovacuum is off for them), and the planner answered "these 1,000 ids"
// from the rows of every target of the type (all 280k string rows of the practitioners of a tenth of full
// scale: 100 ms instead of 7). The lateral subqueries run per target, each a probe of a (type, id) index;
// the strings come as two arrays in the same order, from one probe of idx_string. Both OFFSET 0 are
// there for the same reason: without statistics the planner hashed the EXISTS (one scan of all active
// markers of idx_token, 67k rows at a tenth of full scale, per batch) and read the targets by a bitmap
// scan of their whole type filtered by id (getManySQL). With the two, the load phase of the full data
// set took 146 s instead of 210.
func chainTargets(ctx context.Context, tx pgx.Tx, target string, ids, params []string) (map[string]core.ChainTarget, error) {
	rows, err := tx.Query(ctx, `SELECT r.id,
  EXISTS (SELECT 1 FROM idx_token a WHERE a.type = r.type AND a.id = r.id AND a.param = 'active' AND a.code = 'true' OFFSET 0),
  coalesce(n.params, '{}'), coalesce(n.vals, '{}')
FROM unnest($2::text[]) AS k(id)
CROSS JOIN LATERAL (SELECT type, id FROM resources WHERE type = $1 AND id = k.id OFFSET 0) r
CROSS JOIN LATERAL (SELECT array_agg(s.param ORDER BY s.param, s.value) AS params, array_agg(s.value ORDER BY s.param, s.value) AS vals
  FROM idx_string s WHERE s.type = r.type AND s.id = r.id AND s.param = ANY($3::text[])) n`, target, ids, params)
	if err != nil {
		return nil, err
	}
	out := make(map[string]core.ChainTarget, len(ids))
	var id string
	var active bool
	var ps, vs []string
	if _, err := pgx.ForEachRow(rows, []any{&id, &active, &ps, &vs}, func() error {
		if len(ps) != len(vs) {
			return fmt.Errorf("chain rows of %s/%s: %d parameters for %d values", target, id, len(ps), len(vs))
		}
		t := core.ChainTarget{Active: active}
		for i := range ps {
			t.Strings = append(t.Strings, index.Row{Param: ps[i], Type: index.TypeString, Value: vs[i]})
		}
		out[id] = t
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// linkedByStoredRoots reports whether chain targets among rs were stored before (out holds their new
// versions) or are linked to by roots stored before that are not among rs: those roots' chain rows may
// be out of date.
func linkedByStoredRoots(ctx context.Context, tx pgx.Tx, rs, out []index.Resource) (bool, error) {
	for _, cr := range core.AllChainRows() {
		var targets, roots []string
		for i, r := range rs {
			switch r.Type {
			case cr.Target:
				if out[i].VersionID > 1 {
					return true, nil
				}
				targets = append(targets, r.ID)
			case cr.Root:
				roots = append(roots, r.ID)
			}
		}
		if len(targets) == 0 {
			continue
		}
		var linked bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM idx_reference
WHERE ref_id = ANY($1::text[]) AND ref_type = $2 AND param = $3 AND type = $4 AND NOT (id = ANY($5::text[])))`,
			targets, cr.Target, cr.Param, cr.Root, roots).Scan(&linked); err != nil {
			return false, err
		}
		if linked {
			return true, nil
		}
	}
	return false, nil
}

// markChainRowsStale tells EndBulkLoad to recompute every chain row. It is the last statement of a
// write, so the row lock of the mark is held only until the commit.
func markChainRowsStale(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, '') ON CONFLICT (key) DO NOTHING`, bulkChainStaleKey)
	return err
}

// isChainTarget reports whether typ is the target of a chain with chain rows.
func isChainTarget(typ string) bool { return chainStringParams(typ) != nil }
