#!/usr/bin/env bash
# Checks the Rego modules in policy/rego with the opa CLI of exactly the OPA version go.mod pins, so the CLI and
# the embedded engine never disagree on syntax or builtins. Builds that CLI once into the tools cache.
#   opa fmt --fail -l, opa check --strict, opa test -v --fail-on-empty, opa test --coverage (threshold below).
# Usage: scripts/opa.sh [rego dir]   (default policy/rego; run from anywhere inside the checkout)
set -euo pipefail

COVERAGE_MIN="${OPA_COVERAGE_MIN:-90}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dir="${1:-policy/rego}"

cache="${TIMSTACK_CACHE:-$HOME/.cache/timstack}"
bin="$cache/tools/bin"
mkdir -p "$bin"

version="$(go list -m -f '{{.Version}}' github.com/open-policy-agent/opa)"
opa="$bin/opa-$version"
if [ ! -x "$opa" ]; then
	echo "opa.sh: building opa $version into $opa (first run only)" >&2
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	# Build inside our module first: same dependency versions as the engine, and -mod=readonly guarantees
	# go.mod and go.sum stay untouched. If go.sum lacks the CLI's own dependencies (they are not ours),
	# fall back to OPA's release module graph, built outside our module so nothing here changes either.
	if ! go build -mod=readonly -o "$tmp/opa" github.com/open-policy-agent/opa 2>"$tmp/build.log"; then
		echo "opa.sh: in-module build failed, building from the release module instead:" >&2
		sed 's/^/  /' "$tmp/build.log" >&2
		(cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp" go install "github.com/open-policy-agent/opa@$version")
	fi
	mv "$tmp/opa" "$opa.partial"
	mv "$opa.partial" "$opa" # atomic: a half-written binary never carries the final name
	rm -rf "$tmp"
	trap - EXIT
fi

echo "opa.sh: opa $version on $dir" >&2

if ! unformatted="$("$opa" fmt --fail -l "$dir")"; then
	echo "opa.sh: opa fmt needed (run: $opa fmt -w $dir):" >&2
	echo "$unformatted" >&2
	exit 1
fi

"$opa" check --strict "$dir"

"$opa" test -v --fail-on-empty --timeout 60s "$dir"

coverage_file="$(mktemp)"
trap 'rm -f "$coverage_file"' EXIT
"$opa" test --coverage --timeout 60s "$dir" >"$coverage_file"
python3 - "$COVERAGE_MIN" "$coverage_file" <<'PY'
import json, sys

minimum = float(sys.argv[1])
with open(sys.argv[2]) as fh:
    report = json.load(fh)
# OPA's own total counts the *_test.rego files too; the threshold applies to the policy modules alone.
covered = not_covered = 0
for name, f in sorted(report.get("files", {}).items()):
    if name.endswith("_test.rego"):
        continue
    covered += f.get("covered_lines", 0)
    not_covered += f.get("not_covered_lines", 0)
    missed = [f"{r['start']['row']}" for r in f.get("not_covered", [])]
    print(f"opa.sh: {name}: {f.get('coverage', 0):.1f} %" + (f" (lines not covered: {', '.join(sorted(set(missed), key=int))})" if missed else ""))
total = 100.0 * covered / (covered + not_covered) if covered + not_covered else 0.0
print(f"opa.sh: policy modules {total:.1f} % of {covered + not_covered} lines covered (minimum {minimum:.0f} %)")
if total < minimum:
    sys.exit(1)
PY
