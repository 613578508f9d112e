/*
 * l3.c
 *	  L3: materialized views that answer a definition's reads while they are
 *	  provably fresh, and the workers that refresh them.
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
 * Refreshing.  The main mlcache worker (worker.c), which has no database,
 * looks at the shared table every iteration and starts one refresher per
 * database that has a view to refresh: dirty for at least
 * mlcache.refresh_delay (debounce), or older than mlcache.l3_ttl.  A failing
 * refresh is retried with exponential backoff, and the view is not used
 * meanwhile.  mlcache.views() shows the state.
 *
 * Locking rules:
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

#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "invalidate.h"
#include "keys.h"
#include "l3.h"
#include "shmem.h"
#include "stats.h"
#include "warm.h"

#define L3_MAX_VIEWS	256
#define L3_MAX_DBS		16
#define L3_ERROR_LEN	256
#define L3_IDLE_EXIT_MS 500	/* a refresher with nothing to do exits (DROP DATABASE waits 5 s for it) */

typedef enum L3State
{
	L3_UNKNOWN = 'u',			/* not refreshed since the server started */
	L3_FRESH = 'f',
	L3_REFRESHING = 'r',
	L3_FAILED = 'e'
} L3State;

typedef struct L3Entry
{
	Oid			dbid;			/* InvalidOid: free */
	Oid			viewid;
	char		state;			/* L3State */
	bool		fresh_valid;
	uint64		fresh_token;
	TimestampTz dirty_since;	/* 0 while clean or not yet noticed */
	TimestampTz last_refresh;
	int64		last_duration_us;
	TimestampTz next_attempt;
	int			failures;
	int64		refreshes;
	bool		requested;		/* refresh_views() asked for a refresh */
	char		error[L3_ERROR_LEN];
} L3Entry;

typedef struct L3Shared
{
	pid_t		refresher[L3_MAX_DBS];	/* per database slot below */
	Oid			refresher_db[L3_MAX_DBS];
	Oid			warm_db[L3_MAX_DBS];	/* databases with warming queued */
	L3Entry		views[L3_MAX_VIEWS];
} L3Shared;

static L3Shared *l3_shared = NULL;

PGDLLEXPORT void mlcache_refresher_main(Datum arg);

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

	l3_shared = ShmemInitStruct("mlcache L3", sizeof(L3Shared), &found);
	if (!found)
		memset(l3_shared, 0, sizeof(L3Shared));
}

/* The entry of a view; caller holds the lock.  NULL if not registered. */
static L3Entry *
l3_entry(Oid dbid, Oid viewid)
{
	int			i;

	for (i = 0; i < L3_MAX_VIEWS; i++)
		if (l3_shared->views[i].dbid == dbid && l3_shared->views[i].viewid == viewid)
			return &l3_shared->views[i];
	return NULL;
}

/*
 * A view's dirty token: its own counter plus its database's.  Both only
 * grow, so the sum changes whenever either is bumped.  No lock needed.
 */
static uint64
l3_token(Oid dbid, Oid viewid)
{
	return pg_atomic_read_u64(&mlcache_shared->gens[mlcache_view_slot(dbid, viewid)]) +
		pg_atomic_read_u64(&mlcache_shared->gens[mlcache_view_slot(dbid, InvalidOid)]);
}

