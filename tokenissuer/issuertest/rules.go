package issuertest

// Who may do what, as one table: the service layer's tests, the admin
// API's and the portal's run the same table, each through its own door,
// so an adapter that decides anything differently fails.

// Role is an actor of the table. The object of every operation belongs to
// tenant "acme".
type Role string

// The actors.
const (
	Operator    Role = "operator"     // the CLI, a portcullis.admin token, a platform-admin person
	AcmeAdmin   Role = "acme-admin"   // a tenant-admin person of acme
	AcmeViewer  Role = "acme-viewer"  // a tenant-viewer person of acme
	AcmeBot     Role = "acme-bot"     // acme's automation: a portcullis.clients:manage token of acme
	GlobexAdmin Role = "globex-admin" // a tenant-admin person (or automation) of another tenant
	Nobody      Role = "nobody"       // an actor an adapter forgot to name
)

// Roles lists every actor.
var Roles = []Role{Operator, AcmeAdmin, AcmeViewer, AcmeBot, GlobexAdmin, Nobody}

// Op is an operation on acme's objects.
type Op string

// The operations.
const (
	ReadClient     Op = "read acme's client"
	ListClients    Op = "list acme's clients"
	CreateClient   Op = "create a client in acme"
	RotateSecret   Op = "rotate the secret of acme's client"
	SetClientKeys  Op = "register the public keys of acme's client"
	DisableAClient Op = "disable acme's client"
	RevokeTokens   Op = "revoke the tokens of acme's client"
	DeleteClient   Op = "delete acme's client"
	ReadTenant     Op = "read tenant acme"
	ChangeTenant   Op = "change tenant acme's ceiling"
	ReadAudit      Op = "read acme's audit trail"
	RotateKeys     Op = "rotate the signing keys"
)

// ClientJWKSURI is where SetClientKeys registers acme's client's keys.
const ClientJWKSURI = "https://keys.acme.example/jwks.json"

// Outcome is what an operation gives an actor.
type Outcome string

// The outcomes.
const (
	// Allowed: done, or shown.
	Allowed Outcome = "allowed"
	// Hidden: the object does not exist for the actor (404), or a list
	// shows none of acme's objects.
	Hidden Outcome = "hidden"
	// Refused: the actor knows of it but may not (403, or an invalid
	// request naming what it may do instead).
	Refused Outcome = "refused"
)

// Rules is the table: the outcome of each operation for each actor.
var Rules = map[Op]map[Role]Outcome{}

func init() {
	readAcme := map[Role]Outcome{Operator: Allowed, AcmeAdmin: Allowed, AcmeViewer: Allowed, AcmeBot: Allowed, GlobexAdmin: Hidden, Nobody: Hidden}
	changeAcmeClient := map[Role]Outcome{Operator: Allowed, AcmeAdmin: Allowed, AcmeViewer: Refused, AcmeBot: Allowed, GlobexAdmin: Hidden, Nobody: Hidden}
	operatorsOnly := map[Role]Outcome{Operator: Allowed, AcmeAdmin: Refused, AcmeViewer: Refused, AcmeBot: Refused, GlobexAdmin: Refused, Nobody: Refused}
	for _, op := range []Op{ReadClient, ListClients, ReadTenant, ReadAudit} {
		Rules[op] = readAcme
	}
	for _, op := range []Op{RotateSecret, SetClientKeys, DisableAClient, RevokeTokens, DeleteClient} {
		Rules[op] = changeAcmeClient
	}
	Rules[CreateClient] = map[Role]Outcome{Operator: Allowed, AcmeAdmin: Allowed, AcmeViewer: Refused, AcmeBot: Allowed, GlobexAdmin: Hidden, Nobody: Refused}
	Rules[ChangeTenant] = operatorsOnly
	Rules[RotateKeys] = operatorsOnly
}
