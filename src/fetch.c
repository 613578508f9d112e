/*
 * fetch.c
 *	  Named definitions: mlcache.fetch() and the backend cache of
 *	  mlcache.definitions.
 *
 * A definition is like a view: its query runs with the privileges of its
 * owner and with the search_path recorded when it was defined, so its value
 * is the same whoever fetches it, and the cache is shared by every role the
 * owner granted FETCH to.  Callers need that grant (or to be a member of the
 * owner, or a superuser).
 *
 * Each backend keeps the definitions it used, with their prepared plans,
 * until the definition's generation slot moves: define(), undefine() and
 * the grant functions bump it at commit, like any invalidation.  A
 * transaction that changed a definition itself reloads it and reads around
 * the cache.  A call pins the version it uses (see FetchDef).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "catalog_exec.h"
#include "compute.h"
#include "guc.h"
#include "invalidate.h"
#include "keys.h"
#include "l3.h"
#include "lookup.h"
#include "shmem.h"
#include "stats.h"
#include "template.h"
#include "wal.h"

#define MAX_DEF_NAME 128

/*
 * A loaded definition.  It lives in its own memory context, so that a call
 * using it keeps it whole while the backend loads a newer version: calls pin
 * it (refcount), and a replaced definition is freed only once no call uses
 * it.  A definition's query may itself call fetch() of the same definition,
 * and that inner call may find the definition changed (another session
 * committed a change meanwhile, or this transaction changed it): the outer
 * call then finishes with the version it started with.
 */
typedef struct FetchDef
{
	char		name[MAX_DEF_NAME];
	uint64		gen;			/* generation of the definition's slot before the load */
	int			refcount;		/* calls using it */
	bool		obsolete;		/* replaced: free once refcount drops to 0 */
	struct FetchDef *next_garbage;
	MemoryContext cxt;			/* holds this struct and everything below */
	char	   *query;
	char	   *key_template;
	int			nparams;
	Oid		   *ptypes;
	int			l1_ttl;			/* -1: the GUC default */
	int			l2_ttl;
	int			max_stale;
	double		beta;
	Oid			owner;
	Oid		   *readers;
	int			nreaders;
	char	   *search_path;
	int			nvary;			/* settings whose values join the key */
	char	  **vary;
	uint64		fingerprint;
	SPIPlanPtr	plan;			/* prepared on first compute */
	MlcacheL3	l3;				/* the L3 source, if any */
} FetchDef;

/* The backend's current version of each definition it has used. */
typedef struct FetchDefEntry
{
	char		name[MAX_DEF_NAME]; /* hash key */
	FetchDef   *def;			/* NULL: not loaded */
} FetchDefEntry;

/* One fetch() call: the definition and the converted parameters. */
typedef struct FetchCall
{
	FetchDef   *def;
	Datum	   *values;
	char	   *nulls;
} FetchCall;

static HTAB *fetch_defs = NULL;

/* Replaced definitions no call uses any more, freed at the next fetch. */
static FetchDef *fetch_garbage = NULL;

static uint32
fetch_def_slot(const char *name)
{
	return mlcache_def_slot(name, strlen(name));
}

/* Free a definition no call uses: its kept plans, then its memory. */
static void
fetch_def_free(FetchDef *d)
{
	Assert(d->refcount == 0);
	if (d->plan)
		SPI_freeplan(d->plan);
	mlcache_l3_unload(&d->l3);
	MemoryContextDelete(d->cxt);
}

/* Free the replaced definitions whose last call has finished. */
static void
fetch_collect_garbage(void)
{
	while (fetch_garbage != NULL)
	{
		FetchDef   *d = fetch_garbage;

		fetch_garbage = d->next_garbage;
		fetch_def_free(d);
	}
}

/* A definition stops being current: free it now, or when its last call ends. */
static void
fetch_def_retire(FetchDef *d)
{
	d->obsolete = true;
	if (d->refcount == 0)
		fetch_def_free(d);
}

/*
 * A call is done with d.  Also runs while an error propagates (PG_FINALLY),
 * so it only unlinks: nothing here allocates, frees or can fail.
 */
