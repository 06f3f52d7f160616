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

// pythonSignRequest signs each request case {"method","uri","origin","destination","body"} the way the
// specification's authorization_headers example and Synapse do, with the specification's test key, and
// returns the base64 signature.
func pythonSignRequest(t *testing.T, cases []map[string]string) []pythonResult {
	return runPython(t, pyPrelude+`
key = signedjson.key.decode_signing_key_base64("ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
def sign(c):
    obj = {"method": c["method"], "uri": c["uri"], "origin": c["origin"], "destination": c["destination"]}
    if c["body"]:
        obj["content"] = json.loads(c["body"])
    signed = signedjson.sign.sign_json(obj, c["origin"], key)
    return signed["signatures"][c["origin"]]["ed25519:1"].encode()
run(sign)
`, cases)
}
