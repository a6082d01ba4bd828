# Sourced by .ci/run: starts a throwaway PostgreSQL cluster on a free
# loopback port in a temporary directory, exports its DSN as
# PORTCULLIS_TEST_POSTGRES_DSN, and stops it when the shell exits.
# Usable by hand too: `source .ci/postgres.sh` before `go test ./...`.

pg_bin_dir() {
	if command -v initdb >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v initdb)")"
		return
	fi
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

PG_BIN="$(pg_bin_dir)"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
	echo "PostgreSQL server binaries not found; installing Debian's postgresql package with apt-get" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "(this asks sudo; to avoid it, install postgresql yourself, or skip the PostgreSQL tests by not sourcing this file)" >&2
	fi
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	fi
	PG_BIN="$(pg_bin_dir)"
fi

PG_DIR="$(mktemp -d)"
# initdb refuses to run as root: run the cluster as the postgres user then.
as_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
	chown postgres "$PG_DIR"
	chmod 700 "$PG_DIR"
	as_pg() { runuser -u postgres -- "$@"; }
fi
PG_PORT=""
for candidate in $(shuf -i 20000-60000 -n 20); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
		PG_PORT="$candidate"
		break
	fi
done
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U portcullis --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
	cat "$PG_DIR/initdb.log"
	return 1 2>/dev/null || exit 1
}
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
	-o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null || {
	cat "$PG_DIR/server.log"
	return 1 2>/dev/null || exit 1
}
stop_postgres() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PG_DIR"; }
trap stop_postgres EXIT
export PORTCULLIS_TEST_POSTGRES_DSN="postgres://portcullis@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
