package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTPDirectory looks users up in the company's user service:
// GET <url with {id} replaced by the path-escaped user ID>, answering 200 with
// {"id", "status", "tenant_id"} or 404 for an unknown user.
type HTTPDirectory struct {
	urlTemplate string
	client      *http.Client
}

var _ UserDirectory = (*HTTPDirectory)(nil)

// NewHTTPDirectory returns a directory calling urlTemplate, which must
// contain "{id}". A response over maxBytes is refused (the cache then
// serves what it has, up to users.max_stale).
func NewHTTPDirectory(urlTemplate string, timeout time.Duration, maxBytes int64, log *slog.Logger) (*HTTPDirectory, error) {
	if !strings.Contains(urlTemplate, "{id}") {
		return nil, fmt.Errorf("users.url %q must contain {id}", urlTemplate)
	}
	if _, err := url.Parse(strings.ReplaceAll(urlTemplate, "{id}", "x")); err != nil {
		return nil, fmt.Errorf("users.url: %w", err)
	}
	if maxBytes <= 0 {
		maxBytes = defaultMaxResponseBytes
	}
	return &HTTPDirectory{urlTemplate: urlTemplate, client: newBoundedClient(timeout, maxBytes, "users.max_response_bytes", log)}, nil
}

// LookupUser implements UserDirectory.
func (d *HTTPDirectory) LookupUser(ctx context.Context, id string) (User, error) {
	u := strings.ReplaceAll(d.urlTemplate, "{id}", url.PathEscape(id))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return User{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return User{}, fmt.Errorf("user service: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return User{}, ErrUserNotFound
	default:
		return User{}, fmt.Errorf("user service: status %d for user %q", resp.StatusCode, id)
	}
	// Read whole (within users.max_response_bytes) so that an oversized
	// or trailing-garbage answer is an error, not half-read.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return User{}, fmt.Errorf("user service: reading the answer for user %q: %w", id, err)
	}
	var user User
	if err := json.Unmarshal(body, &user); err != nil {
		return User{}, fmt.Errorf("user service: bad response for user %q: %w", id, err)
	}
	if user.ID != id {
		return User{}, fmt.Errorf("user service: asked for user %q, got %q", id, user.ID)
	}
	if user.Status != UserActive && user.Status != UserBlocked {
		return User{}, fmt.Errorf("user service: user %q has unknown status %q", id, user.Status)
	}
	return user, nil
}
