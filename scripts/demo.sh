#!/usr/bin/env bash
# make demo: a narrated walkthrough of what timstack can do today, then the demo services keep running until
# Ctrl-C. DEMO_EXIT=1 exits after the walkthrough (CI and tests use that).
#
# Part 1, the TI PKI core: gematik test cards, the real signed TU federation list, a test CA that issues a
# federation-list signer, a test OCSP responder, and `flist verify` with OCSP required (fail closed).
# Part 2, the messenger (`timstack demo`): two Synapse homeservers (PyPI, installed by scripts/synapse.sh),
# each behind a timstack proxy, with the dev IDP, the directory and the registration service: two practices
# onboard with their SMC-B, a doctor logs in with an eHBA, finds a colleague in the directory, invites, the
# message arrives; an invite to a non-federated server is refused with the decision log's reason.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${DEMO_BIN:-bin/timstack}"
demo="${DEMO_DIR:-data/demo}"
ocsp_addr="${DEMO_OCSP_ADDR:-127.0.0.1:18889}"
gematik=testdata/gematik

go build -o "$bin" ./cmd/timstack # cheap with the build cache; never run a stale binary
scripts/synapse.sh >/dev/null     # idempotent: the pinned Synapse venv and template database under $HOME
rm -rf "$demo" && mkdir -p "$demo"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start_responder() { # args: extra flags
	"$bin" pki ocsp-responder --listen "$ocsp_addr" --signer "$demo/ocsp-signer" \
		--issuer "$demo/root/cert.pem" --default-good "$@" >"$demo/ocsp.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 50); do
		if (exec 3<>"/dev/tcp/${ocsp_addr%:*}/${ocsp_addr#*:}") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "OCSP responder did not start:" >&2
	cat "$demo/ocsp.log" >&2
	exit 1
}
stop_responder() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

step "1. A practitioner's eHBA (gematik test card): who is it?"
say "timstack parses brainpoolP256r1 card certificates, which Go's crypto/x509 refuses, and reads the"
say "Admission extension: profession OID and Telematik-ID."
"$bin" pki inspect "$gematik/pki/cards/80276883110000129084-2-C_HP_AUT_E256/cert.pem"

step "2. gematik's real signed federation list (TU, version 1650)"
say "Signed BP256R1 by the VZD's signer, which chains to GEM.KOMP-CA50 TEST-ONLY. We check it at"
say "2024-06-01, inside the signer's validity; its OCSP responder is TI-internal, so OCSP is off here."
"$bin" flist verify "$gematik/vzd/samples/federationList-TU-v1650.jws" --trust "$gematik/pki/ca" \
	--at 2024-06-01T00:00:00Z --ocsp off

step "3. The same list with OCSP required (the default) fails closed without a reachable responder"
if "$bin" flist verify "$gematik/vzd/samples/federationList-TU-v1650.jws" --trust "$gematik/pki/ca" \
	--at 2024-06-01T00:00:00Z --timeout 2s; then
	echo "unexpected: verification passed without OCSP" >&2
	exit 1
fi

step "4. Our own test PKI (everything it issues says TEST-ONLY)"
"$bin" pki issue --profile root --cn "timstack Demo Root CA" --out "$demo/root" >/dev/null
"$bin" pki issue --ca "$demo/root" --profile ocsp-signer --cn "Demo OCSP Signer" --out "$demo/ocsp-signer" >/dev/null
"$bin" pki issue --ca "$demo/root" --profile flist-signer --cn "Demo VZD FList Signer" \
	--ocsp-url "http://$ocsp_addr/" --out "$demo/flist-signer" | sed 's/^/   signer: /'
"$bin" pki issue --ca "$demo/root" --profile smcb --cn "Demo Krankenkasse" --telematik-id 5-SMC-B-Demo-KT-0001 \
	--profession-oid 1.2.276.0.76.4.59 --out "$demo/kostentraeger" | sed 's/^/   Kostenträger SMC-B: /'
mkdir -p "$demo/trust" && cp "$demo/root/cert.pem" "$demo/trust/root.pem"
signer_serial=$("$bin" pki inspect "$demo/flist-signer/cert.pem" | sed -n 's/.*"serial":"\([0-9]*\)".*/\1/p')

step "5. A federation list for two practices' homeservers, signed by the test signer"
cat >"$demo/domains.json" <<'JSON'
[
  {"domain": "hs1.tim.test", "telematikID": "1-SMC-B-Testkarte-883110000129077", "isInsurance": false},
  {"domain": "hs2.tim.test", "telematikID": "3-SMC-B-Testkarte-883110000129068", "isInsurance": false},
  {"domain": "kasse.tim.test", "telematikID": "5-SMC-B-Demo-KT-0001", "isInsurance": true, "ik": ["109500969"]}
]
JSON
"$bin" flist sign --signer "$demo/flist-signer" --domains "$demo/domains.json" --version 1 --out "$demo/federationList.jws"

step "6. Verified with OCSP required, answered by the test OCSP responder on $ocsp_addr"
start_responder
"$bin" flist verify "$demo/federationList.jws" --trust "$demo/trust"

step "7. The signer is revoked: the list is refused"
stop_responder
start_responder --revoked "$signer_serial"
if "$bin" flist verify "$demo/federationList.jws" --trust "$demo/trust"; then
	echo "unexpected: a list from a revoked signer verified" >&2
	exit 1
fi

step "8. One changed byte in the signature: refused"
jws=$(cat "$demo/federationList.jws")
sig=${jws##*.}
first=${sig:0:1}
if [ "$first" = A ]; then swap=B; else swap=A; fi
printf '%s.%s%s' "${jws%.*}" "$swap" "${sig:1}" >"$demo/tampered.jws"
if "$bin" flist verify "$demo/tampered.jws" --trust "$demo/trust" --ocsp off; then
	echo "unexpected: a tampered list verified" >&2
	exit 1
fi

stop_responder
printf '\n\033[1mPKI walkthrough complete.\033[0m\n'

# Part 2: the messenger stack. It keeps running after its walkthrough until Ctrl-C (DEMO_EXIT=1: exits).
exec "$bin" demo --dir "$demo/stack" --cards "$gematik/pki/cards" --port-base "${DEMO_PORT_BASE:-8580}"
