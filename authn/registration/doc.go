// Package registration is the TI-Messenger registration service (Registrierungs-Dienst) of a TI-M
// Fachdienst (tim-proxy-spec.md §2.1, §4.2, §4.3): organisations sign up with their SMC-B through the
// gematik IDP-Dienst, get one Org-Admin account with a TOTP second factor, register their Matrix domains
// in the VZD federation list, and obtain RegService-OpenID-Tokens for the directory's owner API. It also
// keeps the verified federation list for the Fachdienst's Messenger-Proxies (I_internVerification) and
// serves I_TiMessengerInformation.
//
// # Org-Admin API (I_Registration / I_Admin; gematik leaves the shape to the vendor)
//
// All bodies are JSON. Errors are {"error": code, "message": text}.
//
//	GET  /registration/v1/login
//	     → 302 Location: <IDP authorization URL> (cardType=SMC-B), or with Accept: application/json
//	       200 {"authURL": "..."}. The gematik Authenticator signs the challenge with the SMC-B.
//	GET  /registration/v1/callback?code=…&state=…   (the registered redirect_uri)
//	     The code is redeemed at the IDP; the ID token's professionOID must be an institution (pro) or
//	     Betriebsstätte Kostenträger 1.2.276.0.76.4.59 (epa), else 403 profession_refused.
//	     First sign-in of a Telematik-ID: the organisation and its Org-Admin are created →
//	       201 {"pending", "expires_in", "telematikID", "organizationName", "created": true,
//	            "totpEnrolment": {"secret": base32, "otpauthURI": "otpauth://totp/…"}}
//	     Known Telematik-ID → 200 {"pending", "expires_in", "telematikID", "organizationName",
//	       "created": false} (plus totpEnrolment again while the enrolment was never confirmed).
//	     Unknown Telematik-ID of an organisation whose name already has an Org-Admin → 409
//	       account_exists ("Account existiert bereits"): that admin links the card instead.
//	POST /registration/v1/totp {"pending", "code"}
//	     → 200 {"session", "token_type": "Bearer", "expires_in": 28800}. RFC 6238 (HMAC-SHA1, 30 s, six
//	       digits, ±1 step); a step once used is refused again; five wrong codes end the pending sign-in,
//	       which lives 5 min. 401 invalid_totp / invalid_pending.
//
// With Authorization: Bearer <session> (opaque, stored as SHA-256, 8 h):
//
//	POST   /registration/v1/logout → 204
//	GET    /registration/v1/org-admin → {"organizationName", "telematikIDs": [{telematikID, professionOID,
//	       linkedAt}], "user_id"}
//	PUT    /registration/v1/org-admin/mxid {"user_id": "@admin:domain"} → 200; the user must live on one of
//	       the organisation's messenger services (403 otherwise); "" unbinds; 409 when bound elsewhere.
//	POST   /registration/v1/telematik-ids → {"authURL"}: a sign-in with a further SMC-B whose callback
//	       answers 201 {"telematikID", "linked": true} (409 when it belongs to another organisation).
//	DELETE /registration/v1/telematik-ids/{telematikID} → 204 (409 for the organisation's first one).
//	POST   /registration/v1/messenger-services {"domain", "isInsurance", "ik", "redirectDomains",
//	       "telematikID"?} → the VZD's POST /tim-provider-services/federation for the organisation's
//	       (first or named) Telematik-ID, then an immediate federation list refresh → 201 {domain,
//	       telematikID, isInsurance, ik, redirectDomains, state, stateSince, createdAt}. The directory's
//	       400/403/404/409 are passed on with its message ("VZD: …"); other failures are 502.
//	GET    /registration/v1/messenger-services → [ … ] (the organisation's services, with state
//	       active|deactivated and since when)
//	DELETE /registration/v1/messenger-services/{domain} → 204 (directory first, then here)
//
// # I_internVerification
//
//	GET /backend/federation?version=N   (optional Authorization: Bearer <proxy token>)
//	→ 200 application/jose: the verified list's original compact JWS bytes (the proxy verifies them
//	  itself), ETag "<version>"; 204 when N is the current version; 503 {"error": "outdated"|"no_list"}
//	  when there was no verified contact with the VZD for 72 h ("veraltet"), so the proxy does not count
//	  the answer as contact and its own 72 h rule blocks federation.
//
// The list is polled hourly (retries 5 min apart, three times, then an incident is logged), verified
// with certs.VerifyFederationList against the configured component CAs, and replaced only by a newer
// version.
//
// # I_requestToken (Pro)
//
//	POST /regservice/openid/user/{userId}/requesttoken?request_token=<Matrix OpenID token>
//	→ 200 {"access_token": <JWS>, "expires_in": 300, "token_type": "Bearer"} or 400 {"error":"unauthorized"}
//
// userId must be an Org-Admin's bound Matrix user (checked before any homeserver is asked) and its
// homeserver must vouch for the token as exactly that user. The RegService-OpenID-Token is a compact
// JWS, alg BP256R1, typ JWT, x5c [C.FD.SIG (role oid_tim), CA…], claims sub, iss (public_url), aud
// (the directory's /owner-authenticate), professionOID, idNummer (the organisation's first Telematik-ID),
// iat, exp, jti.
//
// # I_TiMessengerInformation
//
//	GET /tim-information/ → {title, description, contact, version}
//	GET /tim-information/v1/server/findByIk?ikNumber= → {serverName} (400, 401, 404)
//	GET /tim-information/v1/server/isInsurance?serverName= → {isInsurance} (400, 401)
//
// Errors are {errorCode, errorMessage}. The bearer is a Matrix OpenID token of a user on one of the
// homeservers this Fachdienst serves (information.homeservers, else the domains of its active messenger
// services, at most 8); only those homeservers are asked, so the endpoint cannot be used to make the service call
// arbitrary hosts. Answers come from the last verified federation list.
//
// # Housekeeping
//
// Daily GET /federationCheck: a service whose organisation the VZD reports inactive is deactivated here
// (the provider API offers no deactivation of its own), reactivated when the organisation is active
// again, and deleted at the VZD and here after 30 days inactive.
//
// Sign-ins in progress (IDP state, pending TOTP) are kept in memory: a restart or a second instance
// behind a load balancer without affinity makes users sign in again. Sessions and everything else are in
// the Store: SQLiteStore (one file, migrations/ embedded) or pgstore (PostgreSQL), both held to the same
// behaviour by storetest. TOTP secrets are stored as they are (protect the database like a key store).
package registration
