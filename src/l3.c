/*
 * l3.c
 *	  L3: materialized views that answer a definition's reads while they are
 *	  provably fresh (the read side; refresher.c refreshes them and
 *	  l3_dirty.c marks them dirty).
 *
 * Freshness.  Every registered view has a dirty counter in the generation
 * table (mlcache_view_slot(db, view)), and every database one more that
 * stands for all its views (mlcache_view_slot(db, InvalidOid)).  A view's
 * token is the sum of the two.  Watch triggers of tables that list the view
 * bump its own counter at commit; invalidate(), invalidate_pattern(),
 * clear() and DDL on watched tables bump the database's, since the data
 * they stand for may feed any view (one bump, no list of views to read, and
 * so no race with a view being registered meanwhile).  A refresh reads the
 * token (g0) before it starts, runs REFRESH MATERIALIZED VIEW CONCURRENTLY
 * in its own transaction, and after that commits records g0 as the view's
 * fresh token.  A reader uses the view only while the token still equals
 * the fresh token: it reads both before the snapshot its lookup uses, so
 * the view then holds every commit that returned before the read began.
 * After a restart no view is fresh until refreshed once.
 *
 * Refreshing (refresher.c).  The main mlcache worker (worker.c), which has
 * no database, looks at the shared table every iteration and starts one
 * refresher per database that has a view to refresh: dirty for at least
 * mlcache.refresh_delay (debounce), or older than mlcache.l3_ttl.  A failing
 * refresh is retried with exponential backoff, and the view is not used
 * meanwhile.  mlcache.views() shows the state.
 *
 * Locking rules (also in l3_shared.h and the table in shmem.c):
 *	- L3Shared (views[], refresher[], refresher_db[], warm_db[]) is protected
 *	  by mlcache_shared->lock: LW_SHARED to read, LW_EXCLUSIVE to write.
 *	- While it is held, only plain reads and writes of L3Shared, atomic reads
 *	  of the generation table and kill(pid, 0) run: no catalog or syscache
 *	  access, no SPI, no palloc, nothing that can ereport.  What is needed
 *	  from the catalogs (a view's name, whether it still exists) is looked up
 *	  after copying the entries' ids out and releasing the lock; whatever is
 *	  written back is found again by (dbid, viewid) under the lock, since an
 *	  entry may have been freed and reused meanwhile.  So the lock is held
 *	  for microseconds, never across I/O, a refresh or a lock wait, and code
 *	  that holds it never re-enters code that takes it.
 *	- No pointer to an entry is kept after the lock is released.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "keys.h"
#include "l3.h"
#include "l3_shared.h"
#include "shmem.h"

/* The shared table (see mlcache_l3_shared.h); refresher.c uses it too. */
L3Shared   *mlcache_l3_shared = NULL;

Size
mlcache_l3_shmem_size(void)
{
	return sizeof(L3Shared);
}

/* Called with AddinShmemInitLock held. */
void
mlcache_l3_shmem_startup(void)
{
	bool		found;

	mlcache_l3_shared = ShmemInitStruct("mlcache L3", sizeof(L3Shared), &found);
	if (!found)
		memset(mlcache_l3_shared, 0, sizeof(L3Shared));
}

/*
 * The entry of a view; caller holds mlcache_shared->lock (shared or
 * exclusive).  NULL if not registered.
 */
L3Entry    *
mlcache_l3_entry(Oid dbid, Oid viewid)
{
	int			i;

	for (i = 0; i < L3_MAX_VIEWS; i++)
		if (mlcache_l3_shared->views[i].dbid == dbid && mlcache_l3_shared->views[i].viewid == viewid)
			return &mlcache_l3_shared->views[i];
	return NULL;
}

/*
 * A view's dirty token: its own counter plus its database's.  Both only
 * grow, so the sum changes whenever either is bumped.  No lock needed.
 */
uint64
mlcache_l3_token(Oid dbid, Oid viewid)
{
	return pg_atomic_read_u64(&mlcache_shared->gens[mlcache_view_slot(dbid, viewid)]) +
		pg_atomic_read_u64(&mlcache_shared->gens[mlcache_view_slot(dbid, InvalidOid)]);
}

/* Register a view of this database (idempotent).  Takes mlcache_shared->lock exclusively. */
static void
l3_register(Oid viewid)
{
	L3Entry    *e;
	int			i;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	e = mlcache_l3_entry(MyDatabaseId, viewid);
	for (i = 0; e == NULL && i < L3_MAX_VIEWS; i++)
		if (mlcache_l3_shared->views[i].dbid == InvalidOid)
		{
			e = &mlcache_l3_shared->views[i];
			memset(e, 0, sizeof(L3Entry));
			e->dbid = MyDatabaseId;
			e->viewid = viewid;
			e->state = L3_UNKNOWN;
		}
	LWLockRelease(mlcache_shared->lock);
	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many materialized views registered with mlcache"),
				 errdetail("The limit is %d.", L3_MAX_VIEWS)));
}

