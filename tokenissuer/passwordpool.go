package tokenissuer

import (
	"context"
	"errors"
	"runtime"

	"github.com/alexedwards/argon2id"
)

// ErrBusy is a password check refused because as many are running and
// waiting as the issuer allows: try again in a moment.
var ErrBusy = errors.New("too many sign-ins at once; try again in a moment")

// passwordPool bounds Argon2id: each hash holds its memory cost (19 MiB by
// default) while it runs, so unbounded concurrent sign-ins grew the issuer
// by a gigabyte. At most `running` hash at once, `waiting` more wait for a
// turn, and anything beyond is refused at once with ErrBusy.
type passwordPool struct {
	running  chan struct{}
	admitted chan struct{}
}

func newPasswordPool() *passwordPool {
	n := max(2, runtime.GOMAXPROCS(0))
	return &passwordPool{running: make(chan struct{}, n), admitted: make(chan struct{}, 5*n)}
}

func (p *passwordPool) do(ctx context.Context, fn func() error) error {
	select {
	case p.admitted <- struct{}{}:
		defer func() { <-p.admitted }()
	default:
		return ErrBusy
	}
	select {
	case p.running <- struct{}{}:
		defer func() { <-p.running }()
	case <-ctx.Done():
		return ctx.Err()
	}
	return fn()
}

// compare checks password against hash within the pool.
func (p *passwordPool) compare(ctx context.Context, password, hash string) (bool, error) {
	var match bool
	err := p.do(ctx, func() (err error) {
		match, err = argon2id.ComparePasswordAndHash(password, hash)
		return err
	})
	return match, err
}

// hash hashes password within the pool.
func (p *passwordPool) hash(ctx context.Context, password string, params *argon2id.Params) (string, error) {
	var h string
	err := p.do(ctx, func() (err error) {
		h, err = argon2id.CreateHash(password, params)
		return err
	})
	return h, err
}
