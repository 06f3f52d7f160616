// Package policy owns the embedded Open Policy Agent engine: typed inputs, decisions with reasons and
// obligations, and the Rego modules (rego/*.rego) that decide federation, invites, room rules and the ePA
// duties of tim-proxy-spec §3.
//
// Go gathers every fact first and hands it over as an Input; Rego stays pure (no I/O builtins) and answers
// with reason strings, never status codes. Engine.Eval reads data.tim.decision, the one entry point; a
// decision that cannot be reached is a deny with ReasonPolicyError. The federation list and the operator's
// own modules (package tim.operator.<name>, reloaded while running) are swapped in as a new immutable state
// behind an atomic pointer, so evaluations never wait for a reload.
package policy
