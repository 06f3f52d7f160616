package route_test

import (
	"errors"
	"fmt"

	"github.com/timstack/timstack/proxy/route"
)

// A request target is checked first, then looked up; the proxy dispatches on the route ID and reads the
// decoded parameters.
func ExampleTable_Lookup() {
	client := route.ClientTable() // build once at start-up; a Table is safe for concurrent use

	tgt, err := route.CheckTarget("POST", "/_matrix/client/v3/rooms/%21abc%3Ahs1.tim.test/invite")
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := client.Lookup("POST", tgt)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Route.ID, m.Params["roomId"], m.Route.Flags)

	_, err = route.CheckTarget("POST", "/_matrix/client/v3/rooms/%2e%2e/createRoom")
	var ae *route.AmbiguousError
	fmt.Println(errors.As(err, &ae), ae.Why)

	tgt, _ = route.CheckTarget("GET", "/_matrix/client/v3/createRoom")
	_, err = client.Lookup("GET", tgt)
	var me *route.MethodError
	fmt.Println(errors.Is(err, route.ErrMethodNotAllowed), errors.As(err, &me) && me.Allowed[0] == "POST")
	// Output:
	// client.rooms.invite !abc:hs1.tim.test needs_auth
	// true dot segment in path
	// true true
}
