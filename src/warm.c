/*
 * warm.c
 *	  Warming: the parameter sets of warm queries, run as their definition's
 *	  owner (mlcache._warm_tasks), the queue's API (_warm_enqueue,
 *	  _warm_check) and the background side: the per-database worker
 *	  (refresher.c) takes mlcache.warm_queue's tasks one batch at a time and
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
 * A queued warm() or warm_sets() is a job: its tasks are numbered in
 * batches of batch_size.  Each batch runs in a transaction of its own (all
 * its tasks become done when it commits, which is the progress
 * mlcache.warm_tasks shows); each task in a subtransaction, bounded by
 * mlcache.warm_task_timeout (the statement timeout).  A failing task is retried
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
#include "utils/timeout.h"

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

typedef struct WarmRunArgs
{
	WarmDef    *d;
	ReturnSetInfo *rsinfo;
} WarmRunArgs;

static void
warm_run_query_cb(void *arg)
{
	WarmRunArgs *a = arg;

	warm_run_query(a->d, a->rsinfo);
}

/*
 * warm_run_query in a subtransaction: a warm query that fails is reported
 * (WARNING) and skipped, so that one definition's broken warm query does
 * not stop a scheduled warm() of all the others.
 */
static void
warm_run_guarded(WarmDef *d, ReturnSetInfo *rsinfo)
{
	WarmRunArgs a = {d, rsinfo};
	ErrorData  *edata = mlcache_subxact(warm_run_query_cb, &a);

	if (edata == NULL)
		return;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("mlcache could not run the warm query of definition \"%s\": %s",
					d->name, edata->message)));
	FreeErrorData(edata);
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

/* ---- the queue: who may add to it ---- */

/*
 * Raise 42704 unless definition name exists, 42501 unless the current user
 * may fetch it (like fetch(): the owner's rights or a reader's).  SPI must
 * be connected.
 */
static void
warm_check_fetchable(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum	   *elems;
	Oid		   *readers;
	int			n,
				i;

	mlcache_catalog_exec("SELECT owner::oid, readers::oid[] FROM mlcache.definitions WHERE name = $1",
						 1, types, values, NULL);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("mlcache definition \"%s\" does not exist", name)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 2, &isnull)),
					  OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, NULL, &n);
	readers = palloc(sizeof(Oid) * Max(n, 1));
	for (i = 0; i < n; i++)
		readers[i] = DatumGetObjectId(elems[i]);
	if (!mlcache_catalog_may_fetch(DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull)), readers, n))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for mlcache definition \"%s\"", name)));
}

