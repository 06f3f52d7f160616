// Package authn will own identity: the gematik IDP relying party, the dev IDP, Matrix OpenID validation,
// login through the homeserver's application service and the registration service's logic. Every
// signature check it makes goes through package certs.
//
// It is empty until the authn issue lands; the folder exists so the layout (and its dependency rules in
// cmd/timstack/layout_test.go) holds from the start.
package authn
