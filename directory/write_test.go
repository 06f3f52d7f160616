package directory_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/timstack/timstack/directory"
	"github.com/timstack/timstack/directory/index"
	"github.com/timstack/timstack/directory/store/sqlite"
)

// Large batches are prepared on several goroutines; the refusal must still name the first bad resource
// and store nothing, as a resource-by-resource run would.
func TestWriterPutReportsTheFirstInvalidResourceOfALargeBatch(t *testing.T) {
	valid := fixtureDocs(t)
	if len(valid) < 200 {
		t.Fatalf("fixture has %d resources, the test needs a batch that is prepared in parallel", len(valid))
	}
	broken := []byte(`{"resourceType":"Practitioner","id":`)
	for _, tc := range []struct {
		name      string
		badAt     []int
		wantIndex string
	}{
		{"one invalid resource in the second half", []int{150}, "resource 150:"},
		{"two invalid resources: the earlier one is reported", []int{170, 71}, "resource 71:"},
		{"the very first resource invalid", []int{0, 199}, "resource 0:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			docs := append([][]byte(nil), valid[:200]...)
			for _, i := range tc.badAt {
				docs[i] = broken
			}
			_, err = (&directory.Writer{Store: st}).Put(context.Background(), docs)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantIndex) {
				t.Fatalf("Put error = %v, want one starting with %q", err, tc.wantIndex)
			}
			for _, typ := range index.ResourceTypes {
				if n, err := st.Count(context.Background(), typ); err != nil || n != 0 {
					t.Errorf("%s: %d stored (err %v) after a refused batch", typ, n, err)
				}
			}
		})
	}
}