/*
 * Is the view fresh for a read starting now?  Reads the dirty counter, then
 * the fresh token; the caller takes its snapshot afterwards.  Takes
 * mlcache_shared->lock shared (and l3_register's exclusive lock after
 * releasing it).
 */
static bool
l3_is_fresh(Oid viewid)
{
	uint64		now_token = mlcache_l3_token(MyDatabaseId, viewid);
	L3Entry    *e;
	bool		fresh = false;
	bool		known;

	pg_memory_barrier();
	LWLockAcquire(mlcache_shared->lock, LW_SHARED);
	e = mlcache_l3_entry(MyDatabaseId, viewid);
	known = (e != NULL);
	/* A refresh that is running does not make the content it replaces wrong. */
	if (e != NULL && e->fresh_valid && e->fresh_token == now_token)
		fresh = true;
	LWLockRelease(mlcache_shared->lock);
	if (!known)
		l3_register(viewid);
	return fresh;
}

void
mlcache_l3_load(MlcacheL3 *l3, HeapTuple tup, TupleDesc desc, int firstcol, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, firstcol, &isnull);
	Datum	   *elems;
	int			i;

	memset(l3, 0, sizeof(MlcacheL3));
	if (isnull)
		return;
	l3->view = DatumGetObjectId(d);
	d = SPI_getbinval(tup, desc, firstcol + 1, &isnull);
	if (!isnull)
	{
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &l3->ncols);
		l3->cols = MemoryContextAlloc(cxt, sizeof(char *) * Max(l3->ncols, 1));
		for (i = 0; i < l3->ncols; i++)
			l3->cols[i] = MemoryContextStrdup(cxt, TextDatumGetCString(elems[i]));
	}
	d = SPI_getbinval(tup, desc, firstcol + 2, &isnull);
	l3->value_col = MemoryContextStrdup(cxt, isnull ? "value" : TextDatumGetCString(d));
}

void
mlcache_l3_unload(MlcacheL3 *l3)
{
	if (l3->plan)
		SPI_freeplan(l3->plan);
	l3->plan = NULL;
}

bool
mlcache_l3_configured(const MlcacheL3 *l3)
{
	return OidIsValid(l3->view);
}

/* The lookup query: SELECT value FROM view WHERE c1 = $1 AND ... */
static char *
l3_lookup_sql(MlcacheL3 *l3)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT %s FROM %s", quote_identifier(l3->value_col),
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(l3->view)),
												get_rel_name(l3->view)));
	for (i = 0; i < l3->ncols; i++)
		appendStringInfo(&buf, "%s %s = $%d", i == 0 ? " WHERE" : " AND",
						 quote_identifier(l3->cols[i]), i + 1);
	return buf.data;
}

/*
 * Answer from the view if it is fresh and has the row; NULL otherwise.  Runs
 * as the definition's owner (fetch.c).  The value is copied into the
 * caller's context.
 */
Jsonb *
mlcache_l3_read(MlcacheL3 *l3, Datum *values, const char *nulls, int nparams, Oid *types)
{
	MemoryContext caller = CurrentMemoryContext;
	Jsonb	   *result = NULL;

	if (!l3_is_fresh(l3->view))
		return NULL;

	/*
	 * The view may have been dropped since the definition was loaded: lock
	 * it, as any query would, and then make sure it is still there.  A
	 * dropped view is a miss (the definition's query answers).
	 */
	LockRelationOid(l3->view, AccessShareLock);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(l3->view)))
	{
		UnlockRelationOid(l3->view, AccessShareLock);
		mlcache_l3_unload(l3);
		elog(DEBUG1, "mlcache: L3 view %u no longer exists", l3->view);
		return NULL;
	}
	SPI_connect();
	if (l3->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(l3_lookup_sql(l3), nparams, types);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the L3 lookup of view %u", l3->view);
		l3->plan = plan;
	}
	if (SPI_execute_plan(l3->plan, values, nulls, false, 2) != SPI_OK_SELECT)
		elog(ERROR, "L3 lookup failed");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			Jsonb	   *j = DatumGetJsonbP(d);

			result = MemoryContextAlloc(caller, VARSIZE(j));
			memcpy(result, j, VARSIZE(j));
		}
	}
	SPI_finish();
	return result;
}

PG_FUNCTION_INFO_V1(mlcache_register_view);

/* mlcache._register_view(view): make the refreshers look after it. */
Datum
mlcache_register_view(PG_FUNCTION_ARGS)
{
	mlcache_require_loaded();
	l3_register(PG_GETARG_OID(0));
	PG_RETURN_VOID();
}
