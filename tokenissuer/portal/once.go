package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// A secret shown once travels from the handler that made it to the page
// that shows it (Post/Redirect/Get, so a reload never repeats the change)
// in a cookie: AES-GCM under a key derived from the session cookie's value,
// which only the browser holds (the store keeps its hash). The cookie is
// scoped to the one page, lives two minutes, and is deleted when read: a
// reload finds nothing, and neither a URL, a log nor the store ever holds
// the secret.

// onceLifetime is how long the browser has to follow the redirect.
const onceLifetime = 2 * time.Minute

// shownOnce is what the page shows once.
type shownOnce struct {
	// For is what it belongs to (a client ID, an email): the page checks it.
	For    string `json:"for"`
	Secret string `json:"secret"`
	// Label says what the secret is for, e.g. the invited email.
	Label   string    `json:"label,omitempty"`
	Expires time.Time `json:"exp"`
}

func (p *Portal) onceCookie() string {
	if p.opts.SecureCookies {
		return "__Secure-portcullis-once"
	}
	return "portcullis-once"
}

func onceKey(sessionToken, page string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(sessionToken), nil, "portcullis portal shown-once "+page, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// showOnce hands s to the page at path, to be read by takeOnce.
func (p *Portal) showOnce(w http.ResponseWriter, v *visitor, path string, s shownOnce) error {
	aead, err := onceKey(v.token, path)
	if err != nil {
		return err
	}
	s.Expires = time.Now().Add(onceLifetime)
	plain, err := json.Marshal(s)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plain, []byte(path))
	http.SetCookie(w, &http.Cookie{Name: p.onceCookie(), Value: base64.RawURLEncoding.EncodeToString(sealed), Path: path,
		MaxAge: int(onceLifetime / time.Second), HttpOnly: true, Secure: p.opts.SecureCookies, SameSite: http.SameSiteStrictMode})
	return nil
}

var errNothingToShow = errors.New("nothing to show")

// takeOnce reads and deletes what showOnce left for this page.
func (p *Portal) takeOnce(w http.ResponseWriter, r *http.Request, v *visitor, forWhat string) (shownOnce, error) {
	c, err := r.Cookie(p.onceCookie())
	if err != nil {
		return shownOnce{}, errNothingToShow
	}
	p.clearCookie(w, p.onceCookie(), r.URL.Path)
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return shownOnce{}, errNothingToShow
	}
	aead, err := onceKey(v.token, r.URL.Path)
	if err != nil || len(sealed) < aead.NonceSize() {
		return shownOnce{}, errNothingToShow
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(r.URL.Path))
	if err != nil {
		return shownOnce{}, errNothingToShow
	}
	var s shownOnce
	if err := json.Unmarshal(plain, &s); err != nil || s.For != forWhat || time.Now().After(s.Expires) {
		return shownOnce{}, errNothingToShow
	}
	return s, nil
}
