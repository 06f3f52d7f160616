package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/timstack/timstack/directory/store/internal/core"
)

// bulkLoadKey is the kv entry that marks an unfinished bulk load; its value lists the dropped indexes'
// definitions (pg_get_indexdef), so EndBulkLoad recreates exactly what was there, whatever later
// migrations add.
const bulkLoadKey = "store.postgres.bulk-load"

// ErrNotEmpty is returned (wrapped) by BeginBulkLoad when the store already holds resources.
var ErrNotEmpty = errors.New("store is not empty")

// bulkKeep tells the secondary indexes a bulk load keeps: the per-resource (type, id) indexes (appended in
// id order, cheap, and what replacing or deleting a resource needs) and both reference indexes (the
// writer looks up, per batch, which stored roles and services link to new Practitioners, Organizations
// and Locations, to rebuild their _text rows). The value indexes (token, string, text, date, geo, number)
// are what makes loading slow: each index row is a random B-tree insert.
func bulkKeep(name string) bool {
	return strings.HasSuffix(name, "_resource") || strings.HasPrefix(name, "idx_reference_")
}

// BeginBulkLoad prepares an empty store for a large initial import: it drops the value indexes of the
// index tables, so the import's COPYs append rows without maintaining them (about 2.5x the rate on the
// tenth data set), and records their definitions. EndBulkLoad recreates them. Until then every search
// stays correct but reads whole tables, so a directory must not serve from a store in a bulk load. A store
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
		if _, err := tx.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)`, bulkLoadKey, marker); err != nil {
			return err
		}
		if len(drop) > 0 {
			if _, err := tx.Exec(ctx, `DROP INDEX `+strings.Join(drop, ", ")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err)
	}
	s.bulk.Store(true)
	return nil
}

// indexBuilders is the number of indexes EndBulkLoad builds at a time, each on its own connection (with
// PostgreSQL's parallel workers too). On the 2-core benchmark machine two at a time took 12.4 s instead
// of 14.5 s for the tenth data set: a build's phases that wait for writing leave the other the CPU.
const indexBuilders = 2

// buildIndexes creates the indexes defs (pg_get_indexdef texts) with IF NOT EXISTS, largest table first,
// indexBuilders at a time; conn is one of the connections.
func (s *Store) buildIndexes(ctx context.Context, conn *pgxpool.Conn, defs []string) error {
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
		_, rest, _ := strings.Cut(stmt, " ON ")
		table, _, _ := strings.Cut(rest, " ")
		var size int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(pg_relation_size(to_regclass($1)), 0)`, strings.TrimPrefix(table, "ONLY ")).Scan(&size); err != nil {
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
	errs := make(chan error, indexBuilders)
	var wg sync.WaitGroup
	for i := 0; i < indexBuilders; i++ {
		c := conn
		if i > 0 {
			var err error
			if c, err = s.pool.Acquire(ctx); err != nil {
				return wrap(err)
			}
			if _, err := c.Exec(ctx, `SET maintenance_work_mem = '512MB'`); err != nil {
				c.Release()
				return wrap(err)
			}
		}
		wg.Add(1)
		go func(c *pgxpool.Conn, own bool) {
			defer wg.Done()
			if own {
				defer func() {
					_, _ = c.Exec(context.Background(), `RESET maintenance_work_mem`)
					c.Release()
				}()
			}
			for stmt := range queue {
				if _, err := c.Exec(ctx, stmt); err != nil {
					errs <- wrap(fmt.Errorf("bulk load: recreate index: %w", err))
					cancel()
					return
				}
			}
		}(c, i > 0)
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when closed empty
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
	}
	return marked, nil
}

// EndBulkLoad finishes a bulk load: it recreates the indexes BeginBulkLoad dropped (each one sorted once
// over the loaded rows), refreshes the planner statistics and clears the mark. Without an unfinished bulk
// load it does nothing. It is safe to run again after an interruption.
func (s *Store) EndBulkLoad(ctx context.Context) error {
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
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return wrap(err)
	}
	defer conn.Release()
	// Index builds sort the whole table; more memory means fewer merge passes (session setting only).
	if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '512MB'`); err != nil {
		return wrap(err)
	}
	defer func() { _, _ = conn.Exec(context.Background(), `RESET maintenance_work_mem`) }()
	// The chain rows, all at once (writes in a bulk load leave them out), before the value indexes, so
	// they are built over them once. Rerun after an interruption, it recomputes them. The joins read whole
	// tables: the planner needs their statistics first (otherwise it nested-loops over seq scans: 9
	// minutes at a tenth of full scale instead of seconds).
	if _, err := conn.Exec(ctx, `ANALYZE idx_reference, idx_string, idx_token`); err != nil {
		return wrap(err)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, st := range core.RebuildChainRows(core.Postgres) {
			if _, err := tx.Exec(ctx, st.SQL(), st.Args...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return wrap(fmt.Errorf("bulk load: chain rows: %w", err))
	}
	if err := s.buildIndexes(ctx, conn, defs); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		return wrap(err)
	}
	if _, err = conn.Exec(ctx, `DELETE FROM kv WHERE key = $1`, bulkLoadKey); err != nil {
		return wrap(err)
	}
	s.bulk.Store(false)
	return nil
}
