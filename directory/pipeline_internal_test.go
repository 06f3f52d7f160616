package directory

import (
	"testing"

	"github.com/timstack/timstack/directory/index"
)

func TestBatchDepsConflicts(t *testing.T) {
	p1 := index.Ref{Type: index.Practitioner, ID: "p1"}
	p2 := index.Ref{Type: index.Practitioner, ID: "p2"}
	r1 := index.Ref{Type: index.PractitionerRole, ID: "r1"}
	set := func(refs ...index.Ref) map[index.Ref]bool {
		m := map[index.Ref]bool{}
		for _, r := range refs {
			m[r] = true
		}
		return m
	}
	for _, c := range []struct {
		name string
		a, b batchDeps
		want bool
	}{
		{"batches of different practitioners may be stored together", batchDeps{ids: set(p1), targets: true}, batchDeps{ids: set(p2), targets: true}, false},
		{"a resource in both batches keeps their order", batchDeps{ids: set(p1, p2)}, batchDeps{ids: set(p2)}, true},
		{"a role waits for the batch of the practitioner it links to", batchDeps{ids: set(r1), links: set(p1), roots: true}, batchDeps{ids: set(p1)}, true},
		{"the batch of a practitioner waits for a role linking to it", batchDeps{ids: set(p1)}, batchDeps{ids: set(r1), links: set(p1), roots: true}, true},
		{"a role may be stored beside the batch of another practitioner", batchDeps{ids: set(r1), links: set(p1), roots: true}, batchDeps{ids: set(p2)}, false},
		{"a batch stored alone conflicts with every other", batchDeps{ids: set(p1), alone: true}, batchDeps{ids: set(r1)}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.a.conflicts(&c.b); got != c.want {
				t.Errorf("conflicts = %v, want %v", got, c.want)
			}
		})
	}
}
