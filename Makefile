# timstack — the two commands of the README (`make demo`, `make test`) do all set-up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
PKGS := ./...
FUZZTIME ?= 60s

.PHONY: all build test test-unit test-e2e lint lint-rego demo fuzz-smoke bench bench-certs bench-directory bench-proxy clean

all: build

build:
	$(GO) build -o bin/timstack ./cmd/timstack

## test: everything CI runs — formatting, vet, staticcheck, Rego checks, all tests (the e2e suite against
## real Synapse homeservers included: it lives in ./proxy/e2e and runs with the other packages).
test: lint lint-rego test-unit

## lint-rego: opa fmt/check/test and Rego coverage ≥ 90 % on policy/rego (opa built from go.mod's version).
lint-rego:
	scripts/opa.sh

lint:
	@bin_dir=$$(scripts/tools.sh); \
	unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi; \
	$(GO) vet $(PKGS); \
	"$$bin_dir/staticcheck" $(PKGS)

test-unit:
	@scripts/postgres.sh
	@scripts/synapse.sh >/dev/null
	@scripts/node.sh >/dev/null
	$(GO) test -race -count=1 $(PKGS)

## test-e2e: only the end-to-end suite (two Synapse homeservers, each behind its own proxy).
test-e2e:
	@scripts/synapse.sh >/dev/null
	@scripts/node.sh >/dev/null
	$(GO) test -race -count=1 -v ./proxy/e2e/...

## demo: build and run the stack as far as it exists (DEMO_EXIT=1 exits after the walkthrough).
demo:
	scripts/demo.sh

## fuzz-smoke: every fuzz target for $(FUZZTIME) each.
FUZZ_TARGETS := \
	./certs:FuzzParseCertificate \
	./certs:FuzzParseCompactJWS \
	./certs:FuzzParseFederationListPayload \
	./certs:FuzzParseOCSPResponse \
	./certs:FuzzDecryptJWE \
	./certs:FuzzParseTSL \
	./directory/search:FuzzParse \
	./directory/fhir:FuzzParse \
	./proxy/matrix:FuzzParseXMatrix \
	./proxy/matrix:FuzzCanonicalJSON \
	./proxy/matrix:FuzzParseServerKeys \
	./proxy/matrix:FuzzParseUserID \
	./proxy/route:FuzzCheckTarget \
	./proxy/route:FuzzLookup \
	./proxy:FuzzFramingScanner \
	./proxy:FuzzCheckJSONKeys \
	./proxy/appservice:FuzzParsePermissionConfig \
	./proxy/appservice:FuzzHandleTransaction \
	./proxy/forward:FuzzParseAuthority \
	./proxy/flist:FuzzParseMeta \
	./proxy/flist:FuzzParseTokenResponse \
	./proxy/dirfacts:FuzzParseOrganizationTypes \
	./proxy/dirfacts:FuzzParseToken \
	./policy:FuzzEval \
	./policy:FuzzDecodeWasmResult \
	./authn/idp:FuzzParseTokenResponse \
	./authn/idp:FuzzVerifyIDToken \
	./authn/devidp:FuzzSignedChallenge \
	./authn/devidp:FuzzTokenRequest \
	./authn/devidp:FuzzParseKeyVerifier \
	./authn/matrixopenid:FuzzParseUserInfo \
	./authn/matrixopenid:FuzzParseWellKnown \
	./authn/matrixopenid:FuzzValidateServerName \
	./authn/registration:FuzzParseMXID \
	./authn/registration:FuzzParseServiceRequest \
	./authn/registration:FuzzParseConfig \
	./directory:FuzzRegServiceClaims \
	./directory:FuzzRegServiceToken \
	./proxy:FuzzDecisionLogLine
# -fuzzminimizetime 100x keeps the fuzzer from spending the whole budget shrinking finds from large seeds
# (the 60 KB federation list); the committed seed corpora live in <pkg>/testdata/fuzz/<target>/.
fuzz-smoke:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		log=$$(mktemp); \
		if $(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x >$$log 2>&1; then \
			tail -n 3 $$log; rm -f $$log; \
		else \
			tail -n 40 $$log; rm -f $$log; exit 1; \
		fi; \
	done

## bench: the certs benchmarks quoted in issue notes.
bench: bench-certs
bench-certs:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./certs

## bench-directory: SCALE=full|tenth|fiftieth ENGINE=postgres|sqlite — generate, import, measure (resumable).
SCALE ?= fiftieth
ENGINE ?= postgres
bench-directory:
	SCALE=$(SCALE) ENGINE=$(ENGINE) scripts/bench-directory.sh

## bench-proxy: added latency and throughput of the proxy next to a bare httputil.ReverseProxy.
bench-proxy:
	scripts/bench-proxy.sh

clean:
	rm -rf bin
