package flist_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/timstack/timstack/certs"
	"github.com/timstack/timstack/proxy/flist"
)

// The proxy wires the keeper like this: a source, a verifier around certs.VerifyFederationList with its
// trust store and OCSP policy, then Run in the background and Lookup per request.
func ExampleNew() {
	trust, err := certs.LoadTrustStoreDir("/etc/timstack/komp-ca")
	if err != nil {
		panic(err)
	}
	ocsp := &certs.OCSPChecker{Trust: trust, Policy: certs.OCSPRequire}
	verify := func(ctx context.Context, jws []byte, at time.Time) (*certs.FederationList, error) {
		return certs.VerifyFederationList(ctx, jws, certs.FederationListOptions{Trust: trust, At: at, Revocation: ocsp})
	}
	cfg := flist.Config{CacheDir: "/var/lib/timstack/flist"}
	cfg.Defaults()
	src := &flist.RegServiceSource{URL: "https://registration.example/backend/federation"}
	k, err := flist.New(cfg, src, verify, slog.Default(), time.Now)
	if err != nil {
		panic(err)
	}
	k.Subscribe(func(s flist.Snapshot) { slog.Info("federation list", "status", s.Status, "version", s.Version) })
	go k.Run(context.Background())

	d, ok, snap := k.Lookup(context.Background(), "hs.example.de")
	if snap.Status != flist.StatusFresh || !ok {
		return // deny: not federated, or no fresh list to decide with (fail closed)
	}
	_ = d.IsInsurance
}
