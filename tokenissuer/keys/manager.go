// Package keys owns the issuer's signing keys: generating them, keeping
// them encrypted at rest, rotating them without failed requests (published
// before they sign, kept until what they signed has expired), the JWKS, and
// the access tokens they sign and verify (RFC 9068).
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Clock tells the time; tests drive a fake one.
type Clock interface{ Now() time.Time }

// SigningKey is a token signing key as stored.
type SigningKey struct {
	KID       string
	Algorithm string
	// PrivateJWK is the private key as a JWK (JSON), sealed by the
	// Encrypter when one is configured.
	PrivateJWK []byte
	CreatedAt  time.Time
	// ActiveAt is when the key starts signing; it is published in the JWKS
	// from CreatedAt on, so verifiers learn it before they meet its tokens.
	ActiveAt time.Time
	// RetireAt, when set, is when the key leaves the JWKS: after every token
	// it can have signed has expired.
	RetireAt time.Time
}

// ErrKeyChanged is a stored key replaced meanwhile by someone else, or gone.
var ErrKeyChanged = errors.New("the signing key changed meanwhile, or is gone")

// Store keeps signing keys, shared by every replica.
type Store interface {
	// SigningKeys returns every stored signing key, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// AddSigningKey stores key and, in the same transaction, sets RetireAt to
	// retireOthersAt on every other key that has none yet, but only when no
	// key was created at or after onlyIfNewestBefore (zero: only when there is
	// no key at all). Replicas racing to create or rotate keys are serialized,
	// and all but the first find the condition false and add nothing.
	AddSigningKey(ctx context.Context, key SigningKey, retireOthersAt, onlyIfNewestBefore time.Time) (added bool, err error)
	// DeleteSigningKeysRetiredBefore removes keys whose RetireAt is before t.
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) error
	// ReplaceSigningKeyPrivate replaces the stored private key material of
	// kid with replacement, only if it is still old (ErrKeyChanged if not).
	ReplaceSigningKeyPrivate(ctx context.Context, kid string, old, replacement []byte) error
}

// always is an onlyIfNewestBefore that every key satisfies: rotate now.
var always = time.Unix(1<<40, 0)

// SupportedAlgorithms are the token signing algorithms the issuer offers.
var SupportedAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// rsaKeyBits is the RSA modulus size of generated RS256 keys.
const rsaKeyBits = 2048

// signingKey is a parsed, ready-to-use signing key.
type signingKey struct {
	kid       string
	alg       jwa.SignatureAlgorithm
	private   jwk.Key
	createdAt time.Time
	activeAt  time.Time
	retireAt  time.Time
}

// keySnapshot is an immutable view of the keys, swapped whole on refresh.
type keySnapshot struct {
	// byActivation is ordered by activeAt, newest last.
	byActivation []signingKey
	jwks         []byte
	// public is the published key set, parsed, for verifying own tokens.
	public jwk.Set
}

// Manager owns the signing keys: it creates the first one, rotates them,
// publishes the JWKS and picks the key that signs at a given moment. Keys live
// in the Store so that a restart, another process (the CLI) or another replica
// sees the same keys.
type Manager struct {
	store     Store
	clock     Clock
	log       *slog.Logger
	algorithm string
	// publishDelay is how long a new key is published before it signs; it must
	// exceed how long verifiers cache the JWKS.
	publishDelay time.Duration
	// maxTokenLifetime bounds how long an old key stays published after its
	// successor takes over.
	maxTokenLifetime time.Duration
	// rotateEvery, when positive, rotates keys on a schedule.
	rotateEvery time.Duration
	encrypter   *Encrypter
	snapshot    atomic.Pointer[keySnapshot]
}

// Config configures a Manager.
type Config struct {
	Algorithm        string
	PublishDelay     time.Duration
	MaxTokenLifetime time.Duration
	// RotateEvery, when positive, rotates the keys automatically.
	RotateEvery time.Duration
	// Encrypter, when set, encrypts private keys at rest.
	Encrypter *Encrypter
}

// NewManager returns a Manager; call Load before use.
func NewManager(store Store, cfg Config, clock Clock, log *slog.Logger) (*Manager, error) {
	if !IsSupportedAlgorithm(cfg.Algorithm) {
		return nil, fmt.Errorf("signing algorithm %q is not supported; use one of %v", cfg.Algorithm, SupportedAlgorithms)
	}
	return &Manager{store: store, clock: clock, log: log, algorithm: cfg.Algorithm,
		publishDelay: cfg.PublishDelay, maxTokenLifetime: cfg.MaxTokenLifetime,
		rotateEvery: cfg.RotateEvery, encrypter: cfg.Encrypter}, nil
}

