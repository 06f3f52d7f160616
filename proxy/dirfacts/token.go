package dirfacts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxTokenFile bounds the token file; directory tokens are JWTs of well under a kilobyte.
const maxTokenFile = 64 << 10

// tokenFile reads the bearer token from a file and re-reads it when the file changes (size or
// modification time) or after the directory refused it. Errors never quote the file's content.
type tokenFile struct {
	path string

	mu      sync.Mutex
	size    int64
	modTime time.Time
	token   string
	stale   bool
}

func newTokenFile(path string) *tokenFile { return &tokenFile{path: path, stale: true} }

// get returns the current token.
func (t *tokenFile) get() (string, error) {
	fi, err := os.Stat(t.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stale && t.token != "" && fi.Size() == t.size && fi.ModTime().Equal(t.modTime) {
		return t.token, nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if len(data) > maxTokenFile {
		return "", fmt.Errorf("token file: %s is larger than %d bytes", t.path, maxTokenFile)
	}
	tok, err := parseToken(data)
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", t.path, err)
	}
	// The stat taken before the read may predate a concurrent rewrite; then the next get sees a newer
	// modification time and reads again, which is the safe direction.
	t.token, t.size, t.modTime, t.stale = tok, fi.Size(), fi.ModTime(), false
	return tok, nil
}

// invalidate makes the next get read the file again even if it looks unchanged (a token rewritten
// within the file system's timestamp granularity at the same length).
func (t *tokenFile) invalidate() {
	t.mu.Lock()
	t.stale = true
	t.mu.Unlock()
}

// parseToken accepts the bare token (timstack directory token) or the JSON answer of /tim-authenticate.
func parseToken(data []byte) (string, error) {
	data = bytes.TrimSpace(data)
	tok := string(data)
	if bytes.HasPrefix(data, []byte("{")) {
		var resp struct {
			AccessToken string `json:"access_token"`
		}
		if err := decodeStrict(data, &resp); err != nil {
			return "", errors.New("not a token and not a /tim-authenticate JSON answer")
		}
		tok = resp.AccessToken
	}
	if tok == "" {
		return "", errors.New("no token in the file")
	}
	for i := 0; i < len(tok); i++ {
		// RFC 6750 b64token is narrower; anything outside visible ASCII would corrupt the header.
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return "", errors.New("the token contains whitespace, control or non-ASCII characters")
		}
	}
	return tok, nil
}
