package directory_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

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
		for i, n := range progress {
			if (n%size != 0 && n != len(docs)) || (i > 0 && n <= progress[i-1]) {
				t.Errorf("progress %v: %d is not a growing batch boundary", progress, n)
			}
		}
		if len(progress) == 0 || progress[len(progress)-1] != len(docs) {
			t.Errorf("progress %v, want it to end at %d", progress, len(docs))
		}
		searchesAgree(t, viaPipe, "pipeline", viaPut)
	})
	t.Run("batches stored side by side give the result of one Put, in any order of the documents", func(t *testing.T) {
		viaPut := openSQLite(t, "put-all.db")
		if _, err := (&directory.Writer{Store: viaPut}).Put(ctx, docs); err != nil {
			t.Fatal(err)
		}
		reversed := make([][]byte, len(docs))
		for i, d := range docs {
			reversed[len(docs)-1-i] = d
		}
		for _, c := range []struct {
			name string
			docs [][]byte
			size int
		}{{"in order", docs, 3}, {"services and roles before what they link to", reversed, 3}, {"one document a batch, reversed", reversed, 1}} {
			st := openSQLite(t, "pipe-"+strings.ReplaceAll(c.name, " ", "-")+".db")
			p := (&directory.Writer{Store: st}).NewPipeline(ctx, nil)
			for i := 0; i < len(c.docs); i += c.size {
				if err := p.Add(c.docs[i:min(i+c.size, len(c.docs))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			searchesAgree(t, st, c.name, viaPut)
		}
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

// overlapStore is a store whose Puts take a while and which records how many ran at once.
type overlapStore struct {
	directory.Store
	mu            sync.Mutex
	running, most int
}

func (s *overlapStore) Put(ctx context.Context, rs ...index.Resource) ([]index.Resource, error) {
	s.mu.Lock()
	s.running++
	s.most = max(s.most, s.running)
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	defer func() {
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
	}()
	return s.Store.Put(ctx, rs...)
}

func TestPipelineOverlap(t *testing.T) {
	ctx := context.Background()
	byType := map[string][][]byte{}
	for _, d := range fixtureDocs(t) {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(d, &head); err != nil {
			t.Fatal(err)
		}
		byType[head.ResourceType] = append(byType[head.ResourceType], d)
	}
	practitioners, roles := byType[index.Practitioner], byType[index.PractitionerRole]
	if len(practitioners) < 8 || len(roles) < 8 {
		t.Fatalf("fixture has %d practitioners and %d roles, want 8 of each", len(practitioners), len(roles))
	}
	for _, c := range []struct {
		name   string
		before [][]byte // stored first, with one Put
		docs   [][]byte // then through the pipeline, two a batch
		most   int      // the most Puts at once (2: more than one)
	}{
		{"practitioners into a store without roles are stored side by side", nil, practitioners[:8], 2},
		{"roles linking to stored practitioners are stored side by side", practitioners, roles[:8], 2},
		{"practitioners into a store with roles are stored one batch at a time (stored roles are re-indexed)", roles[:1], practitioners[:8], 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &overlapStore{Store: openSQLite(t, "overlap.db")}
			w := &directory.Writer{Store: st}
			if c.before != nil {
				if _, err := w.Put(ctx, c.before); err != nil {
					t.Fatal(err)
				}
			}
			p := w.NewPipeline(ctx, nil)
			for i := 0; i < len(c.docs); i += 2 {
				if err := p.Add(c.docs[i : i+2]); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if (c.most == 1) != (st.most == 1) {
				t.Errorf("at most %d Puts at once, want %d", st.most, c.most)
			}
		})
	}
}
