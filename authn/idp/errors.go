package idp

import "errors"

// Sentinel errors. Every error returned by this package wraps at least one of them, so callers can map it to a
// status (401 for ErrTokenInvalid/ErrReplay/ErrState, 403 for ErrProfessionRefused, 502/503 for ErrDiscovery
// and ErrTokenEndpoint) and log the reason carried in the message.
var (
	// ErrConfig means the Config is unusable (or unsafe for production).
	ErrConfig = errors.New("idp: invalid configuration")
	// ErrDiscovery means the discovery document or the IDP keys could not be loaded or did not verify.
	ErrDiscovery = errors.New("idp: discovery or IDP keys not acceptable")
	// ErrState means the login state is unknown, expired or already used.
	ErrState = errors.New("idp: unknown, expired or used login state")
	// ErrTokenEndpoint means the token endpoint could not be reached or refused the code exchange.
	ErrTokenEndpoint = errors.New("idp: token exchange failed")
	// ErrTokenInvalid means a token (JWE, JWS or claims) was refused.
	ErrTokenInvalid = errors.New("idp: token invalid")
	// ErrReplay means a state, code or ID-token jti was presented a second time.
	ErrReplay = errors.New("idp: replay")
	// ErrProfessionRefused means the identity's profession OID is not allowed for the requested use.
	ErrProfessionRefused = errors.New("idp: profession not permitted")
)
