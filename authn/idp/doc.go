// Package idp is the relying party (RP) for the gematik IDP-Dienst: it loads and verifies the signed discovery
// document and the IDP keys, runs the authorization-code flow with PKCE and key_verifier, decrypts the
// token response, verifies the ID token (BP256R1) and its claims, and applies the profession policy per use.
//
// Every signature and certificate check goes through package certs; this package only decides which checks
// apply (one place: idpSignerOptions) and in what order.
//
// What the RP demands of an IDP (gemSpec_IDP_Dienst as summarised in smartcard-auth-spec.md §1.2–1.6, §7.2),
// so that a development IDP can be checked against it:
//   - discovery served as application/jwt, a BP256R1 JWS with kid puk_disc_sig and exactly one x5c certificate
//     (C.FD.SIG, role IDP-Dienst, digitalSignature, chaining to the trust store), issuer equal to the
//     configured one, iat ≤ now ≤ exp, BP256R1 and S256 listed;
//   - puk_idp_sig as a BP-256 JWK with x5c (same certificate rules), puk_idp_enc as a BP-256 JWK with use enc,
//     from uri_puk_idp_sig/uri_puk_idp_enc or else jwks_uri;
//   - a token response {"token_type":"Bearer","id_token":JWE,"access_token":JWE}, each JWE dir/A256GCM with
//     cty NJWT under the RP's token_key, wrapping {"njwt": JWS};
//   - an ID token with header alg BP256R1, kid puk_idp_sig, typ JWT and the claims iss, sub, aud (string or
//     array), azp (optional), iat, exp (lifetime ≤ 24 h), auth_time, nonce, jti, acr gematik-ehealth-loa-high,
//     amr containing "sc", idNummer, professionOID, organizationName (non-empty for institutions, null or
//     absent for persons), and at_hash whenever an access token is returned.
package idp
