package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/policy"
	"github.com/portcullis/portcullis/revocation"
)

// Request is what the decision reads from a CheckRequest.
type Request struct {
	Method string
	// Path is Envoy's :path, query string included.
	Path          string
	Authorization HeaderValues
	OnBehalfOf    HeaderValues
	// RequestID is Envoy's x-request-id, used as the decision ID.
	RequestID string
	// Underscored lists the request's header names that hold an
	// underscore (nil for almost every request): the ones that imitate a
	// trusted header are removed on allow.
	Underscored []string
	// underscoredSeen indexes Underscored by folded name once it is long.
	underscoredSeen map[string]struct{}
	// CannotRemove is set by an adapter whose answer cannot make the proxy
	// remove a header it names (nginx auth_request, Caddy forward_auth,
	// Traefik ForwardAuth): a request carrying an underscore spelling of a
	// trusted header is then refused rather than allowed with it.
	CannotRemove bool
}

// Decision is the outcome of a Check. The zero value is a denial: nothing
// but an explicit allow lets a request through.
type Decision struct {
	Reason Reason
	// Denial is nil exactly when the request is allowed.
	Denial *Denial
	Route  *policy.Route
	// Identity established so far (for the upstream headers and the logs).
	ClientID string
	Scopes   string
	TenantID string
	UserID   string
	// Cause explains a denial in the logs; never sent to the client.
	Cause error
	// ShadowReason and ShadowRoute are what the shadow policy would have
	// decided (empty when there is none); they never change the decision.
	ShadowReason Reason
	ShadowRoute  *policy.Route

	allowed bool
	setMask int
	// spoofed are underscore spellings of protected headers to remove.
	spoofed []string
}

// Allowed reports whether the request may proceed.
func (d *Decision) Allowed() bool { return d.allowed && d.Denial == nil }

// PolicySource returns the policy in use (nil before the first good load).
type PolicySource interface {
	Current() *policy.Policy
}

// Decider makes the Check decision, in the order ARCHITECTURE.md gives. It
// holds no per-request state.
type Decider struct {
	policies  PolicySource
	verifier  TokenVerifier
	users     UserDirectory
	cfg       DeciderConfig
	denials   *denialTable
	mutations *headerMutations
}

// DeciderConfig holds the settings the decision reads.
type DeciderConfig struct {
	Headers HeaderNames
	// Realm is the realm of WWW-Authenticate challenges.
	Realm string
	// AllowTenantlessClients lets a token without a tenant_id act on behalf
	// of users (of any tenant). Off, such a token acts for nobody.
	AllowTenantlessClients bool
	// Revocations is the live set of revoked tokens; nil when revocation
	// is not followed.
	Revocations RevocationSource
	// Shadow is a candidate policy evaluated beside the live one, which
	// alone decides; nil when there is none.
	Shadow PolicySource
}

// RevocationSource holds the live set of revocations.
type RevocationSource interface {
	Current() *revocation.Set
}

// NewDecider wires a Decider.
func NewDecider(policies PolicySource, verifier TokenVerifier, users UserDirectory, cfg DeciderConfig) *Decider {
	return &Decider{policies: policies, verifier: verifier, users: users, cfg: cfg,
		denials: newDenialTable(cfg.Realm), mutations: newHeaderMutations(cfg.Headers)}
}

func (d *Decider) deny(dec *Decision, reason Reason, cause error) Decision {
	dec.Reason, dec.Denial, dec.Cause, dec.allowed = reason, d.denials.get(reason), cause, false
	return *dec
}

// Decide runs the decision table top to bottom; the first failing step
// decides. Every path that is not an explicit allow is a denial. With a
// shadow policy, what it would have decided is recorded beside.
func (d *Decider) Decide(ctx context.Context, req *Request) Decision {
	dec := d.decide(ctx, req)
	if d.cfg.Shadow != nil {
		d.shadow(ctx, req, &dec)
	}
	return dec
}

