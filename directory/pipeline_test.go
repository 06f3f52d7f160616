package directory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/index"
)

func TestPipeline(t *testing.T) {
	ctx := context.Background()
	docs := fixtureDocs(t)
	t.Run("small batches that reference earlier ones are stored like one Put, progress after each", func(t *testing.T) {
		viaPut, viaPipe := openSQLite(t, "put.db"), openSQLite(t, "pipe.db")
		if _, err := (&directory.Writer{Store: viaPut}).Put(ctx, docs); err != nil {
			t.Fatal(err)
		}
		var progress []int
		p := (&directory.Writer{Store: viaPipe}).NewPipeline(ctx, func(n int) { progress = append(progress, n) })
		const size = 7
		for i := 0; i < len(docs); i += size {
			if err := p.Add(docs[i:min(i+size, len(docs))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if len(progress) != (len(docs)+size-1)/size || progress[len(progress)-1] != len(docs) {
			t.Errorf("progress %v, want one call per batch ending at %d", progress, len(docs))
		}
		searchesAgree(t, viaPipe, "pipeline", viaPut)
	})
	t.Run("an invalid document is reported by Add and nothing after it is stored", func(t *testing.T) {
		st := openSQLite(t, "bad.db")
		p := (&directory.Writer{Store: st}).NewPipeline(ctx, nil)
		if err := p.Add(docs[:10]); err != nil {
			t.Fatal(err)
		}
		err := p.Add([][]byte{[]byte(`{"resourceType":"Practitioner","id":`)})
		if err == nil || !strings.HasPrefix(err.Error(), "resource 0:") {
			t.Fatalf("Add error = %v, want the bad resource", err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, typ := range index.ResourceTypes {
			n, err := st.Count(ctx, typ)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if total != 10 {
			t.Errorf("%d resources stored, want the 10 of the first batch", total)
		}
	})
	t.Run("a storing error is returned and later batches are refused", func(t *testing.T) {
		st := openSQLite(t, "closed.db")
		_ = st.Close() // every write fails
		p := (&directory.Writer{Store: st}).NewPipeline(ctx, func(int) { t.Error("progress reported for a failed batch") })
		var addErr error
		for i := 0; i < 5 && addErr == nil; i++ {
			addErr = p.Add(docs[:10])
		}
		if err := p.Close(); err == nil {
			t.Fatal("Close after failed writes returned nil")
		}
	})
}
