package adminapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"path"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// IdempotencyTTL is how long an Idempotency-Key is remembered.
const IdempotencyTTL = 24 * time.Hour

// maxIdempotencyKey bounds the header's length.
const maxIdempotencyKey = 255

// replayer answers a retried request from the resource the first one made.
type replayer func(w http.ResponseWriter, r *http.Request, c caller, resourceID string, status int) error

// idempotent makes h (a create or a rotation) happen at most once per
// Idempotency-Key and caller: a retry gets the first outcome again, with
// Idempotent-Replayed: true. A secret is never stored, so a replayed answer
// carries none: rotate again if the first answer was lost. The same key
// with another request is refused (422), and a retry while the first
// request runs gets 409.
func (a *API) idempotent(h handler, replay replayer) handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) error {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			return h(w, r, c)
		}
		if len(key) > maxIdempotencyKey {
			return &tokenissuer.InvalidError{Msg: "Idempotency-Key is longer than 255 characters"}
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return errTooLarge
			}
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		rec := tokenissuer.IdempotencyRecord{Scope: c.token.ClientID, Key: key,
			Fingerprint: r.Method + " " + r.URL.Path + " " + hex.EncodeToString(sum[:]), CreatedAt: time.Now().UTC()}
		existing, err := a.store.ClaimIdempotencyKey(r.Context(), rec)
		switch {
		case errors.Is(err, tokenissuer.ErrIdempotencyKeyTaken):
			if existing.Fingerprint != rec.Fingerprint {
				return errKeyReused
			}
			if !existing.Done {
				return errKeyInProgress
			}
			w.Header().Set("Idempotent-Replayed", "true")
			return replay(w, r, c, existing.ResourceID, existing.Status)
		case err != nil:
			return err
		}
		rw := &outcomeWriter{ResponseWriter: w}
		if err := h(rw, r, c); err != nil || rw.status >= 300 {
			_ = a.store.ReleaseIdempotencyKey(r.Context(), rec.Scope, rec.Key)
			return err
		}
		id := r.PathValue("id")
		if loc := rw.Header().Get("Location"); loc != "" {
			id = path.Base(loc)
		}
		if rw.resourceID != "" {
			id = rw.resourceID
		}
		return a.store.CompleteIdempotencyKey(r.Context(), rec.Scope, rec.Key, rw.status, id)
	}
}

// outcomeWriter notes the status a handler answered with.
type outcomeWriter struct {
	http.ResponseWriter
	status     int
	resourceID string
}

func (o *outcomeWriter) WriteHeader(status int) {
	o.status = status
	o.ResponseWriter.WriteHeader(status)
}

func (o *outcomeWriter) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.status = http.StatusOK
	}
	return o.ResponseWriter.Write(b)
}

var (
	errKeyReused     = errors.New("this Idempotency-Key was used for another request; use a new key per request")
	errKeyInProgress = errors.New("a request with this Idempotency-Key is still being made; retry shortly")
)

func (a *API) replayClient(w http.ResponseWriter, r *http.Request, _ caller, id string, status int) error {
	cl, err := a.admin.Client(r.Context(), id)
	if err != nil {
		return err
	}
	return writeClient(w, status, viewOf(cl), cl)
}

func (a *API) replayTenant(w http.ResponseWriter, r *http.Request, _ caller, id string, status int) error {
	t, err := a.admin.Tenant(r.Context(), id)
	if err != nil {
		return err
	}
	return writeTenant(w, status, t)
}

func (a *API) replayKeys(w http.ResponseWriter, r *http.Request, _ caller, _ string, status int) error {
	keys, err := a.admin.SigningKeys(r.Context(), a.keys)
	if err != nil {
		return err
	}
	return writeJSON(w, status, map[string]any{"keys": keys})
}
