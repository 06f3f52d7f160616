package directory_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/generate"
	"github.com/timstack/timstack/directory/store"
	"github.com/timstack/timstack/directory/store/postgres"
	"github.com/timstack/timstack/directory/store/sqlite"
)

// BenchmarkImport measures the write path (parse, validate, index incl. _text, store) on generated data in
// batches of 1,000, per engine; resources/s is reported as a metric.
func BenchmarkImport(b *testing.B) {
	var buf bytes.Buffer
	counts, err := generate.Generate(&buf, generate.Options{Seed: 7, Scale: 0.002})
	if err != nil {
		b.Fatal(err)
	}
	var docs [][]byte
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		docs = append(docs, append([]byte(nil), sc.Bytes()...))
	}
	for _, eng := range []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"sqlite", func(b *testing.B) store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "d.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", func(b *testing.B) store.Store {
			s, err := postgres.Open(context.Background(), pg.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	} {
		b.Run(eng.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st := eng.open(b)
				w := &directory.Writer{Store: st}
				b.StartTimer()
				for j := 0; j < len(docs); j += 1000 {
					if _, err := w.Put(context.Background(), docs[j:min(j+1000, len(docs))]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				st.Close()
			}
			b.ReportMetric(float64(counts.Total()*b.N)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

// BenchmarkImportFile imports the NDJSON file TIMSTACK_IMPORT_FILE (one resource per line, as `directory
// generate` writes it) into the empty PostgreSQL database TIMSTACK_IMPORT_DSN in batches of 1,000, like
// `directory import`; with TIMSTACK_IMPORT_BULK=1 inside BeginBulkLoad/EndBulkLoad (the index rebuild
// counts), with TIMSTACK_IMPORT_PIPELINE=1 preparing the next batch (PrepareBatch) while the previous one
// is stored (PutPrepared). Run once (-benchtime 1x) per fresh database; skipped without the variables.
func BenchmarkImportFile(b *testing.B) {
	path, dsn := os.Getenv("TIMSTACK_IMPORT_FILE"), os.Getenv("TIMSTACK_IMPORT_DSN")
	if path == "" || dsn == "" {
		b.Skip("TIMSTACK_IMPORT_FILE and TIMSTACK_IMPORT_DSN not set")
	}
	bulk := os.Getenv("TIMSTACK_IMPORT_BULK") == "1"
	pipeline := os.Getenv("TIMSTACK_IMPORT_PIPELINE") == "1"
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		if bulk {
			if err := st.BeginBulkLoad(ctx); err != nil {
				b.Fatal(err)
			}
		}
		w := &directory.Writer{Store: st}
		depth := 0
		if pipeline {
			depth = 1
		}
		batches := make(chan *directory.Batch, depth)
		readErr := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			defer close(batches)
			readErr <- readBatches(path, 1000, func(docs [][]byte) error {
				bt, err := w.PrepareBatch(docs)
				if err != nil {
					return err
				}
				select {
				case batches <- bt:
					return nil
				case <-stop:
					return errors.New("stopped")
				}
			})
		}()
		stopped := false
		stopReader := func() {
			if !stopped {
				stopped = true
				close(stop)
			}
		}
		b.Cleanup(stopReader) // a failed PutPrepared must not leave the reader blocked
		n := 0
		for bt := range batches {
			n += bt.Len()
			if _, err := w.PutPrepared(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-readErr; err != nil {
			b.Fatal(err)
		}
		loaded := b.Elapsed()
		if bulk {
			if err := st.EndBulkLoad(ctx); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		b.ReportMetric(loaded.Seconds(), "load-s")
		b.ReportMetric((b.Elapsed() - loaded).Seconds(), "end-s")
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
	}
}

// readBatches calls fn with consecutive batches of up to size lines of the file at path.
func readBatches(path string, size int, fn func([][]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var batch [][]byte
	for sc.Scan() {
		batch = append(batch, append([]byte(nil), sc.Bytes()...))
		if len(batch) == size {
			if err := fn(batch); err != nil {
				return err
			}
			batch = nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}
