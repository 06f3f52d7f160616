// Package dirfacts resolves facts about remote domains from the VZD-FHIR-Directory for operator policy
// modules: the organisation types (Organization.type codes, gemSpec_OID professionOIDs) of the
// organisation a federated domain belongs to.
//
// The proxy knows a remote domain's Telematik-ID from the verified federation list; Resolver asks the
// directory's search API for the Organization with that Telematik-ID
// (GET {url}/search/Organization?identifier=https://gematik.de/fhir/sid/telematik-id|<id>, bearer search
// token) and returns its type codes, which the proxy puts into policy.Input.Peer. The policy stays pure:
// Rego never does I/O.
//
// Whether a failed lookup denies is the caller's decision (Config.Required, reason directory_unavailable);
// the resolver only reports it, wrapping ErrUnavailable. The package imports nothing from directory/: it
// speaks the directory's public HTTP API like any other client.
package dirfacts
