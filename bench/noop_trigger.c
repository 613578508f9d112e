/*
 * bench/noop_trigger.c: a trigger function that does nothing, for the write
 * group of bench/bench.sh.  Four statement triggers calling it, with the same
 * transition tables and arguments as mlcache.watch() installs, cost what
 * PostgreSQL itself spends on such triggers (capturing the rows, queuing and
 * firing the triggers): the floor under any transition-table trigger.
 * bench.sh compiles it into its temporary directory; it is never installed.
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(mlcache_bench_noop_trigger);

Datum
mlcache_bench_noop_trigger(PG_FUNCTION_ARGS)
{
	return PointerGetDatum(NULL);
}
