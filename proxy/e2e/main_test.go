package e2e

// The acceptance layer for the Pro variant: two real Synapse homeservers, hs1.tim.test and hs2.tim.test,
// each behind its own timstack proxy, federating over TLS through both proxies. The stack starts once per
// package; every test registers fresh users and rooms.

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy"
	"github.com/timstack/timstack/proxy/e2e/stack"
)

var theStack *stack.Stack

func TestMain(m *testing.M) {
	os.Exit(stack.Main(m, stack.Options{Nodes: []stack.NodeSpec{
		{Name: "hs1.tim.test", Variant: "pro"},
		{Name: "hs2.tim.test", Variant: "pro"},
		// hs3 serves only TestEgressDenialStopsDelivery and TestA28564OrphanedRoomsAreCleanedUp: the denial
		// puts hs3 into Synapse's federation backoff, and its room jobs run with thresholds of seconds; neither
		// may disturb the tests that use hs1 and hs2.
		{Name: "hs3.tim.test", Variant: "pro", Configure: func(c *proxy.Config) {
			c.RoomJobs = proxy.RoomJobsConfig{Enabled: true, Interval: time.Second, OrphanedAfter: 3 * time.Second, InsuredOnlyAfter: time.Hour, ShortThresholds: true}
		}},
	}}, func(s *stack.Stack) { theStack = s }))
}

type user = stack.User

func node1(t *testing.T) *stack.Node { t.Helper(); return mustNode(t, "hs1.tim.test") }
func node2(t *testing.T) *stack.Node { t.Helper(); return mustNode(t, "hs2.tim.test") }

func mustNode(t *testing.T, name string) *stack.Node {
	t.Helper()
	if theStack == nil {
		t.Skip("e2e stack not running")
	}
	return theStack.Nodes[name]
}

func newUser(t *testing.T, nd *stack.Node, prefix string) *user {
	t.Helper()
	return nd.NewUser(t, prefix)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