static void
fetch_def_unpin(FetchDef *d)
{
	Assert(d->refcount > 0);
	if (--d->refcount == 0 && d->obsolete)
	{
		d->next_garbage = fetch_garbage;
		fetch_garbage = d;
	}
}

static char *
fetch_text_col(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(d));
}

/* Copy an oid[] column into a palloc'd array in cxt; returns its length. */
static int
fetch_oid_array(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt, Oid **out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Datum	   *elems;
	int			n,
				i;

	*out = NULL;
	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, NULL, &n);
	*out = MemoryContextAlloc(cxt, sizeof(Oid) * Max(n, 1));
	for (i = 0; i < n; i++)
		(*out)[i] = DatumGetObjectId(elems[i]);
	return n;
}

/* Copy a text[] column into a palloc'd array of strings in cxt; returns its length. */
static int
fetch_text_array(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt, char ***out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				kept = 0;

	*out = NULL;
	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	*out = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (!nulls[i])
			(*out)[kept++] = MemoryContextStrdup(cxt, TextDatumGetCString(elems[i]));
	return kept;
}

static int
fetch_int_col(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? -1 : DatumGetInt32(d);
}

static double
fetch_float_col(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetFloat8(d);
}

/* What a value of d means: name, query, owner, search_path and vary_on. */
static uint64
fetch_def_fingerprint(FetchDef *d)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s\n%s\n%u\n%s", d->name, d->query, d->owner, d->search_path);
	/* Without vary_on the text is what it was before vary_on existed. */
	if (d->nvary > 0)
		appendStringInfoString(&buf, "\nvary_on");
	for (i = 0; i < d->nvary; i++)
		appendStringInfo(&buf, "\n%s", d->vary[i]);
	return mlcache_fingerprint("def", buf.data);
}

/* Build a FetchDef, in a memory context of its own, from its catalog row. */
static FetchDef *
fetch_def_build(const char *name, HeapTuple tup, TupleDesc desc)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "mlcache definition",
											  ALLOCSET_SMALL_SIZES);
	FetchDef   *d = MemoryContextAllocZero(cxt, sizeof(FetchDef));
	bool		isnull;

	strlcpy(d->name, name, MAX_DEF_NAME);
	d->cxt = cxt;
	d->query = fetch_text_col(tup, desc, 1, cxt);
	d->key_template = fetch_text_col(tup, desc, 2, cxt);
	d->nparams = fetch_oid_array(tup, desc, 3, cxt, &d->ptypes);
	d->l1_ttl = fetch_int_col(tup, desc, 4);
	d->l2_ttl = fetch_int_col(tup, desc, 5);
	d->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 6, &isnull));
	d->nreaders = fetch_oid_array(tup, desc, 7, cxt, &d->readers);
	d->search_path = fetch_text_col(tup, desc, 8, cxt);
	mlcache_l3_load(&d->l3, tup, desc, 9, cxt);
	d->max_stale = Max(fetch_int_col(tup, desc, 12), 0);
	d->beta = fetch_float_col(tup, desc, 13);
	d->nvary = fetch_text_array(tup, desc, 14, cxt, &d->vary);
	d->fingerprint = fetch_def_fingerprint(d);
	return d;
}

/*
 * Read the definition's row; NULL if there is none.  The row is read under a
 * snapshot taken now, after the caller read the generation that the result
 * is tagged with: a change committed before that generation was read is
 * always seen.  (The statement's or transaction's snapshot can be older than
 * the generation, and the change it misses would then be ignored until the
 * next one.)  The latest snapshot also holds in REPEATABLE READ and
 * SERIALIZABLE, like PostgreSQL's own catalog lookups, so that a revoked
 * grant takes effect there at once too.
 *
 * vary_on is read through to_jsonb() so that this works with and without
 * that column (added by the 0.2.0 catalog): without it, a definition varies
 * on nothing.
 */
