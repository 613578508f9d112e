/*
 * refresher.c
 *	  The background side of L3: the main worker starts one refresher per
 *	  database with a view to refresh or warming queued; a refresher runs
 *	  REFRESH MATERIALIZED VIEW CONCURRENTLY for its database's due views
 *	  and drains its warming queue (warm.c).  Also the state views and
 *	  requests: mlcache.views(), refresh_views(), _warm_wake().
 *
 * A view is due when dirty for at least mlcache.refresh_delay (debounce),
 * or older than mlcache.l3_ttl.  A failing refresh is retried with
 * exponential backoff, and the view is not used meanwhile.  A refresh reads
 * the view's token (g0) before it starts and records g0 as the fresh token
 * after its transaction commits (see l3.c for the freshness rule).
 *
 * Locking: the shared table is l3.c's (l3_shared.h), under
 * mlcache_shared->lock, with the rules written there and in the table in
 * shmem.c.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "keys.h"
#include "l3_shared.h"
#include "refresher.h"
#include "shmem.h"
#include "warm.h"

PGDLLEXPORT void mlcache_refresher_main(Datum arg);

/* Does e need a refresh now?  Caller holds mlcache_shared->lock exclusively. */
static bool
refresher_due(L3Entry *e, TimestampTz now)
{
	uint64		token = mlcache_l3_token(e->dbid, e->viewid);
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
 * Takes mlcache_shared->lock shared to copy the ids out, then exclusively
 * to forget, never across the catalog look-ups.
 */
static void
refresher_forget_dropped_databases(void)
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
		if (mlcache_l3_shared->views[i].dbid != InvalidOid)
			dbs[n++] = mlcache_l3_shared->views[i].dbid;
	for (i = 0; i < L3_MAX_DBS; i++)
		if (mlcache_l3_shared->warm_db[i] != InvalidOid)
			dbs[n++] = mlcache_l3_shared->warm_db[i];
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
			if (mlcache_l3_shared->views[j].dbid == dbs[i])
				mlcache_l3_shared->views[j].dbid = InvalidOid;
		for (j = 0; j < L3_MAX_DBS; j++)
			if (mlcache_l3_shared->warm_db[j] == dbs[i])
				mlcache_l3_shared->warm_db[j] = InvalidOid;
	}
	LWLockRelease(mlcache_shared->lock);
}

/*
 * Called by the main worker each iteration: start a refresher for every
 * database with a view due, unless one runs already.
 * Takes mlcache_shared->lock exclusively; starts the workers after
 * releasing it.
 */
void
mlcache_refresher_launch(void)
{
	TimestampTz now = GetCurrentTimestamp();
	Oid			todo[L3_MAX_DBS];
	int			ntodo = 0;
	int			i,
				j;

	refresher_forget_dropped_databases();
	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_VIEWS; i++)
	{
		L3Entry    *e = &mlcache_l3_shared->views[i];
		bool		running = false;

		if (!refresher_due(e, now))
			continue;
		for (j = 0; j < L3_MAX_DBS; j++)
			if (mlcache_l3_shared->refresher_db[j] == e->dbid && mlcache_l3_shared->refresher[j] != 0 &&
				kill(mlcache_l3_shared->refresher[j], 0) == 0)
				running = true;
		for (j = 0; j < ntodo; j++)
			running |= (todo[j] == e->dbid);
		if (!running && ntodo < L3_MAX_DBS)
			todo[ntodo++] = e->dbid;
	}
	for (i = 0; i < L3_MAX_DBS; i++)
	{
		Oid			db = mlcache_l3_shared->warm_db[i];
		bool		running = false;

		if (db == InvalidOid)
			continue;
		for (j = 0; j < L3_MAX_DBS; j++)
			if (mlcache_l3_shared->refresher_db[j] == db && mlcache_l3_shared->refresher[j] != 0 &&
				kill(mlcache_l3_shared->refresher[j], 0) == 0)
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
 * Takes mlcache_shared->lock exclusively.
 */
static Oid
refresher_claim(uint64 *g0)
{
	TimestampTz now = GetCurrentTimestamp();
	Oid			found = InvalidOid;
	int			i;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_VIEWS && !OidIsValid(found); i++)
	{
		L3Entry    *e = &mlcache_l3_shared->views[i];

		if (e->dbid == MyDatabaseId && refresher_due(e, now))
		{
			found = e->viewid;
			e->state = L3_REFRESHING;
			/* Read the dirty counter before the refresh takes its snapshot. */
			*g0 = mlcache_l3_token(e->dbid, e->viewid);
		}
	}
	LWLockRelease(mlcache_shared->lock);
	pg_memory_barrier();
	return found;
}

/*
 * Run REFRESH MATERIALIZED VIEW CONCURRENTLY in a transaction of its own.
 * Holds no mlcache lock (the refresh is I/O).
 */
static void
refresher_refresh_one(Oid viewid)
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
 * Takes mlcache_shared->lock exclusively.
 */