/* Register a view of this database (idempotent).  Takes the lock. */
static void
l3_register(Oid viewid)
{
	L3Entry    *e;
	int			i;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	e = l3_entry(MyDatabaseId, viewid);
	for (i = 0; e == NULL && i < L3_MAX_VIEWS; i++)
		if (l3_shared->views[i].dbid == InvalidOid)
		{
			e = &l3_shared->views[i];
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
 * the fresh token; the caller takes its snapshot afterwards.
 */
static bool
l3_is_fresh(Oid viewid)
{
	uint64		now_token = l3_token(MyDatabaseId, viewid);
	L3Entry    *e;
	bool		fresh = false;
	bool		known;

	pg_memory_barrier();
	LWLockAcquire(mlcache_shared->lock, LW_SHARED);
	e = l3_entry(MyDatabaseId, viewid);
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

/* ---- refreshing ---- */

/* Does e need a refresh now?  Caller holds the lock (exclusive). */
static bool
l3_due(L3Entry *e, TimestampTz now)
{
	uint64		token = l3_token(e->dbid, e->viewid);
	bool		dirty = !e->fresh_valid || e->fresh_token != token;

	if (e->dbid == InvalidOid || e->state == L3_REFRESHING || now < e->next_attempt)
		return false;
	if (dirty && e->dirty_since == 0)
		e->dirty_since = now;
	if (dirty)
		return now - e->dirty_since >= (TimestampTz) mlcache_refresh_delay * 1000;
	if (e->requested)
		return true;
	return mlcache_l3_ttl > 0 &&
		now - e->last_refresh >= (TimestampTz) mlcache_l3_ttl * USECS_PER_SEC;
}

/*
 * Forget the views and queued warming of databases that no longer exist,
 * so that no refresher is started for them.  The main worker has no
 * database, but pg_database is a shared catalog.  Runs at most every 10 s.
 */
static void
l3_forget_dropped_databases(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();
	Oid			dbs[L3_MAX_VIEWS + L3_MAX_DBS];
	bool		gone[L3_MAX_VIEWS + L3_MAX_DBS];
	int			n = 0,
				i,
				j;

	if (now - last < 10 * USECS_PER_SEC)
		return;
	last = now;
	LWLockAcquire(mlcache_shared->lock, LW_SHARED);
	for (i = 0; i < L3_MAX_VIEWS; i++)
		if (l3_shared->views[i].dbid != InvalidOid)
			dbs[n++] = l3_shared->views[i].dbid;
	for (i = 0; i < L3_MAX_DBS; i++)
		if (l3_shared->warm_db[i] != InvalidOid)
			dbs[n++] = l3_shared->warm_db[i];
	LWLockRelease(mlcache_shared->lock);
	if (n == 0)
		return;

	StartTransactionCommand();
	for (i = 0; i < n; i++)
		gone[i] = !SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbs[i]));
	CommitTransactionCommand();

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		if (!gone[i])
			continue;
		for (j = 0; j < L3_MAX_VIEWS; j++)
			if (l3_shared->views[j].dbid == dbs[i])
				l3_shared->views[j].dbid = InvalidOid;
		for (j = 0; j < L3_MAX_DBS; j++)
			if (l3_shared->warm_db[j] == dbs[i])
				l3_shared->warm_db[j] = InvalidOid;
	}
	LWLockRelease(mlcache_shared->lock);
}

/*
 * Called by the main worker each iteration: start a refresher for every
 * database with a view due, unless one runs already.
 */
void
mlcache_l3_launch_refreshers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	Oid			todo[L3_MAX_DBS];
	int			ntodo = 0;
	int			i,
				j;

	l3_forget_dropped_databases();
	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_VIEWS; i++)
	{
		L3Entry    *e = &l3_shared->views[i];
		bool		running = false;

		if (!l3_due(e, now))
			continue;
		for (j = 0; j < L3_MAX_DBS; j++)
			if (l3_shared->refresher_db[j] == e->dbid && l3_shared->refresher[j] != 0 &&
				kill(l3_shared->refresher[j], 0) == 0)
				running = true;
		for (j = 0; j < ntodo; j++)
			running |= (todo[j] == e->dbid);
		if (!running && ntodo < L3_MAX_DBS)
			todo[ntodo++] = e->dbid;
	}
	for (i = 0; i < L3_MAX_DBS; i++)
	{
		Oid			db = l3_shared->warm_db[i];
		bool		running = false;

		if (db == InvalidOid)
			continue;
		for (j = 0; j < L3_MAX_DBS; j++)
			if (l3_shared->refresher_db[j] == db && l3_shared->refresher[j] != 0 &&
				kill(l3_shared->refresher[j], 0) == 0)
				running = true;
		for (j = 0; j < ntodo; j++)
			running |= (todo[j] == db);
		if (!running && ntodo < L3_MAX_DBS)
			todo[ntodo++] = db;
	}
	LWLockRelease(mlcache_shared->lock);

	for (i = 0; i < ntodo; i++)
	{
		BackgroundWorker bgw;

		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		bgw.bgw_restart_time = BGW_NEVER_RESTART;
		strlcpy(bgw.bgw_library_name, "mlcache", BGW_MAXLEN);
		strlcpy(bgw.bgw_function_name, "mlcache_refresher_main", BGW_MAXLEN);
		snprintf(bgw.bgw_name, BGW_MAXLEN, "mlcache refresher for database %u", todo[i]);
		strlcpy(bgw.bgw_type, "mlcache refresher", BGW_MAXLEN);
		bgw.bgw_main_arg = ObjectIdGetDatum(todo[i]);
		if (!RegisterDynamicBackgroundWorker(&bgw, NULL))
			ereport(LOG, (errmsg("mlcache could not start a refresher: no background worker slot free")));
	}
}