static FetchDef *
fetch_def_load(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	SPIPlanPtr	plan;
	FetchDef   *d = NULL;

	SPI_connect();
	args[0] = CStringGetTextDatum(name);
	plan = SPI_prepare("SELECT query, key_template, param_types::oid[], l1_ttl, l2_ttl,"
					   " owner::oid, readers::oid[], search_path, l3_view::oid,"
					   " l3_columns, l3_value, max_stale, beta,"
					   " ARRAY(SELECT jsonb_array_elements_text(to_jsonb(d) -> 'vary_on'))"
					   " FROM mlcache.definitions d WHERE name = $1",
					   1, argtypes);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read mlcache.definitions");
	if (SPI_processed == 1)
		d = fetch_def_build(name, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	SPI_finish();
	return d;
}

/*
 * The definition called name, current, and pinned: the caller must
 * fetch_def_unpin() it, also on error.  Raises 42704 if there is none.
 * *changed_here is set when this transaction changed it.  Reads the
 * definition's generation counter atomically: no lock.
 */
static FetchDef *
fetch_def_get(const char *name, bool *changed_here)
{
	uint32		slot = fetch_def_slot(name);
	uint64		gen;
	FetchDefEntry *e;
	bool		found;

	if (strlen(name) >= MAX_DEF_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("mlcache definition \"%s\" does not exist", name)));
	/* The generation first: the load's snapshot must be taken after it. */
	mlcache_wal_resolve();		/* on a standby: the commits replayed so far */
	gen = pg_atomic_read_u64(&mlcache_shared->gens[slot]);
	pg_memory_barrier();
	fetch_collect_garbage();
	if (fetch_defs == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = MAX_DEF_NAME;
		ctl.entrysize = sizeof(FetchDefEntry);
		fetch_defs = hash_create("mlcache definitions", 16, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	e = hash_search(fetch_defs, name, HASH_ENTER, &found);
	if (!found)
		e->def = NULL;
	*changed_here = mlcache_inval_slot_pending(slot);
	/* A standby that cannot follow the primary's invalidations reloads (wal.c). */
	if (e->def != NULL && (e->def->gen != gen || *changed_here ||
						   mlcache_wal_bypass_reason() != NULL))
	{
		FetchDef   *old = e->def;

		e->def = NULL;
		fetch_def_retire(old);
	}
	if (e->def == NULL)
	{
		FetchDef   *d = fetch_def_load(name);

		/* Look the entry up again: the load ran queries. */
		e = hash_search(fetch_defs, name, HASH_ENTER, &found);
		if (found && e->def != NULL)
			fetch_def_retire(e->def);
		e->def = d;
		if (d == NULL)
		{
			hash_search(fetch_defs, name, HASH_REMOVE, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("mlcache definition \"%s\" does not exist", name)));
		}
		d->gen = gen;
	}
	e->def->refcount++;
	return e->def;
}

/* May the current user fetch d? */
static void
fetch_check_acl(FetchDef *d)
{
	if (mlcache_catalog_may_fetch(d->owner, d->readers, d->nreaders))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for mlcache definition \"%s\"", d->name),
			 errhint("The definition's owner can allow it with mlcache.grant_fetch('%s', role).",
					 d->name)));
}

typedef struct ConvertContext
{
	const char *name;
	int			param;
	Oid			type;
} ConvertContext;

static void
fetch_convert_context(void *arg)
{
	ConvertContext *c = arg;

	errcontext("parameter %d of mlcache definition \"%s\" (type %s)",
			   c->param, c->name, format_type_be(c->type));
}

/* Convert one argument to the parameter's type, through its text form. */
static Datum
fetch_convert(Datum value, Oid from, Oid to)
{
	Oid			out,
				in,
				ioparam;
	bool		varlena;

	if (from == to)
		return value;
	getTypeOutputInfo(from, &out, &varlena);
	getTypeInputInfo(to, &in, &ioparam);
	return OidInputFunctionCall(in, OidOutputFunctionCall(out, value), ioparam, -1);
}

