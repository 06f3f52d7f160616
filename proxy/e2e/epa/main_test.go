// Package epa is the acceptance layer for the ePA variant (tim-proxy-spec.md §3.11; V3 sets UCs_ePA and
// 05_5…05_8, 06X): three real Synapse homeservers behind three timstack proxies — a practice (Pro) and two
// health insurances whose users are insured persons. The stack starts once per package; every test registers
// fresh users and rooms.
package epa

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/timstack/timstack/proxy/e2e/stack"
)

// The stack's servers. kk1 and kk2 are insurances on the federation list (isInsurance), so their users are
// insured; prax is a practice.
const (
	prax = "prax.tim.test"
	kk1  = "kk1.tim.test"
	kk2  = "kk2.tim.test"
)

var theStack *stack.Stack

func TestMain(m *testing.M) {
	// The scenarios wait (for invites that must not arrive, for federation) far more than they compute, so
	// they run more at once than the core count go test defaults to; an explicit -parallel wins.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "6")
	}
	os.Exit(stack.Main(m, stack.Options{Nodes: []stack.NodeSpec{
		{Name: prax, Variant: "pro"},
		{Name: kk1, Variant: "epa", Insurance: true},
		{Name: kk2, Variant: "epa", Insurance: true},
	}}, func(s *stack.Stack) { theStack = s }))
}

type user = stack.User

func node(t *testing.T, name string) *stack.Node {
	t.Helper()
	if theStack == nil {
		t.Skip("e2e stack not running")
	}
	nd, ok := theStack.Nodes[name]
	if !ok {
		t.Fatalf("no node %s in the stack", name)
	}
	return nd
}

// newUser registers a fresh user on the named server.
func newUser(t *testing.T, server, prefix string) *user {
	t.Helper()
	return node(t, server).NewUser(t, prefix)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}
