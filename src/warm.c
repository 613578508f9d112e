/*
 * warm.c
 *	  The background side of warming: the per-database worker (l3.c) takes
 *	  tasks from mlcache.warm_queue one at a time and fetches them.
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
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "warm.h"

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
					" RETURNING id, definition, params, attempts", false, 1) != SPI_OK_UPDATE_RETURNING)
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
		MemoryContextSwitchTo(old);
	}
	else if (SPI_execute("SELECT count(*) > 0 FROM mlcache.warm_queue WHERE state = 'pending'",
						 true, 1) == SPI_OK_SELECT)
		t->waiting = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static void
warm_run(void *arg)
{
	WarmTask   *t = arg;
	Oid			types[3] = {TEXTOID, TEXTARRAYOID, INT8OID};
	Datum		values[3] = {CStringGetTextDatum(t->definition), t->params, Int64GetDatum(t->id)};
	char	   *timeout = psprintf("SET LOCAL statement_timeout = %d", mlcache_warm_task_timeout);

	SPI_execute(timeout, false, 0);
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