func (d *Decider) decide(ctx context.Context, req *Request) Decision {
	var dec Decision
	pol := d.policies.Current()
	if pol == nil {
		return d.deny(&dec, ReasonUnavailable, errors.New("no policy loaded"))
	}

	dec.spoofed = d.mutations.spoofs(req.Underscored)
	if len(dec.spoofed) > 0 && req.CannotRemove {
		return d.deny(&dec, ReasonSpoofedHeader, fmt.Errorf("header %q imitates a trusted header", dec.spoofed[0]))
	}
	path := policy.SplitPath(req.Path)
	if perr := policy.CheckPath(path); perr != nil {
		return d.deny(&dec, ReasonInvalidPath, perr)
	}
	var m policy.Match
	pol.Match(req.Method, path, &m)
	dec.Route = m.Route
	if m.Route != nil && m.Route.Public {
		dec.Reason, dec.allowed = ReasonPublic, true
		return dec
	}

	token, err := parseBearer(req.Authorization)
	if err != nil {
		if errors.Is(err, errMissingToken) {
			return d.deny(&dec, ReasonMissingToken, err)
		}
		return d.deny(&dec, ReasonMalformedToken, err)
	}
	claims, err := d.verifier.Verify(ctx, token)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return d.deny(&dec, te.Reason, err)
		}
		return d.deny(&dec, ReasonUnavailable, err)
	}
	dec.ClientID, dec.Scopes, dec.TenantID = claims.ClientID, claims.Scope, claims.TenantID
	if d.cfg.Revocations != nil {
		if e, revoked := d.cfg.Revocations.Current().Revoked(claims.TokenKey, claims.ClientID, claims.TenantID, claims.IssuedAt); revoked {
			return d.deny(&dec, ReasonTokenRevoked, revokedBy(e))
		}
	}

	if m.Route == nil {
		return d.deny(&dec, ReasonNoMatchingRoute, nil)
	}
	if missing := missingScope(m.Route.Scopes, &claims); missing != "" {
		d.deny(&dec, ReasonMissingScope, errors.New("token lacks scope "+missing))
		dec.Denial = d.withScopeChallenge(dec.Denial, m.Route.ScopeString())
		return dec
	}

	if req.OnBehalfOf.Count == 0 {
		if m.Route.User == policy.UserRequired {
			return d.deny(&dec, ReasonUserContextRequired, nil)
		}
		return d.allow(&dec)
	}
	if req.OnBehalfOf.Count > 1 {
		return d.deny(&dec, ReasonInvalidOnBehalfOf, errors.New("more than one X-On-Behalf-Of header"))
	}
	userID, err := ParseOnBehalfOf(req.OnBehalfOf.First)
	if err != nil {
		return d.deny(&dec, ReasonInvalidOnBehalfOf, err)
	}
	if m.Route.User == policy.UserForbidden {
		return d.deny(&dec, ReasonUserContextNotAllowed, nil)
	}
	if !claims.HasScope(ActOnBehalfOfScope) {
		d.deny(&dec, ReasonMissingScope, errors.New("token lacks scope "+ActOnBehalfOfScope))
		dec.Denial = d.withScopeChallenge(dec.Denial, ActOnBehalfOfScope)
		return dec
	}

	user, err := d.users.LookupUser(ctx, userID)
	if errors.Is(err, ErrUserNotFound) {
		return d.deny(&dec, ReasonUnknownUser, err)
	}
	if err != nil {
		return d.deny(&dec, ReasonUnavailable, err)
	}
	if err := d.tenantMayActFor(&claims, &user); err != nil {
		return d.deny(&dec, ReasonUnknownUser, err)
	}
	dec.UserID = userID
	if user.Status != UserActive {
		if user.Status == UserBlocked && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
			return d.allow(&dec)
		}
		return d.deny(&dec, ReasonUserBlocked, nil)
	}
	return d.allow(&dec)
}

// tenantMayActFor applies the tenant rule of on-behalf-of: a tenant-bound
// token acts only for users of its own tenant (a user with no tenant is
// unknown to it), and a token with no tenant acts for users only when
// tenantless clients are allowed. A refusal is answered exactly like an
// unknown user, so probing reveals nothing about other tenants' users.
func (d *Decider) tenantMayActFor(claims *Claims, user *User) error {
	switch {
	case claims.TenantID == "" && !d.cfg.AllowTenantlessClients:
		return errors.New("a token without a tenant may not act on behalf of users (users.allow_tenantless_clients is off)")
	case claims.TenantID == "":
		return nil
	case user.TenantID == "":
		return errors.New("the user belongs to no tenant")
	case user.TenantID != claims.TenantID:
		return errors.New("the user belongs to another tenant")
	}
	return nil
}

func (d *Decider) allow(dec *Decision) Decision {
	dec.Reason, dec.allowed = ReasonAllowed, true
	dec.setMask = setClient | setScopes
	if dec.TenantID != "" {
		dec.setMask |= setTenant
	}
	if dec.UserID != "" {
		dec.setMask |= setUser
	}
	return *dec
}

