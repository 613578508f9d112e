# bench/write_tables.sh: the set-up the bench scripts share (the write tables of bench/quick_write.sh
# and bench/quick_bulk.sh, the no-op C function and the call floor, settings), sourced after
# test/lib.sh.  Nothing here runs on its own.
# shellcheck shell=bash

# bench_shows NAME VALUE: a new session shows setting NAME as VALUE.
bench_shows() { [[ $(psql_db postgres -c "SHOW $1") == "$2" ]]; }

# bench_settings "name = value; ...": ALTER SYSTEM SET each, reload, and wait (at most 10 s each)
# until a new session shows the value as written.
bench_settings() {
	local s name value sets
	[[ -n $1 ]] || return 0
	IFS=';' read -ra sets <<<"$1"
	for s in "${sets[@]}"; do
		[[ $s == *=* ]] || continue
		name=$(xargs <<<"${s%%=*}") value=$(xargs <<<"${s#*=}")
		psql_db postgres -c "ALTER SYSTEM SET $name = '$value'" >/dev/null
	done
	psql_db postgres -c 'SELECT pg_reload_conf()' >/dev/null
	for s in "${sets[@]}"; do
		[[ $s == *=* ]] || continue
		name=$(xargs <<<"${s%%=*}") value=$(xargs <<<"${s#*=}")
		wait_for 10 bench_shows "$name" "$value" || echo "settings: $name shows $(psql_db postgres -c "SHOW $name"), not $value" >&2
	done
	echo "settings: $1"
}

# bench_noop_so DIR: compile bench/noop_trigger.c (the no-op trigger and the call floor's function)
# into DIR/noop_trigger.so, readable by the server; non-zero if it does not compile (errors in
# DIR/cc.log).
bench_noop_so() {
	cc -shared -fPIC -O2 -I"$("${PG_CONFIG:-pg_config}" --includedir-server)" -o "$1/noop_trigger.so" \
		bench/noop_trigger.c 2>"$1/cc.log" && chmod 755 "$1" "$1/noop_trigger.so"
}

# bench_call_floor DB DIR: the call floor in DB, after bench_noop_so DIR: mlcachz.get(text, text)
# and (text, text, int), a C function returning the jsonb 1 under a name as long as mlcache.get
# (schema mlcachz made afresh).
bench_call_floor() {
	psql_db "$1" -c 'DROP SCHEMA IF EXISTS mlcachz CASCADE' -c 'CREATE SCHEMA mlcachz' \
		-c "CREATE FUNCTION mlcachz.get(text, text) RETURNS jsonb LANGUAGE c VOLATILE AS '$2/noop_trigger.so', 'mlcache_bench_noop_get'" \
		-c "CREATE FUNCTION mlcachz.get(text, text, int) RETURNS jsonb LANGUAGE c VOLATILE AS '$2/noop_trigger.so', 'mlcache_bench_noop_get'" >/dev/null
}

# bench_write_tables DB DIR: in DB (with mlcache created), three tables of 100,000 rows, autovacuum
# off: sub_plain (no trigger), sub_floor (watch()'s four statement triggers, with their transition
# tables and arguments, calling a no-op C function, bench/noop_trigger.c, built in DIR) and
# sub_watched (mlcache.watch() with the templates in $templates).
bench_write_tables() {
	local db=$1 dir=$2 t
	templates="'assignment_stats:{assignment_id}', 'analytics:student:{student_id}:*'"
	for t in plain floor watched; do
		psql_db "$db" -c "CREATE TABLE sub_$t (id int PRIMARY KEY, assignment_id int, student_id int, score int)" \
			-c "ALTER TABLE sub_$t SET (autovacuum_enabled = off)" \
			-c "INSERT INTO sub_$t SELECT g, g % 40, g % 5000, 0 FROM generate_series(1, 100000) g" \
			-c "VACUUM ANALYZE sub_$t" >/dev/null
	done
	psql_db "$db" -c "SELECT mlcache.watch('sub_watched', ARRAY[$templates])" >/dev/null
	bench_noop_so "$dir" || return 1
	psql_db "$db" -c "CREATE FUNCTION bench_noop() RETURNS trigger LANGUAGE c AS '$dir/noop_trigger.so', 'mlcache_bench_noop_trigger'" \
		-c "CREATE TRIGGER floor_insert AFTER INSERT ON sub_floor REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)" \
		-c "CREATE TRIGGER floor_update AFTER UPDATE ON sub_floor REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)" \
		-c "CREATE TRIGGER floor_delete AFTER DELETE ON sub_floor REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)" \
		-c "CREATE TRIGGER floor_truncate AFTER TRUNCATE ON sub_floor FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)"
}
