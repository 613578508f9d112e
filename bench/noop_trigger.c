/*
 * bench/noop_trigger.c: functions that do nothing, the floors of the bench.
 *
 * mlcache_bench_noop_trigger: a trigger function that does nothing, for the
 * write group of bench/bench.sh.  Four statement triggers calling it, with
 * the same transition tables and arguments as mlcache.watch() installs, cost
 * what PostgreSQL itself spends on such triggers (capturing the rows,
 * queuing and firing the triggers): the floor under any transition-table
 * trigger.
 *
 * mlcache_bench_noop_get: returns the jsonb 1 whatever its arguments.  The
 * bench declares it as mlcachz.get(text, text [, int]), a name as long as
 * mlcache.get, so that SELECT mlcachz.get('bench:l1', 'SELECT 1') costs what
 * PostgreSQL spends on parsing, planning and running that call and writing
 * its jsonb result: the floor under any L1 hit, whatever the cache does.
 *
 * The bench compiles this into its temporary directory; it is never
 * installed.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(mlcache_bench_noop_trigger);

Datum
mlcache_bench_noop_trigger(PG_FUNCTION_ARGS)
{
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(mlcache_bench_noop_get);

Datum
mlcache_bench_noop_get(PG_FUNCTION_ARGS)
{
	static Jsonb *one = NULL;
	Jsonb	   *copy;

	if (one == NULL)
	{
		Datum		d = DirectFunctionCall1(jsonb_in, CStringGetDatum("1"));
		Jsonb	   *j = DatumGetJsonbP(d);

		one = MemoryContextAlloc(TopMemoryContext, VARSIZE(j));
		memcpy(one, j, VARSIZE(j));
	}
	/* A copy, as an L1 hit returns. */
	copy = palloc(VARSIZE(one));
	memcpy(copy, one, VARSIZE(one));
	PG_RETURN_JSONB_P(copy);
}