/* Check and convert fetch()'s variadic arguments into call. */
static void
fetch_params(FunctionCallInfo fcinfo, FetchDef *d, FetchCall *call)
{
	Datum	   *args = NULL;
	Oid		   *types = NULL;
	bool	   *nulls = NULL;
	int			n = 0;
	int			i;

	/* fetch(name) has no variadic part, which extract_variadic_args() cannot take. */
	if (PG_NARGS() > 1)
		n = extract_variadic_args(fcinfo, 1, true, &args, &types, &nulls);
	if (n < 0)
		n = 0;
	if (n != d->nparams)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mlcache definition \"%s\" takes %d parameters, %d given",
						d->name, d->nparams, n)));
	call->def = d;
	call->values = palloc(sizeof(Datum) * Max(n, 1));
	call->nulls = palloc(Max(n, 1) + 1);
	for (i = 0; i < n; i++)
	{
		ConvertContext cc = {d->name, i + 1, d->ptypes[i]};
		ErrorContextCallback cb = {error_context_stack, fetch_convert_context, &cc};

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("parameter %d of mlcache definition \"%s\" must not be null",
							i + 1, d->name)));
		error_context_stack = &cb;
		call->values[i] = fetch_convert(args[i], types[i], d->ptypes[i]);
		error_context_stack = cb.previous;
		call->nulls[i] = ' ';
	}
}

/*
 * Render the key template, {n} being parameter n as text, escaped (see
 * mlcache_key_append_value) so that no two parameter lists share a key.
 */
static char *
fetch_render_key(FetchCall *call)
{
	FetchDef   *d = call->def;
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	for (p = d->key_template; *p; p++)
	{
		char	   *end;
		long		n;
		Oid			out;
		bool		varlena;

		if (*p != '{')
		{
			appendStringInfoChar(&buf, *p);
			continue;
		}
		n = strtol(p + 1, &end, 10);
		if (*end != '}' || n < 1 || n > d->nparams)
			elog(ERROR, "bad key template in mlcache definition \"%s\"", d->name);
		getTypeOutputInfo(d->ptypes[n - 1], &out, &varlena);
		{
			char	   *text = OidOutputFunctionCall(out, call->values[n - 1]);

			mlcache_key_append_value(&buf, text, strlen(text));
		}
		p = end;
	}
	return buf.data;
}

/*
 * Run f(arg) as the definition's owner with its search_path, restricted like
 * a SECURITY DEFINER function.  On error, transaction or subtransaction abort
 * restores the user and the settings.
 */
static void *
fetch_as_owner(FetchDef *d, void *(*f) (FetchCall *, void *), FetchCall *call, void *arg)
{
	Oid			save_user;
	int			save_sec;
	int			nest;
	void	   *result;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(d->owner, save_sec | SECURITY_RESTRICTED_OPERATION);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", d->search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	result = f(call, arg);
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_user, save_sec);
	return result;
}

static void *
fetch_compute_inner(FetchCall *call, void *arg)
{
	FetchDef   *d = call->def;

	if (d->plan == NULL)
		d->plan = mlcache_compute_prepare(d->query, d->nparams, d->ptypes);
	return mlcache_compute_plan(d->plan, call->values, call->nulls, (int64 *) arg);
}

static Jsonb *
fetch_compute(void *arg, int64 *compute_us)
{
	FetchCall  *call = arg;

	return fetch_as_owner(call->def, fetch_compute_inner, call, compute_us);
}

static void *
fetch_l3_inner(FetchCall *call, void *arg)
{
	return mlcache_l3_read(&call->def->l3, call->values, call->nulls,
						   call->def->nparams, call->def->ptypes);
}

static Jsonb *
fetch_l3(void *arg)
{
	FetchCall  *call = arg;

	return fetch_as_owner(call->def, fetch_l3_inner, call, NULL);
}

/* fetch() with its definition d, pinned by the caller. */
static Jsonb *
fetch_with_def(FunctionCallInfo fcinfo, FetchDef *d, bool changed_here)
{
	FetchCall	call;
	MlcacheSource src;
	MlcacheKey	k;
	char	   *key;

	fetch_check_acl(d);
	fetch_params(fcinfo, d, &call);
	key = fetch_render_key(&call);
	mlcache_check_key(key, strlen(key), "cache key");
	mlcache_key_init(&k, key, strlen(key));

	src.fingerprint = d->fingerprint;
	src.roleid = d->owner;
	src.compute = fetch_compute;
	src.l3 = mlcache_l3_configured(&d->l3) ? fetch_l3 : NULL;
	src.arg = &call;
	src.max_stale = d->max_stale;
	src.beta = d->beta;
	src.nvary = d->nvary;
	src.vary = (const char *const *) d->vary;
	if (changed_here)
	{
		int64		us;

		/* Read-your-writes: an uncommitted definition is never cached. */
		return fetch_compute(&call, &us);
	}
	return mlcache_lookup_read(&k, &src,
							   d->l1_ttl >= 0 ? d->l1_ttl : mlcache_l1_ttl,
							   d->l2_ttl >= 0 ? d->l2_ttl : mlcache_l2_ttl);
}