func IsSupportedAlgorithm(alg string) bool {
	for _, a := range SupportedAlgorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// Load reads the keys from the store, creating the first key when there is
// none. The first key signs at once: no verifier can have cached a JWKS yet.
func (m *Manager) Load(ctx context.Context) error {
	stored, err := m.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		now := m.clock.Now()
		key, err := m.generate(now, now)
		if err != nil {
			return err
		}
		// Only if there is still no key: replicas starting together create one.
		added, err := m.store.AddSigningKey(ctx, key, time.Time{}, time.Time{})
		if err != nil {
			return err
		}
		if added {
			m.log.Info("created the first signing key", "kid", key.KID, "alg", key.Algorithm)
		}
		if stored, err = m.store.SigningKeys(ctx); err != nil {
			return err
		}
	}
	snap, err := m.buildSnapshot(stored)
	if err != nil {
		return err
	}
	m.snapshot.Store(snap)
	return nil
}

// Rotate creates a new key that is published now and signs from now +
// publishDelay on. Every older key keeps being published until the new key
// has signed for maxTokenLifetime, so every token an old key signed has
// expired before its public key disappears.
func (m *Manager) Rotate(ctx context.Context) (SigningKey, error) {
	key, _, err := m.rotate(ctx, always)
	return key, err
}

// rotate adds a new key unless one was created at or after
// onlyIfNewestBefore (by another replica).
func (m *Manager) rotate(ctx context.Context, onlyIfNewestBefore time.Time) (SigningKey, bool, error) {
	now := m.clock.Now()
	key, err := m.generate(now, now.Add(m.publishDelay))
	if err != nil {
		return SigningKey{}, false, err
	}
	// One extra minute covers clock skew between the issuer and verifiers.
	retireOthersAt := key.ActiveAt.Add(m.maxTokenLifetime + time.Minute)
	added, err := m.store.AddSigningKey(ctx, key, retireOthersAt, onlyIfNewestBefore)
	if err != nil {
		return SigningKey{}, false, err
	}
	return key, added, m.Load(ctx)
}

// RotateIfDue rotates when scheduled rotation is on and the newest key is
// older than the interval. Across replicas only one rotation happens: the
// store adds the key only if no replica has added one since.
func (m *Manager) RotateIfDue(ctx context.Context) (bool, error) {
	snap := m.snapshot.Load()
	if m.rotateEvery <= 0 || snap == nil {
		return false, nil
	}
	now := m.clock.Now()
	var newest time.Time
	for _, k := range snap.byActivation {
		if k.createdAt.After(newest) {
			newest = k.createdAt
		}
	}
	if now.Sub(newest) < m.rotateEvery {
		return false, nil
	}
	key, added, err := m.rotate(ctx, now.Add(-m.rotateEvery))
	if added {
		m.log.Info("rotated the signing key on schedule", "kid", key.KID, "signs_from", key.ActiveAt)
	}
	return added, err
}

// Run reloads the keys every interval until ctx ends, so rotations made by the
// CLI or another replica are picked up, and prunes keys that have retired.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.store.DeleteSigningKeysRetiredBefore(ctx, m.clock.Now()); err != nil {
				m.log.Warn("pruning retired signing keys failed", "err", err)
			}
			if _, err := m.RotateIfDue(ctx); err != nil {
				m.log.Warn("scheduled key rotation failed; will retry", "err", err)
			}
			if err := m.Load(ctx); err != nil {
				m.log.Warn("reloading signing keys failed; keeping the keys in use", "err", err)
			}
		}
	}
}

func (m *Manager) generate(createdAt, activeAt time.Time) (SigningKey, error) {
	var raw any
	var err error
	switch m.algorithm {
	case "RS256":
		raw, err = rsa.GenerateKey(rand.Reader, rsaKeyBits)
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s key: %w", m.algorithm, err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return SigningKey{}, fmt.Errorf("wrap %s key: %w", m.algorithm, err)
	}
	// RFC 7638 thumbprint (SHA-256) of the public key as kid.
	if err := jwk.AssignKeyID(key); err != nil {
		return SigningKey{}, fmt.Errorf("compute key thumbprint: %w", err)
	}
	if err := key.Set(jwk.AlgorithmKey, m.algorithm); err != nil {
		return SigningKey{}, err
	}
	if err := key.Set(jwk.KeyUsageKey, "sig"); err != nil {
		return SigningKey{}, err
	}
	encoded, err := json.Marshal(key)
	if err != nil {
		return SigningKey{}, fmt.Errorf("encode key: %w", err)
	}
	if m.encrypter != nil {
		encoded = m.encrypter.Seal(key.KeyID(), encoded)
	}
	return SigningKey{KID: key.KeyID(), Algorithm: m.algorithm, PrivateJWK: encoded, CreatedAt: createdAt, ActiveAt: activeAt}, nil
}

