package sqlstore

// The schema histories, for the upgrade test.
var (
	SQLiteMigrations   = sqliteMigrations
	PostgresMigrations = postgresMigrations
)
