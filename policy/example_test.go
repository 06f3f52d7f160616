package policy_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/timstack/timstack/policy"
)

// The engine is built once from the policy section of the configuration, then fed the verified federation
// list whenever it changes.
func ExampleNew() {
	cfg := policy.Config{Variant: "pro", ServerName: "pro.example"}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	engine, err := policy.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ready before the list:", engine.Ready() == nil)
	engine.SetFederation(policy.Federation{Version: 1, Status: policy.StatusFresh, Domains: map[string]policy.Domain{
		"pro.example":   {TelematikID: "1-pro"},
		"other.example": {TelematikID: "1-other"},
	}})
	fmt.Println("ready with a fresh list:", engine.Ready() == nil)
	// Output:
	// ready before the list: false
	// ready with a fresh list: true
}

// Eval answers with reasons, never with status codes; the proxy maps each reason to its Matrix error.
func ExampleEngine_Eval() {
	cfg := policy.Config{Variant: "pro", ServerName: "pro.example"}
	cfg.Defaults()
	engine, err := policy.New(cfg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	engine.SetFederation(policy.Federation{Version: 1, Status: policy.StatusFresh, Domains: map[string]policy.Domain{
		"pro.example":   {TelematikID: "1-pro"},
		"other.example": {TelematikID: "1-other"},
	}})
	ctx := context.Background()

	for _, origin := range []string{"other.example", "evil.example"} {
		dec, err := engine.Eval(ctx, &policy.Input{Action: policy.ActionFederationInbound, Origin: origin, Destination: "pro.example"})
		if err != nil {
			fmt.Println("deny:", policy.ReasonPolicyError) // fail closed
			continue
		}
		fmt.Println(origin, dec.Allow, dec.Reasons)
	}

	// An allowed createRoom may carry obligations the proxy applies before forwarding.
	dec, _ := engine.Eval(ctx, &policy.Input{
		Action: policy.ActionRoomCreate, Origin: "pro.example",
		Actor: &policy.User{UserID: "@alice:pro.example", Domain: "pro.example", Local: true},
		Room:  &policy.Room{Visibility: "public"},
	})
	fmt.Printf("%v %+v\n", dec.Allow, dec.Obligations)
	// Output:
	// other.example true []
	// evil.example false [origin_not_federated]
	// true {ForceFederateFalse:true RoomVersion:10 HistoryVisibility:invited EmptyResult:false}
}
