// Package matrix holds the Matrix protocol pieces the Messenger-Proxy needs to trust a federation request:
// canonical JSON, JSON signing, the X-Matrix Authorization header, server names and user IDs, and a
// key ring that fetches and caches remote servers' signing keys from /_matrix/key/v2/server.
//
// Everything follows the Matrix specification v1.11 (appendices "Signing JSON" and "Identifier Grammar",
// server-server API "Request Authentication" and "Retrieving server keys"). Where the specification and
// the reference implementation (Synapse and its canonicaljson/signedjson libraries) disagree, or where the
// specification is silent, this package refuses the input: a refusal costs one request, a wrong
// acceptance lets a forged origin through the federation check.
package matrix
