package matrix_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/timstack/timstack/proxy/matrix"
)

// The specification's test key (appendix "Cryptographic Test Vectors").
func specTestKey() ed25519.PrivateKey {
	seed, _ := base64.RawStdEncoding.DecodeString("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	return ed25519.NewKeyFromSeed(seed)
}

func ExampleSignJSON() {
	signed, err := matrix.SignJSON([]byte(`{"one": 1, "two": "Two"}`), "domain", "ed25519:1", specTestKey())
	if err != nil {
		panic(err)
	}
	fmt.Println(string(signed))
	// Output: {"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}
}

// A federation request travels from origin.example to hs.example; the receiving proxy parses the header,
// pins the destination to its own name and verifies the signature with the origin's published key.
func ExampleKeyRing_Verify() {
	key := specTestKey()
	now := time.Now()
	header, _ := matrix.SignRequest("GET", "/_matrix/federation/v1/version", "origin.example", "hs.example", nil, "ed25519:1", key)

	// In the proxy, fetch goes through the egress path to https://origin.example/_matrix/key/v2/server.
	fetch := func(ctx context.Context, serverName string) ([]byte, error) {
		return matrix.BuildServerKeys(serverName, map[string]ed25519.PrivateKey{"ed25519:1": key}, now.Add(time.Hour))
	}
	ring := matrix.NewKeyRing(fetch, time.Now, nil)

	x, err := matrix.ParseXMatrix(header)
	if err != nil {
		panic(err)
	}
	if x, err = x.WithDestination("hs.example"); err != nil {
		panic(err)
	}
	fmt.Println(x.Origin, ring.Verify(context.Background(), x, "GET", "/_matrix/federation/v1/version", nil))
	// Output: origin.example <nil>
}