/*
 * Claim the next view of this database that is due: its oid, or InvalidOid
 * if none.  *g0 receives its token, read before the refresh's snapshot.
 */
static Oid
l3_claim(uint64 *g0)
{
	TimestampTz now = GetCurrentTimestamp();
	Oid			found = InvalidOid;
	int			i;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_VIEWS && !OidIsValid(found); i++)
	{
		L3Entry    *e = &l3_shared->views[i];

		if (e->dbid == MyDatabaseId && l3_due(e, now))
		{
			found = e->viewid;
			e->state = L3_REFRESHING;
			/* Read the dirty counter before the refresh takes its snapshot. */
			*g0 = l3_token(e->dbid, e->viewid);
		}
	}
	LWLockRelease(mlcache_shared->lock);
	pg_memory_barrier();
	return found;
}

/* Run REFRESH MATERIALIZED VIEW CONCURRENTLY in a transaction of its own. */
static void
l3_refresh_one(Oid viewid)
{
	char	   *sql;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (get_rel_name(viewid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("materialized view %u no longer exists", viewid)));
	sql = psprintf("REFRESH MATERIALIZED VIEW CONCURRENTLY %s",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(viewid)),
											  get_rel_name(viewid)));
	pgstat_report_activity(STATE_RUNNING, sql);
	/*
	 * Never the winner of a deadlock with a user's statement: detect it
	 * first (and give up, to retry later), and do not queue behind long
	 * locks either.
	 */
	SPI_execute("SET LOCAL deadlock_timeout = '50ms'", false, 0);
	SPI_execute("SET LOCAL lock_timeout = '10s'", false, 0);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "REFRESH failed");
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Record a finished refresh (ok) or its error, under the lock, in the view's
 * entry if it is still registered (mlcache.views() forgets dropped views
 * meanwhile, and the entry may now be another view's).
 */
static void
l3_record(Oid viewid, bool ok, uint64 g0, TimestampTz start, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();
	L3Entry    *e;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	e = l3_entry(MyDatabaseId, viewid);
	if (e == NULL)
	{
		LWLockRelease(mlcache_shared->lock);
		return;
	}
	e->last_duration_us = now - start;
	e->requested = false;
	if (ok)
	{
		e->state = L3_FRESH;
		e->fresh_valid = true;
		e->fresh_token = g0;
		e->last_refresh = now;
		e->dirty_since = 0;
		e->failures = 0;
		e->next_attempt = 0;
		e->refreshes++;
		e->error[0] = '\0';
	}
	else
	{
		e->state = L3_FAILED;
		e->failures++;
		e->next_attempt = now + (TimestampTz) Min(1 << Min(e->failures, 8), 300) * USECS_PER_SEC;
		strlcpy(e->error, error, L3_ERROR_LEN);
	}
	LWLockRelease(mlcache_shared->lock);
}

static void
l3_refresher_exit(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	if (l3_shared->refresher[slot] == MyProcPid)
		l3_shared->refresher[slot] = 0;
	LWLockRelease(mlcache_shared->lock);
}

/* Take a per-database refresher slot; false if another refresher has it. */
static bool
l3_refresher_slot(void)
{
	int			i,
				free_slot = -1;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_DBS; i++)
	{
		if (l3_shared->refresher_db[i] == MyDatabaseId && l3_shared->refresher[i] != 0 &&
			kill(l3_shared->refresher[i], 0) == 0)
		{
			LWLockRelease(mlcache_shared->lock);
			return false;
		}
		if (free_slot < 0 && (l3_shared->refresher[i] == 0 ||
							  kill(l3_shared->refresher[i], 0) != 0))
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		l3_shared->refresher[free_slot] = MyProcPid;
		l3_shared->refresher_db[free_slot] = MyDatabaseId;
	}
	LWLockRelease(mlcache_shared->lock);
	if (free_slot >= 0)
		before_shmem_exit(l3_refresher_exit, Int32GetDatum(free_slot));
	return free_slot >= 0;
}

