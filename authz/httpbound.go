package authz

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// ResponseTooLargeError is a response from the issuer or the user service
// that was refused for its size before it was read whole.
type ResponseTooLargeError struct {
	URL     string
	Limit   int64
	Setting string
}

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("response from %s is larger than %d bytes (%s); refused", e.URL, e.Limit, e.Setting)
}

// boundedTransport refuses responses larger than limit: at once when the
// Content-Length says so, otherwise as soon as the body passes the limit.
// Libraries that read whole bodies (jwx's JWKS cache reads with io.ReadAll)
// then see an error instead of buffering whatever a broken or hostile
// server sends.
type boundedTransport struct {
	next    http.RoundTripper
	limit   int64
	setting string
	log     *slog.Logger
}

// newBoundedClient returns an HTTP client whose responses are at most limit
// bytes; setting names the configuration that sets the limit, for the log.
func newBoundedClient(timeout time.Duration, limit int64, setting string, log *slog.Logger) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &boundedTransport{next: http.DefaultTransport, limit: limit, setting: setting, log: log}}
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, t.refuse(req)
	}
	resp.Body = &boundedBody{body: resp.Body, remaining: t.limit, refuse: func() error { return t.refuse(req) }}
	return resp, nil
}

func (t *boundedTransport) refuse(req *http.Request) error {
	err := &ResponseTooLargeError{URL: req.URL.Redacted(), Limit: t.limit, Setting: t.setting}
	t.log.Error("refused an oversized response; keeping the state in use", "url", err.URL, "limit_bytes", t.limit, "setting", t.setting)
	return err
}

// boundedBody reads at most remaining bytes, and fails (rather than
// truncating) when the body holds more.
type boundedBody struct {
	body      io.ReadCloser
	remaining int64
	refuse    func() error
	err       error
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.remaining <= 0 {
		// At the limit: one more byte means the body is too large.
		var probe [1]byte
		n, err := b.body.Read(probe[:])
		if n > 0 {
			b.err = b.refuse()
			return 0, b.err
		}
		return 0, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.body.Read(p)
	b.remaining -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.body.Close() }
