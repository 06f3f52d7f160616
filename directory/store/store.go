// Package store keeps directory resources and their search index, and answers index.Query trees. Two
// engines implement Store: store/sqlite (modernc.org/sqlite, one file, for small deployments and tests) and
// store/postgres (pgx, for the full 2 M-resource directory). Both keep the JSON as received in a resources
// table and every search-parameter value in one index table per parameter type, and compile queries to SQL
// answered from B-tree indexes. store/storetest is the conformance suite both run.
package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/internal/core"
	"github.com/timstack/timstack/directory/store/postgres"
	"github.com/timstack/timstack/directory/store/sqlite"
)

// Store is the directory's storage. Implementations are safe for concurrent use.
type Store interface {
	// Put creates or replaces resources in one transaction: it assigns VersionID (previous+1, or 1) and
	// LastUpdated (the store clock, UTC, microsecond precision), and replaces all index rows. It maintains
	// the _lastUpdated date row itself. It returns the stored resources' metadata (Type, ID, VersionID,
	// LastUpdated) in input order; a resource given twice is written twice.
	Put(ctx context.Context, rs ...index.Resource) ([]index.Resource, error)
	// Get returns a resource without its Rows; ErrNotFound (wrapped) when absent.
	Get(ctx context.Context, typ, id string) (index.Resource, error)
	// GetMany returns the resources named by refs, in the order of refs, skipping missing ones.
	GetMany(ctx context.Context, refs []index.Ref) ([]index.Resource, error)
	// Delete removes a resource and its index rows; ErrNotFound (wrapped) when absent.
	Delete(ctx context.Context, typ, id string) error
	// Search returns the ids of resources of q.Type matching q.Where, ordered by id (byte order).
	Search(ctx context.Context, q index.Query) (index.Result, error)
	// References returns the distinct targets of the reference rows of (typ, ids) for param ("" = all
	// params), ordered by type and id. Used by _include.
	References(ctx context.Context, typ string, ids []string, param string) ([]index.Ref, error)
	// ReferencedBy returns the distinct sourceType resources whose sourceParam ("" = any) points at any of
	// targets, ordered by id. Used by _revinclude.
	ReferencedBy(ctx context.Context, sourceType, sourceParam string, targets []index.Ref) ([]index.Ref, error)
	// Count returns the number of resources of typ.
	Count(ctx context.Context, typ string) (int, error)
	KV
	Close() error
}

// KV is a small key/value table for server state (signing keys, federation domains).
type KV interface {
	// GetKV returns the value of key; ErrNotFound (wrapped) when absent.
	GetKV(ctx context.Context, key string) ([]byte, error)
	// PutKV sets key to value.
	PutKV(ctx context.Context, key string, value []byte) error
}

// ErrNotFound is returned (wrapped) for absent resources and keys: test it with errors.Is.
var ErrNotFound = core.ErrNotFound

var (
	_ Store = (*sqlite.Store)(nil)
	_ Store = (*postgres.Store)(nil)
)

// Open opens (and migrates) the store named by dsn: "sqlite:PATH" or a path ending in ".db" opens SQLite,
// "postgres://…" or "postgresql://…" opens PostgreSQL.
func Open(ctx context.Context, dsn string) (Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasSuffix(dsn, ".db"):
		return openSQLite(ctx, dsn)
	default:
		return nil, fmt.Errorf("store: unrecognised data source (want sqlite:PATH, PATH.db or postgres://…)")
	}
}

func openSQLite(ctx context.Context, path string) (Store, error) {
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return s, nil
}