static void
refresher_record(Oid viewid, bool ok, uint64 g0, TimestampTz start, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();
	L3Entry    *e;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	e = mlcache_l3_entry(MyDatabaseId, viewid);
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

/* At exit: free this process's refresher slot.  Takes mlcache_shared->lock exclusively. */
static void
refresher_exit(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	if (mlcache_l3_shared->refresher[slot] == MyProcPid)
		mlcache_l3_shared->refresher[slot] = 0;
	LWLockRelease(mlcache_shared->lock);
}

/*
 * Take a per-database refresher slot; false if another refresher has it.
 * Takes mlcache_shared->lock exclusively.
 */
static bool
refresher_slot(void)
{
	int			i,
				free_slot = -1;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_DBS; i++)
	{
		if (mlcache_l3_shared->refresher_db[i] == MyDatabaseId && mlcache_l3_shared->refresher[i] != 0 &&
			kill(mlcache_l3_shared->refresher[i], 0) == 0)
		{
			LWLockRelease(mlcache_shared->lock);
			return false;
		}
		if (free_slot < 0 && (mlcache_l3_shared->refresher[i] == 0 ||
							  kill(mlcache_l3_shared->refresher[i], 0) != 0))
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		mlcache_l3_shared->refresher[free_slot] = MyProcPid;
		mlcache_l3_shared->refresher_db[free_slot] = MyDatabaseId;
	}
	LWLockRelease(mlcache_shared->lock);
	if (free_slot >= 0)
		before_shmem_exit(refresher_exit, Int32GetDatum(free_slot));
	return free_slot >= 0;
}

/* Refresh one claimed view, catching and recording its error. */
static void
refresher_refresh_claimed(Oid viewid, uint64 g0, MemoryContext cxt)
{
	TimestampTz start = GetCurrentTimestamp();

	PG_TRY();
	{
		refresher_refresh_one(viewid);
		refresher_record(viewid, true, g0, start, NULL);
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
		refresher_record(viewid, false, g0, start, edata->message);
		ereport(LOG,
				(errmsg("mlcache could not refresh materialized view %u: %s",
						viewid, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * The queue of this database is drained for now: stop asking for a worker.
 * Takes mlcache_shared->lock exclusively.
 */
static void
refresher_warm_done(void)
{
	int			i;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_DBS; i++)
		if (mlcache_l3_shared->warm_db[i] == MyDatabaseId)
			mlcache_l3_shared->warm_db[i] = InvalidOid;
	LWLockRelease(mlcache_shared->lock);
}

PG_FUNCTION_INFO_V1(mlcache_warm_wake);

/*
 * mlcache._warm_wake(): have the worker start this database's background
 * worker, which drains mlcache.warm_queue (also tasks waiting for a retry:
 * the flag stays until the queue has nothing pending).
 * Takes mlcache_shared->lock exclusively.
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
		if (mlcache_l3_shared->warm_db[i] == MyDatabaseId)
			free_slot = -2;
		else if (free_slot == -1 && mlcache_l3_shared->warm_db[i] == InvalidOid)
			free_slot = i;
	}
	if (free_slot >= 0)
		mlcache_l3_shared->warm_db[free_slot] = MyDatabaseId;
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
	if (!refresher_slot())
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
		viewid = refresher_claim(&g0);
		if (OidIsValid(viewid))
		{
			refresher_refresh_claimed(viewid, g0, cxt);
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
			refresher_warm_done();
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
 * returns how many.  Takes mlcache_shared->lock shared; the copies point to nothing shared.
 */
static int
refresher_snapshot_entries(L3Entry *out)
{
	int			i,
				n = 0;

	LWLockAcquire(mlcache_shared->lock, LW_SHARED);
	for (i = 0; i < L3_MAX_VIEWS; i++)
		if (mlcache_l3_shared->views[i].dbid == MyDatabaseId)
			out[n++] = mlcache_l3_shared->views[i];
	LWLockRelease(mlcache_shared->lock);
	return n;
}

/*
 * Forget the entry of a view that no longer exists (if it is still that
 * view's).  Takes mlcache_shared->lock exclusively.
 */
static void
refresher_forget(Oid viewid)
{
	L3Entry    *e;

	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	e = mlcache_l3_entry(MyDatabaseId, viewid);
	if (e != NULL)
		e->dbid = InvalidOid;
	LWLockRelease(mlcache_shared->lock);
}

/*
 * This database's registered views, and refreshes since the server started.
 * Takes mlcache_shared->lock shared.
 */
void
mlcache_refresher_totals(int *nviews, int64 *refreshes)
{
	L3Entry    *copy = palloc(sizeof(L3Entry) * L3_MAX_VIEWS);
	int			n = refresher_snapshot_entries(copy);
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
 * Takes mlcache_shared->lock exclusively.
 */
Datum
mlcache_refresh_views(PG_FUNCTION_ARGS)
{
	int			i,
				n = 0;

	mlcache_require_loaded();
	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < L3_MAX_VIEWS; i++)
		if (mlcache_l3_shared->views[i].dbid == MyDatabaseId)
		{
			mlcache_l3_shared->views[i].requested = true;
			mlcache_l3_shared->views[i].next_attempt = 0;
			n++;
		}
	LWLockRelease(mlcache_shared->lock);
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(mlcache_views);

/* Works on a copy: no lock. */
static const char *
refresher_state_name(const L3Entry *e, uint64 token)
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
 * Reads copies made under mlcache_shared->lock (shared); no lock held while
 * building rows.
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
	n = refresher_snapshot_entries(copy);
	for (i = 0; i < n; i++)
	{
		L3Entry    *e = &copy[i];
		Datum		values[7];
		bool		nulls[7] = {false};
		uint64		token;

		if (get_rel_name(e->viewid) == NULL)
		{
			/* The view was dropped: forget it. */
			refresher_forget(e->viewid);
			continue;
		}
		token = mlcache_l3_token(e->dbid, e->viewid);
		values[0] = ObjectIdGetDatum(e->viewid);
		values[1] = CStringGetTextDatum(refresher_state_name(e, token));
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
