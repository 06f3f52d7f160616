package flist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Files in Config.CacheDir.
const (
	listFile = "list.jws"
	metaFile = "meta.json"
	// maxMetaBytes bounds meta.json; ours is under 200 bytes.
	maxMetaBytes = 4 << 10
)

// meta is what persists beside the list. Nothing in it is trusted for the list's content (the JWS is
// re-verified on load); it only carries the time of the last verified contact across a restart.
type meta struct {
	Version             int64     `json:"version"`
	LastVerifiedContact time.Time `json:"last_verified_contact"`
	FetchedAt           time.Time `json:"fetched_at"`
}

// parseMeta decodes meta.json strictly: unknown fields, trailing data, a negative version or a missing
// contact time make it unusable, and the caller then treats the contact time as unknown (stale).
func parseMeta(data []byte) (meta, error) {
	var m meta
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return meta{}, fmt.Errorf("meta: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return meta{}, errors.New("meta: trailing data")
	}
	if m.Version < 0 {
		return meta{}, errors.New("meta: negative version")
	}
	if m.LastVerifiedContact.IsZero() {
		return meta{}, errors.New("meta: no last_verified_contact")
	}
	return m, nil
}

// loadCache reads the cached list and meta. A missing list is (nil, meta{}, nil): nothing cached yet.
// A missing or broken meta file is reported separately, since the list may still be good.
func loadCache(dir string) (jws []byte, m meta, metaErr error, err error) {
	jws, err = readFileLimited(filepath.Join(dir, listFile), DefaultMaxListBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, meta{}, nil, nil
	}
	if err != nil {
		return nil, meta{}, nil, fmt.Errorf("read cached list: %w", err)
	}
	data, err := readFileLimited(filepath.Join(dir, metaFile), maxMetaBytes)
	if err != nil {
		return jws, meta{}, err, nil
	}
	m, metaErr = parseMeta(data)
	return jws, m, metaErr, nil
}

func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, limit)
}

// saveCache writes the list (when given) and then the meta, each atomically. A crash between the two
// leaves a meta whose version does not match the list; the loader then treats the contact time as
// unknown, which fails closed.
func saveCache(dir string, jws []byte, m meta) error {
	if jws != nil {
		if err := writeAtomic(dir, listFile, jws); err != nil {
			return err
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode meta: %w", err)
	}
	return writeAtomic(dir, metaFile, append(data, '\n'))
}

// writeAtomic writes name in dir through a temporary file, fsync and rename, so a reader sees the old or
// the new content, never a torn one.
func writeAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmpName, filepath.Join(dir, name)); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("write %s: %w", name, err)
	}
	// Persist the rename itself; not every filesystem supports syncing a directory, so this is best effort.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
