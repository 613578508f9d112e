/*
 * compute.c
 *	  Runs the query behind a cache key and converts its result to jsonb.
 *
 * The result becomes jsonb like this:
 *	- no rows: JSON null (and that null is cached like any value);
 *	- one row of one column: that column's value, as to_jsonb() gives it;
 *	- anything else: an array of objects, one per row, keyed by column name.
 *
 * Only a single read-only SELECT (or VALUES/TABLE) is accepted, and it runs
 * with the transaction marked read-only, so writes hidden in functions fail
 * too (SQLSTATE 25006).  It runs with read_only = false in SPI so that, in
 * READ COMMITTED, it gets a snapshot taken after the caller read the
 * generation token: that ordering is what makes the token a proof of
 * freshness (see lookup.c).
 *
 * Row-level security.  A result computed under RLS policies depends on who
 * reads and on the settings the policies read, which the key does not show.
 * While a cache read computes, an ExecutorCheckPerms hook looks at every
 * relation that any query run by the computation opens (the cache query
 * itself, and queries inside functions it calls, cached plans included) and
 * notes whether RLS applies to it; lookup.c then does not store the value,
 * unless the read named the settings that vary the result (vary_on).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "portability/instr_time.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "utils/rls.h"

#include "compute.h"

static ExecutorCheckPerms_hook_type prev_check_perms = NULL;
static int	rls_watch_depth = 0;	/* nested cache computations running */
static bool rls_seen = false;	/* RLS applied in the innermost one so far */

/* Note whether row-level security applies to any relation a query opens. */
static bool
compute_check_perms(List *rangeTable, bool ereport_on_violation)
{
	ListCell   *lc;

	if (rls_watch_depth > 0 && !rls_seen)
	{
		foreach(lc, rangeTable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind == RTE_RELATION &&
				check_enable_rls(rte->relid, rte->checkAsUser, true) == RLS_ENABLED)
			{
				rls_seen = true;
				break;
			}
		}
	}
	return prev_check_perms ? prev_check_perms(rangeTable, ereport_on_violation) : true;
}

void
mlcache_compute_init(void)
{
	prev_check_perms = ExecutorCheckPerms_hook;
	ExecutorCheckPerms_hook = compute_check_perms;
}

/*
 * Start watching a computation for row-level security.  Returns what the
 * enclosing computation (if any) has seen so far, to be handed back to
 * mlcache_rls_watch_end.
 */
bool
mlcache_rls_watch_begin(void)
{
	bool		outer = rls_seen;

	rls_watch_depth++;
	rls_seen = false;
	return outer;
}

/*
 * Stop watching; returns whether RLS applied within the computation.  An
 * enclosing computation inherits what an inner one saw.  Also called on the
 * error path (PG_FINALLY), where the result is ignored.
 */
bool
mlcache_rls_watch_end(bool outer_seen)
{
	bool		seen = rls_seen;

	rls_watch_depth--;
	rls_seen = outer_seen || seen;
	if (rls_watch_depth == 0)
		rls_seen = false;
	return seen;
}

/* Refuse anything but one read-only SELECT, before it runs. */
static void
compute_check_read_only(SPIPlanPtr plan)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	CachedPlanSource *ps;
	ListCell   *lc;

	if (list_length(sources) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cache query must be a single statement")));
	ps = linitial(sources);
	foreach(lc, ps->query_list)
	{
		Query	   *q = lfirst_node(Query, lc);
		const char *why = NULL;

		if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
			why = psprintf("It is a %s statement.", GetCommandTagName(ps->commandTag));
		else if (q->hasModifyingCTE)
			why = "It contains a data-modifying WITH clause.";
		else if (q->rowMarks != NIL)
			why = "It locks rows with FOR UPDATE or FOR SHARE.";
		if (why)
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("cache query must be a read-only SELECT"),
					 errdetail_internal("%s", why)));
	}
}

