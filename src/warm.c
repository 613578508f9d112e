/*
 * warm.c
 *	  Warming: the parameter sets of warm queries, run as their definition's
 *	  owner (mlcache._warm_tasks), and the background side: the per-database
 *	  worker (l3.c) takes tasks from mlcache.warm_queue one at a time and
 *	  fetches them.
 *
 * A warm query is code its definition's owner wrote, so it runs as that
 * owner, with the definition's search_path, restricted like a SECURITY
 * DEFINER function and in a read-only transaction state: never as whoever
 * calls warm() (a superuser's scheduled warm() would otherwise run any
 * admin's code as the superuser).  warm() covers only the definitions whose
 * owner the caller has the privileges of: their parameter sets are the
 * owner's data.
 *
 * Each task runs in a transaction of its own, bounded by
 * mlcache.warm_task_timeout (statement_timeout).  A failing task is retried
 * with exponential backoff (1 s, 2 s, 4 s ... ) up to mlcache.warm_max_attempts,
 * then marked failed with its error.  Claiming uses FOR UPDATE SKIP LOCKED,
 * so a task is never run twice at once.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "catalog_exec.h"
#include "compute.h"
#include "guc.h"
#include "lookup.h"
#include "shmem.h"
#include "warm.h"

/* ---- warm queries, run as the definition's owner ---- */

/* The user, security context and settings to restore after warm_become. */
typedef struct WarmSaved
{
	Oid			user;
	int			sec;
	int			nest;
} WarmSaved;

/*
 * Become owner with search_path, restricted.  On error, transaction or
 * subtransaction abort restores what warm_unbecome would.
 */
static void
warm_become(Oid owner, const char *search_path, WarmSaved *s)
{
	GetUserIdAndSecContext(&s->user, &s->sec);
	SetUserIdAndSecContext(owner, s->sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	s->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

static void
warm_unbecome(WarmSaved *s)
{
	AtEOXact_GUC(true, s->nest);
	SetUserIdAndSecContext(s->user, s->sec);
}

/*
 * Prepare a warm query (one read-only SELECT, no parameters: see
 * mlcache_compute_prepare) and check it returns one column per parameter.
 * Runs as the current user; the plan is kept (free it).
 */
static SPIPlanPtr
warm_prepare(const char *name, const char *query, int nparams)
{
	SPIPlanPtr	plan = mlcache_compute_prepare(query, 0, NULL);
	CachedPlanSource *ps = linitial(SPI_plan_get_plan_sources(plan));
	int			ncols = ps->resultDesc ? ps->resultDesc->natts : 0;

	if (ncols != nparams)
	{
		SPI_freeplan(plan);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("warm query of mlcache definition \"%s\" returns %d columns, but the definition has %d parameters",
						name, ncols, nparams)));
	}
	return plan;
}

/* set_warm_query()'s check: query prepares as owner with search_path. */
void
mlcache_warm_check_query(const char *name, Oid owner, const char *search_path,
						 const char *query, int nparams)
{
	WarmSaved	saved;

	warm_become(owner, search_path, &saved);
	SPI_freeplan(warm_prepare(name, query, nparams));
	warm_unbecome(&saved);
}

/* One row of the warm query's result as text[] (SQL NULLs kept). */
static Datum
warm_row_params(HeapTuple tup, TupleDesc desc)
{
	int			n = desc->natts;
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		char	   *v = SPI_getvalue(tup, desc, i + 1);

		nulls[i] = v == NULL;
		elems[i] = v ? CStringGetTextDatum(v) : (Datum) 0;
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false,
											  TYPALIGN_INT));
}

/* A definition to warm, copied out of SPI's result. */
typedef struct WarmDef
{
	char	   *name;
	char	   *warm_query;		/* NULL: none */
	char	   *search_path;
	Oid			owner;
	int			nparams;
} WarmDef;

/* Run d's warm query as its owner; put (name, params) rows into rsinfo's store. */
static void
warm_run_query(WarmDef *d, ReturnSetInfo *rsinfo)
{
	WarmSaved	saved;
	SPIPlanPtr	plan;
	bool		save_read_only = XactReadOnly;
	volatile int rc = 0;
	uint64		r;

	warm_become(d->owner, d->search_path, &saved);
	plan = warm_prepare(d->name, d->warm_query, d->nparams);
	XactReadOnly = true;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, NULL, NULL, false, 0);
	}
	PG_FINALLY();
	{
		XactReadOnly = save_read_only;
		SPI_freeplan(plan);
	}
	PG_END_TRY();
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result: %s", SPI_result_code_string(rc));
	for (r = 0; r < SPI_processed; r++)
	{
		Datum		values[2] = {CStringGetTextDatum(d->name),
		warm_row_params(SPI_tuptable->vals[r], SPI_tuptable->tupdesc)};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	warm_unbecome(&saved);
}

