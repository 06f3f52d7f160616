package matrix

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// synapsePython returns the interpreter of the Synapse virtualenv that `make` sets up, which carries
// Synapse's own canonicaljson and signedjson libraries. Cross-checks against them are skipped only when
// that interpreter is absent (a machine without the Synapse test setup); everything else is a failure.
func synapsePython(t *testing.T) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no home directory: %v", err)
	}
	py := filepath.Join(home, ".cache", "timstack", "synapse", "1.163.2", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Skipf("Synapse's Python (%s) is absent, cross-check skipped", py)
	}
	return py
}

// pythonResult is one answer of the Python helper: the output bytes, or the exception text.
type pythonResult struct {
	Out []byte `json:"out"`
	Err string `json:"err"`
}

// runPython feeds inputs (a JSON array) to script on stdin; the script prints a JSON array of
// {"out": base64 bytes, "err": text}.
func runPython(t *testing.T, script string, inputs any) []pythonResult {
	t.Helper()
	py := synapsePython(t)
	in, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var res []pythonResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	return res
}

// pyPrelude reads the inputs and defines emit; each script maps one input to bytes.
const pyPrelude = `
import sys, json, base64
import canonicaljson, signedjson.key, signedjson.sign
inputs = json.loads(sys.stdin.buffer.read())
results = []
def run(f):
    for x in inputs:
        try:
            results.append({"out": base64.b64encode(f(x)).decode(), "err": ""})
        except Exception as e:
            results.append({"out": None, "err": "%s: %s" % (type(e).__name__, e)})
    sys.stdout.write(json.dumps(results))
`

// pythonCanonical canonicalises each raw JSON text with canonicaljson.encode_canonical_json.
func pythonCanonical(t *testing.T, raws []string) []pythonResult {
	return runPython(t, pyPrelude+`
run(lambda x: canonicaljson.encode_canonical_json(json.loads(x)))
`, raws)
}

// pythonSign signs each raw JSON object with signedjson as entity "domain" using the specification's
// test key (seed below, key ID ed25519:1) and returns the canonical encoding of the signed object.
func pythonSign(t *testing.T, raws []string) []pythonResult {
	return runPython(t, pyPrelude+`
key = signedjson.key.decode_signing_key_base64("ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
run(lambda x: canonicaljson.encode_canonical_json(signedjson.sign.sign_json(json.loads(x), "domain", key)))
`, raws)
}

// pythonVerifyRequest returns b"ok" when signedjson verifies the request object built the way Synapse's
// federation server does, from a {"header": ..., "method", "uri", "destination", "body"} case.
func pythonVerifyRequest(t *testing.T, cases []map[string]string) []pythonResult {
	return runPython(t, pyPrelude+`
key = signedjson.key.decode_signing_key_base64("ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
vk = signedjson.key.get_verify_key(key)
def check(c):
    params = dict(p.split("=", 1) for p in c["header"].split(" ", 1)[1].split(","))
    strip = lambda s: s[1:-1] if s.startswith('"') else s
    obj = {"method": c["method"], "uri": c["uri"], "origin": strip(params["origin"]),
           "destination": c["destination"], "signatures": {strip(params["origin"]): {strip(params["key"]): strip(params["sig"])}}}
    if c["body"]:
        obj["content"] = json.loads(c["body"])
    signedjson.sign.verify_signed_json(obj, strip(params["origin"]), vk)
    return b"ok"
run(check)
`, cases)
}
