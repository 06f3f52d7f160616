package matrixopenid_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/timstack/timstack/authn/matrixopenid"
)

// A registration service checks the Matrix OpenID token an Org-Admin's client obtained from
// POST /_matrix/client/v3/user/{userId}/openid/request_token, for the user named in its path.
func ExampleValidator() {
	homeserver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") != "opaque-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"sub":"@orgadmin:hs1.example"}`)
	}))
	defer homeserver.Close()

	listed := map[string]bool{"hs1.example": true} // from the verified federation list
	v, err := matrixopenid.NewValidator(matrixopenid.Config{
		Federated: func(server string) bool { return listed[server] },
		// Production leaves Resolve nil (.well-known/matrix/server over HTTPS).
		Resolve: func(context.Context, string) (string, error) { return homeserver.URL, nil },
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	mxid, err := v.Validate(ctx, "opaque-token", "hs1.example", "@orgadmin:hs1.example")
	fmt.Println(mxid, err)

	_, err = v.Validate(ctx, "opaque-token", "hs1.example", "@someone-else:hs1.example")
	fmt.Println(errors.Is(err, matrixopenid.ErrRefused))

	_, err = v.Validate(ctx, "opaque-token", "elsewhere.example", "")
	fmt.Println(errors.Is(err, matrixopenid.ErrNotFederated))
	// Output:
	// @orgadmin:hs1.example <nil>
	// true
	// true
}
