package flist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/timstack/timstack/certs"
)

// Source fetches the federation list. haveVersion is the version of the verified list the caller holds,
// or -1 when it holds none. The answer is either the compact JWS bytes exactly as received (unverified:
// the Keeper verifies them) or current=true, meaning the source has nothing newer than haveVersion.
type Source interface {
	Fetch(ctx context.Context, haveVersion int64) (jws []byte, current bool, err error)
}

// DefaultHTTPTimeout bounds each HTTP call of a source when its Timeout is zero.
const DefaultHTTPTimeout = 10 * time.Second

// StatusError is an unexpected HTTP status from a source. The body is not kept: it is the source's text,
// and error strings end up in logs and in the Snapshot's Reason.
type StatusError struct {
	// Op names the call ("federation list", "client credentials", "ti-provider-authenticate").
	Op   string
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: unexpected HTTP status %d %s", e.Op, e.Code, http.StatusText(e.Code))
}

// ErrTooLarge is wrapped when a response or file exceeds the size limit.
var ErrTooLarge = errors.New("response exceeds size limit")

// FileSource reads a compact JWS list from a file, re-reading it on every fetch so that an operator can
// replace it without a restart.
//
// "Current" is decided on the file's unverified version field: equal to haveVersion means current. That
// is safe because the Keeper only counts "current" as contact when it already holds a verified list, and a
// file is a local source whose freshness is the operator's business.
type FileSource struct {
	Path string
	// MaxBytes bounds the file (default DefaultMaxListBytes).
	MaxBytes int64
}

// Fetch implements Source.
func (s *FileSource) Fetch(_ context.Context, haveVersion int64) ([]byte, bool, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, false, fmt.Errorf("federation list file: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, maxBytes(s.MaxBytes))
	if err != nil {
		return nil, false, fmt.Errorf("federation list file %s: %w", s.Path, err)
	}
	if haveVersion >= 0 {
		if v, ok := unverifiedVersion(data); ok && v == haveVersion {
			return nil, true, nil
		}
	}
	return data, false, nil
}

// unverifiedVersion reads the version of a compact JWS without checking anything; only used to skip a
// pointless verification.
func unverifiedVersion(jws []byte) (int64, bool) {
	j, err := certs.ParseCompactJWS(jws)
	if err != nil {
		return 0, false
	}
	v, _, err := certs.ParseFederationListPayload(j.Payload)
	if err != nil {
		return 0, false
	}
	return v, true
}

// RegServiceSource fetches the list from our registration service's I_internVerification endpoint:
// GET URL?version=N answers 200 with the original compact JWS bytes (application/jose), or 204 or 304
// when the caller's version is current.
type RegServiceSource struct {
	URL  string
	HTTP *http.Client
	// BearerToken, when set, is sent as Authorization: Bearer.
	BearerToken string
	// Timeout bounds the call (default DefaultHTTPTimeout); MaxBytes the body (default DefaultMaxListBytes).
	Timeout  time.Duration
	MaxBytes int64
}

// Fetch implements Source.
func (s *RegServiceSource) Fetch(ctx context.Context, haveVersion int64) ([]byte, bool, error) {
	u, err := withVersion(s.URL, haveVersion, "")
	if err != nil {
		return nil, false, fmt.Errorf("registration service: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout(s.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("registration service: %w", err)
	}
	req.Header.Set("Accept", "application/jose, application/octet-stream")
	if s.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.BearerToken)
	}
	resp, err := client(s.HTTP).Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("registration service: %w", err)
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent, http.StatusNotModified:
		return nil, true, nil
	default:
		return nil, false, &StatusError{Op: "registration service", Code: resp.StatusCode}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		// Some vendors wrap the list in JSON; ours must hand over the signed bytes unchanged.
		return nil, false, errors.New("registration service: answered application/json, expected the compact JWS (application/jose)")
	}
	body, err := readLimited(resp.Body, maxBytes(s.MaxBytes))
	if err != nil {
		return nil, false, fmt.Errorf("registration service: %w", err)
	}
	if len(body) == 0 {
		return nil, false, errors.New("registration service: 200 with an empty body")
	}
	return body, false, nil
}

// withVersion adds version (when ≥ 0) and sigAlg (when set) to the query of rawURL, keeping what is there.
func withVersion(rawURL string, version int64, sigAlg string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("URL %q is not http(s)", rawURL)
	}
	q := u.Query()
	if version >= 0 {
		q.Set("version", strconv.FormatInt(version, 10))
	}
	if sigAlg != "" {
		q.Set("sigAlg", sigAlg)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// drain reads a little of an unread body so the connection can be reused, then closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

func maxBytes(n int64) int64 {
	if n <= 0 {
		return DefaultMaxListBytes
	}
	return n
}

func timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultHTTPTimeout
	}
	return d
}

func client(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Timeout: DefaultHTTPTimeout}
	}
	return c
}
