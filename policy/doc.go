// Package policy will own the embedded Open Policy Agent engine: typed inputs, decisions with reasons and
// obligations, and the Rego modules that decide federation, invites and room rules.
//
// It is empty until the proxy issue lands; the folder exists so the layout holds from the start.
package policy