static char *
warm_name_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("definition name must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

PG_FUNCTION_INFO_V1(mlcache_warm_check);

/*
 * mlcache._warm_check(name): error unless the definition exists and the
 * caller may fetch it (warm_sets() asks before it warms anything).
 */
Datum
mlcache_warm_check(PG_FUNCTION_ARGS)
{
	char	   *name;

	mlcache_require_loaded();
	name = warm_name_arg(fcinfo);
	SPI_connect();
	warm_check_fetchable(name);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_warm_enqueue);

/*
 * mlcache._warm_enqueue(name, params, job, batch): queue one parameter set
 * of a definition that exists and that the caller may fetch, as part of
 * batch number batch of job; a NULL job starts a new one, numbered by the
 * new task's id.  Records the caller (queued_by: mlcache.warm_tasks shows
 * the task to it) and its result-shaping settings (the worker computes
 * with them).  Returns the task's id.
 */
Datum
mlcache_warm_enqueue(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[6] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, INT8OID, INT4OID, OIDOID};
	Datum		values[6];
	char		nulls[7] = "      ";
	bool		isnull;
	int64		id;

	mlcache_require_loaded();
	name = warm_name_arg(fcinfo);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parameters and batch must not be null")));
	if (PG_GETARG_INT32(3) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch must be at least 1")));
	SPI_connect();
	warm_check_fetchable(name);
	values[0] = CStringGetTextDatum(name);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = mlcache_result_settings_values();
	values[3] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[3] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[4] = PG_GETARG_DATUM(3);
	values[5] = ObjectIdGetDatum(GetUserId());
	mlcache_catalog_exec("INSERT INTO mlcache.warm_queue"
						 "   (id, definition, params, settings, job, batch, queued_by)"
						 " SELECT n.id, $1, $2, $3, coalesce($4, n.id), $5, $6::regrole"
						 "   FROM (SELECT pg_catalog.nextval('mlcache.warm_queue_id_seq') AS id) n"
						 " RETURNING id", 6, types, values, nulls);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(id);
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

/* One claimed task; fields live in the batch's memory context. */
typedef struct WarmTask
{
	int64		id;
	char	   *definition;
	Datum		params;			/* text[] */
	Datum		settings;		/* text[] of mlcache_result_settings values, or 0 */
	int			attempts;
	char	   *error;			/* NULL: succeeded (or not run yet) */
} WarmTask;

/* The tasks of one batch (one job's tasks with one batch number). */
typedef struct WarmBatch
{
	MemoryContext cxt;			/* where the tasks live */
	int			ntasks;
	WarmTask   *tasks;			/* in id order */
	int64		job;
	int			batch;
	bool		waiting;		/* none claimed, but some wait for a retry */
} WarmBatch;

/*
 * Claim the due pending tasks of the batch of the oldest due task: all of
 * them become running in this (committed) transaction, so warm_tasks shows
 * the batch as running while it runs.  SKIP LOCKED: a task is never run
 * twice at once.
 */
static void
warm_claim(void *arg)
{
	WarmBatch  *b = arg;
	bool		isnull;
	uint64		r;
	MemoryContext old;

	b->ntasks = 0;
	if (SPI_execute("SELECT to_regclass('mlcache.warm_queue') IS NOT NULL", true, 1) != SPI_OK_SELECT ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return;
	if (SPI_execute("WITH first AS (SELECT job, batch FROM mlcache.warm_queue"
					"                WHERE state = 'pending' AND next_attempt <= now()"
					"                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED),"
					"     mine AS (SELECT q.id FROM mlcache.warm_queue q, first f"
					"               WHERE q.state = 'pending' AND q.next_attempt <= now()"
					"                 AND q.job = f.job AND q.batch = f.batch"
					"               FOR UPDATE OF q SKIP LOCKED),"
					"     claimed AS (UPDATE mlcache.warm_queue q SET state = 'running',"
					"                        attempts = q.attempts + 1, started_at = now()"
					"                   FROM mine WHERE q.id = mine.id"
					"                 RETURNING q.id, q.definition, q.params, q.attempts, q.settings,"
					"                           q.job, q.batch)"
					" SELECT * FROM claimed ORDER BY id", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not claim a warming batch");
	old = MemoryContextSwitchTo(b->cxt);
	b->tasks = palloc0(sizeof(WarmTask) * Max(SPI_processed, 1));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		WarmTask   *t = &b->tasks[r];

		t->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		t->definition = pstrdup(SPI_getvalue(tup, desc, 2));
		t->params = datumCopy(SPI_getbinval(tup, desc, 3, &isnull), false, -1);
		t->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		t->settings = SPI_getbinval(tup, desc, 5, &isnull);
		t->settings = isnull ? (Datum) 0 : datumCopy(t->settings, false, -1);
		b->job = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
		b->batch = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	}
	b->ntasks = (int) SPI_processed;
	MemoryContextSwitchTo(old);
	if (b->ntasks == 0 &&
		SPI_execute("SELECT count(*) > 0 FROM mlcache.warm_queue WHERE state = 'pending'",
					true, 1) == SPI_OK_SELECT)
		b->waiting = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Compute with the result-shaping settings of the session that queued the
 * task: values differ by them, and the session reads only what matches its
 * own.  Only the names mlcache knows are set, LOCAL to the caller's GUC
 * nest level.
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

/*
 * Fetch one task's parameter set, with its settings (undone afterwards, so
 * the next task of the batch starts from the worker's) and bounded by
 * mlcache.warm_task_timeout (the statement timeout, armed here: the worker
 * runs no top-level statements that would arm it).
 */
static void
warm_fetch(WarmTask *t)
{
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2] = {CStringGetTextDatum(t->definition), t->params};
	int			nest = NewGUCNestLevel();

	warm_apply_settings(t);
	enable_timeout_after(STATEMENT_TIMEOUT, mlcache_warm_task_timeout);
	PG_TRY();
	{
		if (SPI_execute_with_args("SELECT mlcache.fetch($1, VARIADIC $2)", 2, types, values,
								  NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "warming task failed");
	}
	PG_FINALLY();
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
	}
	PG_END_TRY();
	AtEOXact_GUC(false, nest);
}

static void
warm_fetch_cb(void *arg)
{
	warm_fetch((WarmTask *) arg);
}

/*
 * warm_fetch in a subtransaction: a failing task records its error and the
 * rest of the batch goes on.  Fetching writes nothing, so the batch's
 * transaction has not written when its fetches store their values.
 */
static void
warm_fetch_guarded(WarmBatch *b, WarmTask *t)
{
	ErrorData  *edata = mlcache_subxact(warm_fetch_cb, t);

	if (edata == NULL)
		return;
	t->error = MemoryContextStrdup(b->cxt, edata->message);
	FreeErrorData(edata);
}

/* Record a failed task: retried after 2^(attempts-1) s, or failed for good. */
static void
warm_record_failure(WarmTask *t)
{
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
	ereport(LOG,
			(errmsg("mlcache warming task %lld (%s) failed, attempt %d: %s",
					(long long) t->id, t->definition, t->attempts, t->error)));
}

/*
 * Run a claimed batch in this transaction: every fetch first, then the
 * tasks' outcome, so the batch's tasks become done together when it
 * commits.
 */
static void
warm_run_batch(void *arg)
{
	WarmBatch  *b = arg;
	Datum	   *done = palloc(sizeof(Datum) * Max(b->ntasks, 1));
	int			ndone = 0;
	int			i;

	for (i = 0; i < b->ntasks; i++)
	{
		warm_fetch_guarded(b, &b->tasks[i]);
		if (b->tasks[i].error == NULL)
			done[ndone++] = Int64GetDatum(b->tasks[i].id);
	}
	if (ndone > 0)
	{
		Oid			types[1] = {INT8ARRAYOID};
		Datum		values[1] = {PointerGetDatum(construct_array(done, ndone, INT8OID, sizeof(int64),
																 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};

		if (SPI_execute_with_args("UPDATE mlcache.warm_queue SET state = 'done', finished_at = now(),"
								  " last_error = NULL WHERE id = ANY ($1)",
								  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record a warming batch");
	}
	for (i = 0; i < b->ntasks; i++)
		if (b->tasks[i].error != NULL)
			warm_record_failure(&b->tasks[i]);
}

/* The batch's transaction failed as a whole: every task failed with it. */
static void
warm_fail_batch(void *arg)
{
	WarmBatch  *b = arg;
	int			i;

	for (i = 0; i < b->ntasks; i++)
		warm_record_failure(&b->tasks[i]);
}

/*
 * Take and run one due batch of this database's queue, in a transaction of
 * its own.  Returns false when there was none; *waiting then says whether
 * tasks wait for a retry.  Errors of the tasks are recorded, not raised.
 */
bool
mlcache_warm_drain_one(bool *waiting)
{
	MemoryContext cxt = CurrentMemoryContext;
	WarmBatch	b;

	memset(&b, 0, sizeof(b));
	b.cxt = cxt;
	warm_in_transaction(warm_claim, &b);
	*waiting = b.waiting;
	if (b.ntasks == 0)
		return false;
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("mlcache warming job %lld batch %d", (long long) b.job, b.batch));
	PG_TRY();
	{
		warm_in_transaction(warm_run_batch, &b);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			i;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		for (i = 0; i < b.ntasks; i++)
			b.tasks[i].error = edata->message;
		warm_in_transaction(warm_fail_batch, &b);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return true;
}