/* Set up f to call to_jsonb() on values of the given type. */
static void
compute_jsonb_converter(FmgrInfo *f, Oid typid, int32 typmod, Oid collid)
{
	FuncExpr   *expr;

	fmgr_info(F_TO_JSONB, f);
	expr = makeFuncExpr(F_TO_JSONB, JSONBOID,
						list_make1(makeNullConst(typid, typmod, collid)),
						InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	fmgr_info_set_expr((Node *) expr, f);
}

static Jsonb *
compute_datum_jsonb(FmgrInfo *f, Datum d)
{
	return DatumGetJsonbP(FunctionCall1(f, d));
}

/* Push one column value into a jsonb being built. */
static void
compute_push_value(JsonbParseState **st, FmgrInfo *f, Datum d, bool isnull)
{
	JsonbValue	v;
	Jsonb	   *jb;

	if (isnull)
	{
		v.type = jbvNull;
		pushJsonbValue(st, WJB_VALUE, &v);
		return;
	}
	jb = compute_datum_jsonb(f, d);
	if (JB_ROOT_IS_SCALAR(jb))
		JsonbExtractScalar(&jb->root, &v);
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Convert SPI's current result; the jsonb is allocated in target. */
static Jsonb *
compute_result_jsonb(MemoryContext target)
{
	SPITupleTable *tt = SPI_tuptable;
	TupleDesc	desc = tt->tupdesc;
	uint64		nrows = SPI_processed;
	FmgrInfo   *conv = palloc(sizeof(FmgrInfo) * Max(desc->natts, 1));
	JsonbParseState *st = NULL;
	JsonbValue *res;
	MemoryContext old;
	Jsonb	   *out;
	uint64		r;
	int			c;

	for (c = 0; c < desc->natts; c++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, c);

		compute_jsonb_converter(&conv[c], att->atttypid, att->atttypmod, att->attcollation);
	}

	if (nrows == 0 || (nrows == 1 && desc->natts == 1))
	{
		bool		isnull = true;
		Datum		d = nrows ? SPI_getbinval(tt->vals[0], desc, 1, &isnull) : (Datum) 0;
		JsonbValue	nullv;

		if (!isnull)
		{
			Jsonb	   *jb = compute_datum_jsonb(&conv[0], d);

			old = MemoryContextSwitchTo(target);
			out = palloc(VARSIZE(jb));
			memcpy(out, jb, VARSIZE(jb));
			MemoryContextSwitchTo(old);
			return out;
		}
		nullv.type = jbvNull;
		old = MemoryContextSwitchTo(target);
		out = JsonbValueToJsonb(&nullv);
		MemoryContextSwitchTo(old);
		return out;
	}

	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (r = 0; r < nrows; r++)
	{
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		for (c = 0; c < desc->natts; c++)
		{
			JsonbValue	k;
			bool		isnull;
			Datum		d = SPI_getbinval(tt->vals[r], desc, c + 1, &isnull);

			k.type = jbvString;
			k.val.string.val = NameStr(TupleDescAttr(desc, c)->attname);
			k.val.string.len = strlen(k.val.string.val);
			pushJsonbValue(&st, WJB_KEY, &k);
			compute_push_value(&st, &conv[c], d, isnull);
		}
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	res = pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	old = MemoryContextSwitchTo(target);
	out = JsonbValueToJsonb(res);
	MemoryContextSwitchTo(old);
	return out;
}

/*
 * Run a prepared plan with its parameters and return its result as jsonb,
 * allocated in the caller's memory context.  The caller has SPI connected
 * (the plan was prepared in this connection or kept).  Errors in the query
 * propagate as they are.
 */
static Jsonb *
compute_execute(SPIPlanPtr plan, Datum *values, const char *nulls, MemoryContext caller)
{
	bool		save_read_only = XactReadOnly;
	int			rc;

	compute_check_read_only(plan);
	XactReadOnly = true;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		XactReadOnly = save_read_only;
	}
	PG_END_TRY();
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result: %s", SPI_result_code_string(rc));
	return compute_result_jsonb(caller);
}

static int64
compute_elapsed_us(instr_time start)
{
	instr_time	elapsed;

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	return INSTR_TIME_GET_MICROSEC(elapsed);
}

/*
 * Run query and return its result as jsonb, allocated in the caller's memory
 * context.  *compute_us receives the time the query took.
 */
Jsonb *
mlcache_compute(const char *query, int64 *compute_us)
{
	MemoryContext caller = CurrentMemoryContext;
	instr_time	start;
	SPIPlanPtr	plan;
	Jsonb	   *result;

	INSTR_TIME_SET_CURRENT(start);
	SPI_connect();
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	result = compute_execute(plan, NULL, NULL, caller);
	SPI_finish();
	*compute_us = compute_elapsed_us(start);
	return result;
}

/*
 * Prepare query with parameter types for repeated use (SPI_keepplan).  The
 * query must be a single read-only SELECT.
 */
SPIPlanPtr
mlcache_compute_prepare(const char *query, int nparams, Oid *types)
{
	SPIPlanPtr	plan;

	SPI_connect();
	plan = SPI_prepare(query, nparams, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	compute_check_read_only(plan);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	SPI_finish();
	return plan;
}

/* Run a plan from mlcache_compute_prepare with parameter values. */
Jsonb *
mlcache_compute_plan(SPIPlanPtr plan, Datum *values, const char *nulls, int64 *compute_us)
{
	MemoryContext caller = CurrentMemoryContext;
	instr_time	start;
	Jsonb	   *result;

	INSTR_TIME_SET_CURRENT(start);
	SPI_connect();
	result = compute_execute(plan, values, nulls, caller);
	SPI_finish();
	*compute_us = compute_elapsed_us(start);
	return result;
}

/*
 * Run fn(arg) in a subtransaction.  NULL if it succeeded; otherwise its
 * error, copied into the caller's memory context, after the subtransaction
 * has been rolled back (the caller reports, records or rethrows it).  The
 * caller's memory context and resource owner are current again on return.
 */
ErrorData *
mlcache_subxact(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}