// missingScope returns the first required scope the token lacks, or "".
// shadow records what the shadow policy would decide: one more match, and
// the route's own steps (public, route known, scopes, user rule). The
// token and user steps do not depend on the policy, so the live decision's
// outcome of them is the shadow's too; when the live decision stopped at
// one of its route's steps, the shadow one, past its own route's steps,
// counts as allowed.
func (d *Decider) shadow(ctx context.Context, req *Request, dec *Decision) {
	pol := d.cfg.Shadow.Current()
	if pol == nil || dec.Reason == ReasonUnavailable || dec.Reason == ReasonInvalidPath {
		return
	}
	var m policy.Match
	pol.Match(req.Method, policy.SplitPath(req.Path), &m)
	dec.ShadowRoute = m.Route
	if m.Route != nil && m.Route.Public {
		dec.ShadowReason = ReasonPublic
		return
	}
	scopes := dec.Scopes
	if dec.Reason == ReasonPublic {
		// The live policy never looked at the token: the shadow must.
		token, err := parseBearer(req.Authorization)
		if err != nil {
			dec.ShadowReason = ReasonMalformedToken
			if errors.Is(err, errMissingToken) {
				dec.ShadowReason = ReasonMissingToken
			}
			return
		}
		claims, err := d.verifier.Verify(ctx, token)
		if err != nil {
			dec.ShadowReason = ReasonInvalidToken
			var te *TokenError
			if errors.As(err, &te) {
				dec.ShadowReason = te.Reason
			}
			return
		}
		scopes = claims.Scope
	} else if dec.ClientID == "" {
		dec.ShadowReason = dec.Reason // refused before the policy mattered: no, bad or revoked token
		return
	}
	if r := routeStep(m.Route, scopes, req); r != "" {
		dec.ShadowReason = r
		return
	}
	if dec.Reason != ReasonPublic && routeStep(dec.Route, scopes, req) == "" {
		dec.ShadowReason = dec.Reason // both passed their routes: the rest is the same
		return
	}
	dec.ShadowReason = ReasonAllowed
}

// routeStep is the first of a route's own steps that refuses the request:
// no route, a missing scope, the user rule.
func routeStep(route *policy.Route, scopes string, req *Request) Reason {
	switch {
	case route == nil:
		return ReasonNoMatchingRoute
	case !hasScopes(scopes, route.Scopes):
		return ReasonMissingScope
	case req.OnBehalfOf.Count == 0 && route.User == policy.UserRequired:
		return ReasonUserContextRequired
	case req.OnBehalfOf.Count > 0 && route.User == policy.UserForbidden:
		return ReasonUserContextNotAllowed
	}
	return ""
}

// hasScopes reports whether the space-delimited granted holds every scope
// of required, without allocating.
func hasScopes(granted string, required []string) bool {
	for _, want := range required {
		found := false
		for rest := granted; rest != "" && !found; {
			var field string
			field, rest, _ = strings.Cut(rest, " ")
			found = field == want
		}
		if !found {
			return false
		}
	}
	return true
}

func missingScope(required []string, claims *Claims) string {
	for _, s := range required {
		if !claims.HasScope(s) {
			return s
		}
	}
	return ""
}

func (d *Decider) withScopeChallenge(base *Denial, scopes string) *Denial {
	c := *base
	c.WWWAuthenticate = scopeChallenge(d.cfg.Realm, scopes)
	return &c
}

// Header is one header the upstream receives.
type Header struct{ Name, Value string }

// UpstreamHeaders returns the trusted headers an allow sets, and the headers
// it removes: every trusted header it does not set, X-On-Behalf-Of, and any
// underscore spelling of those the request carried (x_auth_user_id), which
// CGI-style upstreams would read as the dashed name.
func (d *Decider) UpstreamHeaders(dec *Decision, set []Header) ([]Header, []string) {
	if !dec.Allowed() {
		return set, nil
	}
	n := d.mutations.names
	if dec.setMask&setClient != 0 {
		set = append(set, Header{n.ClientID, dec.ClientID})
	}
	if dec.setMask&setScopes != 0 {
		set = append(set, Header{n.Scopes, dec.Scopes})
	}
	if dec.setMask&setTenant != 0 {
		set = append(set, Header{n.TenantID, dec.TenantID})
	}
	if dec.setMask&setUser != 0 {
		set = append(set, Header{n.UserID, dec.UserID})
	}
	return set, d.mutations.removalsFor(dec.setMask, dec.spoofed)
}