PG_FUNCTION_INFO_V1(mlcache_fetch);

/* mlcache.fetch(name, VARIADIC params "any") RETURNS jsonb */
Datum
mlcache_fetch(PG_FUNCTION_ARGS)
{
	char	   *name;
	FetchDef   *d;
	Jsonb	   *volatile result = NULL;
	bool		changed_here;

	mlcache_require_loaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("definition name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	d = fetch_def_get(name, &changed_here);
	PG_TRY();
	{
		result = fetch_with_def(fcinfo, d, changed_here);
	}
	PG_FINALLY();
	{
		fetch_def_unpin(d);
	}
	PG_END_TRY();
	PG_RETURN_JSONB_P(result);
}

PG_FUNCTION_INFO_V1(mlcache_definition_changed);

/*
 * mlcache._definition_changed(name): at commit, make every backend reload
 * the definition.  Called by define(), undefine() and the grant functions.
 */
Datum
mlcache_definition_changed(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	MlcacheTarget t;

	mlcache_require_loaded();
	t.kind = MLCACHE_TARGET_DEF;
	t.text = name;
	t.len = strlen(name);
	t.slot = fetch_def_slot(name);
	t.hash = 0;
	mlcache_inval_add(&t, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_check_definition);

/*
 * mlcache._check_definition(query, param_types, key): the query must be a
 * single read-only SELECT that prepares with these parameter types, and the
 * key template must use {1}..{n}, each parameter at least once.
 */
Datum
mlcache_check_definition(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(2));
	Datum	   *elems;
	Oid		   *types;
	bool	   *used;
	int			n,
				i;
	const char *p;
	SPIPlanPtr	plan;

	mlcache_require_loaded();
	deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, NULL, &n);
	types = palloc(sizeof(Oid) * Max(n, 1));
	used = palloc0(sizeof(bool) * Max(n, 1));
	for (i = 0; i < n; i++)
		types[i] = DatumGetObjectId(elems[i]);
	mlcache_check_key(key, strlen(key), "key template");
	for (p = key; *p; p++)
	{
		char	   *end;
		long		k;

		if (*p == '}' || *p == '*')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key template \"%s\" has a stray \"%c\"", key, *p),
					 errhint("Placeholders are written {1}, {2}, ... for the parameters $1, $2, ...")));
		if (*p != '{')
			continue;
		k = strtol(p + 1, &end, 10);
		if (*end != '}' || end == p + 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key template \"%s\" has a placeholder that is not {n}", key)));
		if (k < 1 || k > n)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_PARAMETER),
					 errmsg("key template \"%s\" refers to parameter %ld, but the query has %d",
							key, k, n)));
		used[k - 1] = true;
		p = end;
	}
	for (i = 0; i < n; i++)
		if (!used[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key template \"%s\" does not use parameter $%d", key, i + 1),
					 errdetail("Every parameter must be part of the key, or different values would share one cached result.")));
	plan = mlcache_compute_prepare(query, n, types);
	SPI_freeplan(plan);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_compute_estimate);

/*
 * mlcache._compute_estimate(name): the definition's average compute time in
 * ms on this server, or NULL if it has not been computed yet.
 */
Datum
mlcache_compute_estimate(PG_FUNCTION_ARGS)
{
	bool		changed_here;
	FetchDef   *d;
	double		ms;

	mlcache_require_loaded();
	d = fetch_def_get(text_to_cstring(PG_GETARG_TEXT_PP(0)), &changed_here);
	ms = mlcache_stats_compute_ms(d->fingerprint);
	fetch_def_unpin(d);
	if (ms < 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(ms);
}