/* Refresh one claimed view, catching and recording its error. */
static void
l3_refresh_claimed(Oid viewid, uint64 g0, MemoryContext cxt)
{
	TimestampTz start = GetCurrentTimestamp();

	PG_TRY();
	{
		l3_refresh_one(viewid);
		l3_record(viewid, true, g0, start, NULL);
		ereport(LOG,
				(errmsg("mlcache refreshed materialized view %u in %.1f ms",
						viewid, (double) (GetCurrentTimestamp() - start) / 1000.0)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		l3_record(viewid, false, g0, start, edata->message);
		ereport(LOG,
				(errmsg("mlcache could not refresh materialized view %u: %s",
						viewid, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* The queue of this database is drained for now: stop asking for a worker. */
static void
l3_warm_done(void)
{
	int			i;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_DBS; i++)
		if (l3_shared->warm_db[i] == MyDatabaseId)
			l3_shared->warm_db[i] = InvalidOid;
	LWLockRelease(mlcache_shared->lock);
}

PG_FUNCTION_INFO_V1(mlcache_warm_wake);

/*
 * mlcache._warm_wake(): have the worker start this database's background
 * worker, which drains mlcache.warm_queue (also tasks waiting for a retry:
 * the flag stays until the queue has nothing pending).
 */
Datum
mlcache_warm_wake(PG_FUNCTION_ARGS)
{
	int			i,
				free_slot = -1;

	mlcache_require_loaded();
	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_DBS; i++)
	{
		if (l3_shared->warm_db[i] == MyDatabaseId)
			free_slot = -2;
		else if (free_slot == -1 && l3_shared->warm_db[i] == InvalidOid)
			free_slot = i;
	}
	if (free_slot >= 0)
		l3_shared->warm_db[free_slot] = MyDatabaseId;
	LWLockRelease(mlcache_shared->lock);
	PG_RETURN_VOID();
}

/*
 * A refresher: one per database at a time, started by the main worker.
 * Refreshes the due views of its database until none has been due for
 * L3_IDLE_EXIT_MS, then exits.
 */
void
mlcache_refresher_main(Datum arg)
{
	MemoryContext cxt;
	TimestampTz idle_since = GetCurrentTimestamp();
	bool		waiting;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	pgstat_report_appname("mlcache refresher");
	if (!l3_refresher_slot())
		proc_exit(0);
	cxt = AllocSetContextCreate(TopMemoryContext, "mlcache refresher", ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending)
	{
		uint64		g0;
		Oid			viewid;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(cxt);
		viewid = l3_claim(&g0);
		if (OidIsValid(viewid))
		{
			l3_refresh_claimed(viewid, g0, cxt);
			MemoryContextReset(cxt);
			idle_since = GetCurrentTimestamp();
			continue;
		}
		if (mlcache_warm_drain_one(&waiting))
		{
			MemoryContextReset(cxt);
			idle_since = GetCurrentTimestamp();
			continue;
		}
		if (!waiting)
			l3_warm_done();
		if (GetCurrentTimestamp() - idle_since > (TimestampTz) L3_IDLE_EXIT_MS * 1000)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}

/*
 * Copy this database's registered entries into out (room for L3_MAX_VIEWS);
 * returns how many.  Takes the lock; the copies point to nothing shared.
 */
static int
l3_snapshot_entries(L3Entry *out)
{
	int			i,
				n = 0;

	LWLockAcquire(mlcache_shared->lock, LW_SHARED);
	for (i = 0; i < L3_MAX_VIEWS; i++)
		if (l3_shared->views[i].dbid == MyDatabaseId)
			out[n++] = l3_shared->views[i];
	LWLockRelease(mlcache_shared->lock);
	return n;
}

/*
 * Forget the entry of a view that no longer exists (if it is still that
 * view's).  Takes the lock.
 */
static void
l3_forget(Oid viewid)
{
	L3Entry    *e;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	e = l3_entry(MyDatabaseId, viewid);
	if (e != NULL)
		e->dbid = InvalidOid;
	LWLockRelease(mlcache_shared->lock);
}

/* This database's registered views, and refreshes since the server started. */
void
mlcache_l3_totals(int *nviews, int64 *refreshes)
{
	L3Entry    *copy = palloc(sizeof(L3Entry) * L3_MAX_VIEWS);
	int			n = l3_snapshot_entries(copy);
	int			i;

	*nviews = 0;
	*refreshes = 0;
	/* The catalog lookups come after the lock is released. */
	for (i = 0; i < n; i++)
		if (get_rel_name(copy[i].viewid) != NULL)
		{
			(*nviews)++;
			*refreshes += copy[i].refreshes;
		}
	pfree(copy);
}

PG_FUNCTION_INFO_V1(mlcache_refresh_views);

/*
 * mlcache.refresh_views(): ask for a refresh of every view of this
 * database, fresh or not; the worker does them off this transaction.
 * Returns how many.  Readers keep using fresh views until then.
 */
Datum
mlcache_refresh_views(PG_FUNCTION_ARGS)
{
	int			i,
				n = 0;

	mlcache_require_loaded();
	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_VIEWS; i++)
		if (l3_shared->views[i].dbid == MyDatabaseId)
		{
			l3_shared->views[i].requested = true;
			l3_shared->views[i].next_attempt = 0;
			n++;
		}
	LWLockRelease(mlcache_shared->lock);
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(mlcache_views);

static const char *
l3_state_name(const L3Entry *e, uint64 token)
{
	switch (e->state)
	{
		case L3_REFRESHING:
			return "refreshing";
		case L3_FAILED:
			return "failed";
		case L3_UNKNOWN:
			return "not refreshed yet";
		default:
			return (e->fresh_valid && e->fresh_token == token) ? "fresh" : "dirty";
	}
}

/*
 * mlcache.views(): this database's registered views with their state, last
 * refresh, its duration, refresh count, failures and last error.
 */
Datum
mlcache_views(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	L3Entry    *copy = palloc(sizeof(L3Entry) * L3_MAX_VIEWS);
	int			n,
				i;

	mlcache_require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	/* Copies: the catalog lookups and the rows are made without the lock. */
	n = l3_snapshot_entries(copy);
	for (i = 0; i < n; i++)
	{
		L3Entry    *e = &copy[i];
		Datum		values[7];
		bool		nulls[7] = {false};
		uint64		token;

		if (get_rel_name(e->viewid) == NULL)
		{
			/* The view was dropped: forget it. */
			l3_forget(e->viewid);
			continue;
		}
		token = l3_token(e->dbid, e->viewid);
		values[0] = ObjectIdGetDatum(e->viewid);
		values[1] = CStringGetTextDatum(l3_state_name(e, token));
		values[2] = TimestampTzGetDatum(e->last_refresh);
		nulls[2] = (e->last_refresh == 0);
		values[3] = Float8GetDatum((double) e->last_duration_us / 1000.0);
		nulls[3] = (e->last_refresh == 0 && e->failures == 0);
		values[4] = Int64GetDatum(e->refreshes);
		values[5] = Int32GetDatum(e->failures);
		values[6] = CStringGetTextDatum(e->error);
		nulls[6] = (e->error[0] == '\0');
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
	return (Datum) 0;
}