/*
 * warm_run_query in a subtransaction: a warm query that fails is reported
 * (WARNING) and skipped, so that one definition's broken warm query does
 * not stop a scheduled warm() of all the others.
 */
static void
warm_run_guarded(WarmDef *d, ReturnSetInfo *rsinfo)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		warm_run_query(d, rsinfo);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("mlcache could not run the warm query of definition \"%s\": %s",
						d->name, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* The definitions named (all if names is NULL), by name. */
static List *
warm_definitions(Datum names, bool all)
{
	Oid			types[1] = {TEXTARRAYOID};
	char		nulls[2] = {all ? 'n' : ' ', '\0'};
	List	   *defs = NIL;
	uint64		r;

	mlcache_catalog_exec("SELECT name, warm_query, search_path, owner::oid, cardinality(param_types)"
						 " FROM mlcache.definitions WHERE $1 IS NULL OR name = ANY ($1) ORDER BY name",
						 1, types, &names, nulls);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		WarmDef    *d = palloc(sizeof(WarmDef));
		bool		isnull;

		d->name = SPI_getvalue(tup, desc, 1);
		d->warm_query = SPI_getvalue(tup, desc, 2);
		d->search_path = SPI_getvalue(tup, desc, 3);
		d->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		d->nparams = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		defs = lappend(defs, d);
	}
	return defs;
}

PG_FUNCTION_INFO_V1(mlcache_warm_tasks);

/*
 * mlcache._warm_tasks(query_types text[]) RETURNS TABLE (definition text,
 * params text[]): every parameter set warm() fills, of the definitions
 * named (all if NULL) whose owner the caller has the privileges of.  One
 * empty set for a definition without parameters; the rows of the warm
 * query, run as the owner, for the others.  A definition named but not
 * owned is an error; with NULL, others are skipped.
 */
Datum
mlcache_warm_tasks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *defs;
	ListCell   *lc;

	mlcache_require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	defs = warm_definitions(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0), PG_ARGISNULL(0));
	foreach(lc, defs)
	{
		WarmDef    *d = lfirst(lc);

		if (!mlcache_catalog_may_own(d->owner))
		{
			if (PG_ARGISNULL(0))
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of mlcache definition \"%s\"", d->name),
					 errdetail("Its warm query runs as its owner, and its parameter sets are the owner's data.")));
		}
		if (d->nparams == 0)
		{
			Datum		values[2] = {CStringGetTextDatum(d->name),
			PointerGetDatum(construct_empty_array(TEXTOID))};
			bool		nulls[2] = {false, false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		else if (d->warm_query != NULL)
			warm_run_guarded(d, rsinfo);
	}
	SPI_finish();
	return (Datum) 0;
}

/* ---- the background side ---- */

/* Run f(arg) in a transaction of its own, with SPI connected. */
static void
warm_in_transaction(void (*f) (void *), void *arg)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	f(arg);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

typedef struct WarmTask
{
	bool		found;
	int64		id;
	char	   *definition;
	Datum		params;			/* text[], in the caller's memory */
	Datum		settings;		/* text[] of mlcache_result_settings values, or 0 */
	int			attempts;
	char	   *error;
	MemoryContext cxt;			/* where the task's fields live */
	bool		waiting;		/* none claimed, but some wait for a retry */
} WarmTask;