func (m *Manager) buildSnapshot(stored []SigningKey) (*keySnapshot, error) {
	now := m.clock.Now()
	snap := &keySnapshot{}
	public := jwk.NewSet()
	for _, sk := range stored {
		if !sk.RetireAt.IsZero() && !now.Before(sk.RetireAt) {
			continue // every token it signed has expired
		}
		plain, err := OpenStored(m.encrypter, sk.KID, sk.PrivateJWK)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
		}
		private, err := parseStoredKey(sk.KID, plain)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
		}
		var alg jwa.SignatureAlgorithm
		if err := alg.Accept(sk.Algorithm); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
		}
		snap.byActivation = append(snap.byActivation, signingKey{kid: sk.KID, alg: alg, private: private, createdAt: sk.CreatedAt, activeAt: sk.ActiveAt, retireAt: sk.RetireAt})
		pub, err := private.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
		}
		if err := public.AddKey(pub); err != nil {
			return nil, err
		}
	}
	if len(snap.byActivation) == 0 {
		return nil, errors.New("no usable signing key in the store; run `issuer keys rotate`")
	}
	sort.SliceStable(snap.byActivation, func(i, j int) bool {
		return snap.byActivation[i].activeAt.Before(snap.byActivation[j].activeAt)
	})
	jwks, err := json.Marshal(public)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	snap.jwks, snap.public = jwks, public
	return snap, nil
}

// parseStoredKey parses a stored private JWK and checks that its kid is its
// RFC 7638 thumbprint, as the issuer assigns them: a row whose key and kid
// disagree was not written by the issuer.
func parseStoredKey(kid string, plain []byte) (jwk.Key, error) {
	private, err := jwk.ParseKey(plain)
	if err != nil {
		return nil, err
	}
	tp, err := private.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("compute thumbprint: %w", err)
	}
	if base64.RawURLEncoding.EncodeToString(tp) != kid || private.KeyID() != kid {
		return nil, errors.New("the kid is not the key's RFC 7638 thumbprint")
	}
	return private, nil
}

// EncryptStoredKeys encrypts, under the key-encryption key, every signing
// key the store holds in clear (written before keys were encrypted by
// default), and returns how many it encrypted. Each key is checked before
// it is sealed, so a planted key is not laundered.
func (m *Manager) EncryptStoredKeys(ctx context.Context) (int, error) {
	if m.encrypter == nil {
		return 0, errors.New("no key-encryption key is configured (keys.encryption_key_file or keys.encryption_key)")
	}
	stored, err := m.store.SigningKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sk := range stored {
		if IsSealed(sk.PrivateJWK) {
			continue
		}
		if _, err := parseStoredKey(sk.KID, sk.PrivateJWK); err != nil {
			return n, fmt.Errorf("signing key %s: %w; not encrypted", sk.KID, err)
		}
		sealed := m.encrypter.Seal(sk.KID, sk.PrivateJWK)
		if err := m.store.ReplaceSigningKeyPrivate(ctx, sk.KID, sk.PrivateJWK, sealed); err != nil {
			return n, fmt.Errorf("signing key %s: %w", sk.KID, err)
		}
		n++
	}
	return n, nil
}

// Ready reports whether a key signs at now (the issuer's health).
func (m *Manager) Ready(now time.Time) error {
	_, err := m.signer(now)
	return err
}

// signer returns the key that signs at now: the most recently activated key
// whose activation time has come.
func (m *Manager) signer(now time.Time) (signingKey, error) {
	snap := m.snapshot.Load()
	if snap == nil {
		return signingKey{}, errors.New("signing keys not loaded")
	}
	for i := len(snap.byActivation) - 1; i >= 0; i-- {
		if !snap.byActivation[i].activeAt.After(now) {
			return snap.byActivation[i], nil
		}
	}
	return signingKey{}, errors.New("no signing key is active yet")
}

// JWKS returns the public key set as served at /.well-known/jwks.json.
func (m *Manager) JWKS() []byte {
	snap := m.snapshot.Load()
	if snap == nil {
		return []byte(`{"keys":[]}`)
	}
	return snap.jwks
}

// Info describes a key for the CLI; it never includes private material.
type Info struct {
	KID       string    `json:"kid"`
	Algorithm string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	ActiveAt  time.Time `json:"active_at"`
	RetireAt  time.Time `json:"retire_at,omitzero"`
	Signing   bool      `json:"signing"`
}

// Keys describes the published keys and which one signs now.
func (m *Manager) Keys() []Info {
	snap := m.snapshot.Load()
	if snap == nil {
		return nil
	}
	current, _ := m.signer(m.clock.Now())
	infos := make([]Info, 0, len(snap.byActivation))
	for _, k := range snap.byActivation {
		infos = append(infos, Info{KID: k.kid, Algorithm: k.alg.String(), CreatedAt: k.createdAt, ActiveAt: k.activeAt, RetireAt: k.retireAt, Signing: k.kid == current.kid})
	}
	return infos
}

// Encrypter is the key-encryption key's encrypter, which also protects the
// portal accounts' second factors.
func (m *Manager) Encrypter() *Encrypter { return m.encrypter }