static void
warm_claim(void *arg)
{
	WarmTask   *t = arg;
	bool		isnull;

	t->found = false;
	if (SPI_execute("SELECT to_regclass('mlcache.warm_queue') IS NOT NULL", true, 1) != SPI_OK_SELECT ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return;
	if (SPI_execute("UPDATE mlcache.warm_queue SET state = 'running', attempts = attempts + 1,"
					" started_at = now()"
					" WHERE id = (SELECT id FROM mlcache.warm_queue"
					"             WHERE state = 'pending' AND next_attempt <= now()"
					"             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
					" RETURNING id, definition, params, attempts, settings", false, 1) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim a warming task");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		MemoryContext old;

		t->found = true;
		t->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		t->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		old = MemoryContextSwitchTo(t->cxt);
		t->definition = pstrdup(SPI_getvalue(tup, desc, 2));
		t->params = datumCopy(SPI_getbinval(tup, desc, 3, &isnull), false, -1);
		t->settings = SPI_getbinval(tup, desc, 5, &isnull);
		t->settings = isnull ? (Datum) 0 : datumCopy(t->settings, false, -1);
		MemoryContextSwitchTo(old);
	}
	else if (SPI_execute("SELECT count(*) > 0 FROM mlcache.warm_queue WHERE state = 'pending'",
						 true, 1) == SPI_OK_SELECT)
		t->waiting = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Compute with the result-shaping settings of the session that queued the
 * task (for this transaction only): values differ by them, and the session
 * reads only what matches its own.  Only the names mlcache knows are set.
 */
static void
warm_apply_settings(WarmTask *t)
{
	Datum		names[MLCACHE_NRESULT_SETTINGS];
	Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[2];
	int			i;

	if (t->settings == (Datum) 0)
		return;
	for (i = 0; i < MLCACHE_NRESULT_SETTINGS; i++)
		names[i] = CStringGetTextDatum(mlcache_result_settings[i]);
	values[0] = PointerGetDatum(construct_array(names, MLCACHE_NRESULT_SETTINGS, TEXTOID, -1,
												false, TYPALIGN_INT));
	values[1] = t->settings;
	if (SPI_execute_with_args("SELECT pg_catalog.set_config(s.n, s.v, true)"
							  " FROM unnest($1::text[], $2::text[]) AS s(n, v)"
							  " WHERE s.n IS NOT NULL AND s.v IS NOT NULL",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not apply a warming task's settings");
}

static void
warm_run(void *arg)
{
	WarmTask   *t = arg;
	Oid			types[3] = {TEXTOID, TEXTARRAYOID, INT8OID};
	Datum		values[3] = {CStringGetTextDatum(t->definition), t->params, Int64GetDatum(t->id)};
	char	   *timeout = psprintf("SET LOCAL statement_timeout = %d", mlcache_warm_task_timeout);

	SPI_execute(timeout, false, 0);
	warm_apply_settings(t);
	if (SPI_execute_with_args("SELECT mlcache.fetch($1, VARIADIC $2)", 2, types, values,
							  NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "warming task failed");
	SPI_execute("SET LOCAL statement_timeout = 0", false, 0);
	if (SPI_execute_with_args("UPDATE mlcache.warm_queue SET state = 'done', finished_at = now(),"
							  " last_error = NULL WHERE id = $1",
							  1, types + 2, values + 2, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record a warming task");
}

static void
warm_record_failure(void *arg)
{
	WarmTask   *t = arg;
	Oid			types[4] = {INT8OID, TEXTOID, INT4OID, INT4OID};
	Datum		values[4] = {Int64GetDatum(t->id), CStringGetTextDatum(t->error),
	Int32GetDatum(mlcache_warm_max_attempts), Int32GetDatum(t->attempts)};

	if (SPI_execute_with_args("UPDATE mlcache.warm_queue"
							  " SET state = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'pending' END,"
							  "     next_attempt = now() + make_interval(secs => power(2, $4 - 1)),"
							  "     last_error = $2, finished_at = CASE WHEN attempts >= $3 THEN now() END"
							  " WHERE id = $1",
							  4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record a failed warming task");
}

/*
 * Take and run one due task of this database's queue.  Returns false when
 * there was none; *waiting then says whether tasks wait for a retry.  Errors
 * of the task are recorded, not raised.
 */
bool
mlcache_warm_drain_one(bool *waiting)
{
	MemoryContext cxt = CurrentMemoryContext;
	WarmTask	t;

	memset(&t, 0, sizeof(t));
	t.cxt = cxt;
	warm_in_transaction(warm_claim, &t);
	*waiting = t.waiting;
	if (!t.found)
		return false;
	pgstat_report_activity(STATE_RUNNING, "mlcache warming");
	PG_TRY();
	{
		warm_in_transaction(warm_run, &t);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		t.error = edata->message;
		warm_in_transaction(warm_record_failure, &t);
		ereport(LOG,
				(errmsg("mlcache warming task %lld (%s) failed, attempt %d: %s",
						(long long) t.id, t.definition, t.attempts, t.error)));
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return true;
}
