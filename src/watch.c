/*
 * watch.c
 *	  The invalidation triggers installed by mlcache.watch().  The key
 *	  templates they render are render.c's.
 *
 * A template is literal text with {column} placeholders, optionally ending
 * in '*' (a prefix invalidation): "assignment_stats:{assignment_id}",
 * "analytics:student:{student_id}:*".  The triggers are statement-level
 * AFTER triggers with transition tables; the templates travel as trigger
 * arguments, so firing needs no catalog lookup.  For every OLD and NEW row
 * each template is filled in and the key (or prefix) is added to the
 * transaction's pending set (invalidate.c), which deduplicates it and
 * applies it at commit.
 *
 * Placeholder values are escaped as fetch() escapes its parameters ('%' as
 * "%25", ':' as "%3A"), so that a watch renders exactly the keys fetch()
 * reads.
 *
 * A rendered key that is not a valid cache key (a control character in the
 * data, or too long) is never an error in the writer's statement: it falls
 * back to the template's static prefix, which covers it.  A NULL in a
 * placeholder column names no entity, so that row renders no key for that
 * template.  TRUNCATE invalidates each template's static prefix.
 *
 * A logical-replication apply worker fires only row-level triggers (and
 * statement-level TRUNCATE triggers), so watch() also creates one AFTER
 * INSERT OR UPDATE OR DELETE ... FOR EACH ROW trigger, ENABLE REPLICA: it
 * fires only under session_replication_role = replica, as apply workers
 * run.  It renders the same templates over OLD and NEW of its one row into
 * the same per-transaction pending set, applied at the apply worker's
 * commit.  In any other session running as replica the statement-level
 * triggers (ENABLE ALWAYS) have already covered the statement, so the row
 * trigger does nothing there: nothing is rendered twice.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "replication/logicalworker.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "invalidate.h"
#include "keys.h"
#include "l3_dirty.h"
#include "render.h"
#include "shmem.h"

/*
 * Add the invalidation for the key of template t rendered in buf (a prefix
 * template's '*' is appended to it there).
 */
static void
watch_add_key(Template *t, StringInfo buf)
{
	MlcacheTarget target;

	if (!mlcache_render_key_ok(buf->data, buf->len))
		target = mlcache_render_fallback(t);
	else if (t->is_prefix)
	{
		appendStringInfoChar(buf, '*');
		target = mlcache_pattern_target(buf->data, buf->len);
	}
	else
	{
		mlcache_target_init(&target, MLCACHE_TARGET_KEY, buf->data, buf->len);
	}
	mlcache_inval_add(&target, false);
}

/* Render t for the row in slot and add its invalidation. */
static void
watch_row(Template *t, TupleTableSlot *slot, StringInfo buf)
{
	if (mlcache_render_row(t, slot, buf))
		watch_add_key(t, buf);
}

/*
 * One template for one pair of rows (either may be absent: have false).  The
 * old row is skipped when its placeholder values equal the new row's.
 */
static void
watch_pair(Template *t, TupleTableSlot *oslot, bool ohave, TupleTableSlot *nslot,
		   bool nhave, StringInfo obytes, StringInfo nbytes, StringInfo buf)
{
	bool		nkey,
				okey;

	if (t->byval_attnum != InvalidAttrNumber)
	{
		Datum		od = 0,
					nd = 0;
		bool		isnull;

		nkey = nhave && (nd = slot_getattr(nslot, t->byval_attnum, &isnull), !isnull);
		okey = ohave && (od = slot_getattr(oslot, t->byval_attnum, &isnull), !isnull);
		if (nkey && !mlcache_render_seen_datum(t, nd))
			watch_row(t, nslot, buf);
		if (okey && !(nkey && od == nd) && !mlcache_render_seen_datum(t, od))
			watch_row(t, oslot, buf);
		return;
	}
	nkey = nhave && mlcache_render_value_bytes(t, nslot, nbytes);
	okey = ohave && mlcache_render_value_bytes(t, oslot, obytes);
	if (nkey && !mlcache_render_seen(t, nbytes))
		watch_row(t, nslot, buf);
	if (okey && !(nkey && obytes->len == nbytes->len &&
				  memcmp(obytes->data, nbytes->data, nbytes->len) == 0) &&
		!mlcache_render_seen(t, obytes))
		watch_row(t, oslot, buf);
}

/* A read pointer on a transition table, from its start. */
static int
watch_open(Tuplestorestate *ts)
{
	int			ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	return ptr;
}

static bool
watch_next(Tuplestorestate *ts, int ptr, TupleTableSlot *slot)
{
	tuplestore_select_read_pointer(ts, ptr);
	return tuplestore_gettupleslot(ts, true, false, slot);
}

/*
 * A watch trigger's parsed templates, and what its statements reuse, so
 * that a statement neither parses the templates again (a single-row UPDATE
 * spent more on that than on its row) nor builds slots, buffers and a
 * memory context of its own.  Entries are keyed by the trigger's OID and
 * dropped when their table's relcache entry is invalidated, which covers
 * every change to its columns and to its triggers (CREATE OR REPLACE TRIGGER
 * included).  Watch triggers never nest (they run no statement that fires
 * triggers), so one statement at a time uses an entry.
 */
typedef struct TemplateCacheEntry
{
	Oid			tgoid;			/* hash key */
	Oid			relid;
	int			ntmpl;
	Template   *tmpls;			/* parts parsed once; the seen-sets per statement */
	MemoryContext cxt;			/* everything below lives here */
	TupleTableSlot *oslot;		/* for old and new rows, on a copy of the */
	TupleTableSlot *nslot;		/* table's descriptor (a copy pins nothing) */
	MemoryContext rowcxt;		/* reset for every row */
	StringInfoData buf;			/* a rendered key */
	StringInfoData obytes;		/* an old and a new row's placeholder values */
	StringInfoData nbytes;
} TemplateCacheEntry;

/*
 * Render every template for every row of the transition tables (either may
 * be NULL).  With both (UPDATE), the tables are read side by side: PostgreSQL
 * captures each row's old and new versions together.  When a pair's
 * placeholder values are the same bytes (the key columns did not change),
 * the old row names the same keys as the new one and is skipped without a
 * lookup.  The pairing is only a shortcut: every row of both tables is
 * considered, whatever the order, so it stays correct if the orders differ.
 */
static void
watch_scan_rows(Tuplestorestate *oldts, Tuplestorestate *newts, TemplateCacheEntry *e)
{
	int			optr = oldts ? watch_open(oldts) : -1;
	int			nptr = newts ? watch_open(newts) : -1;
	bool		ohave = oldts != NULL,
				nhave = newts != NULL;
	int			i;

	for (;;)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ohave)
			ohave = watch_next(oldts, optr, e->oslot);
		if (nhave)
			nhave = watch_next(newts, nptr, e->nslot);
		if (!ohave && !nhave)
			break;
		MemoryContextReset(e->rowcxt);
		old = MemoryContextSwitchTo(e->rowcxt);
		for (i = 0; i < e->ntmpl; i++)
			watch_pair(&e->tmpls[i], e->oslot, ohave, e->nslot, nhave,
					   &e->obytes, &e->nbytes, &e->buf);
		MemoryContextSwitchTo(old);
	}
	if (oldts)
		tuplestore_select_read_pointer(oldts, 0);
	if (newts)
		tuplestore_select_read_pointer(newts, 0);
	ExecClearTuple(e->oslot);
	ExecClearTuple(e->nslot);
	MemoryContextReset(e->rowcxt);
}

static HTAB *template_cache = NULL;

/*
 * Contexts of dropped entries.  An invalidation can arrive while a trigger
 * is using an entry (its SPI lookup of the watched views takes locks), so
 * they are freed at the next trigger call.
 */
static List *template_garbage = NIL;

static void
template_cache_drop(TemplateCacheEntry *e)
{
	MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);

	template_garbage = lappend(template_garbage, e->cxt);
	MemoryContextSwitchTo(old);
	hash_search(template_cache, &e->tgoid, HASH_REMOVE, NULL);
}

static void
template_cache_inval(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	TemplateCacheEntry *e;

	if (template_cache == NULL)
		return;
	hash_seq_init(&seq, template_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (!OidIsValid(relid) || e->relid == relid)
			template_cache_drop(e);
}

/*
 * The trigger's entry: its templates parsed against the table's descriptor,
 * their per-statement state reset.
 */
static TemplateCacheEntry *
watch_entry(Trigger *trig, Relation rel)
{
	TemplateCacheEntry *e;
	bool		found;
	ListCell   *lc;
	int			i;

	foreach(lc, template_garbage)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(template_garbage);
	template_garbage = NIL;
	if (template_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TemplateCacheEntry);
		ctl.hcxt = CacheMemoryContext;
		template_cache = hash_create("mlcache watch templates", 16, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(template_cache_inval, (Datum) 0);
	}
	e = hash_search(template_cache, &trig->tgoid, HASH_FIND, NULL);
	if (e == NULL)
	{
		MemoryContext cxt = AllocSetContextCreate(CacheMemoryContext, "mlcache watch templates",
												  ALLOCSET_SMALL_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		TemplateCacheEntry *fresh = palloc0(sizeof(TemplateCacheEntry));

		PG_TRY();
		{
			/* A copy of the descriptor: slots on it pin nothing across transactions. */
			TupleDesc	desc = CreateTupleDescCopy(RelationGetDescr(rel));

			fresh->tmpls = palloc0(sizeof(Template) * Max(trig->tgnargs, 1));
			for (i = 0; i < trig->tgnargs; i++)
				mlcache_render_parse(pstrdup(trig->tgargs[i]), desc, &fresh->tmpls[i]);
			fresh->oslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
			fresh->nslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
			fresh->rowcxt = AllocSetContextCreate(cxt, "mlcache watch row", ALLOCSET_SMALL_SIZES);
			initStringInfo(&fresh->buf);
			initStringInfo(&fresh->obytes);
			initStringInfo(&fresh->nbytes);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			PG_RE_THROW();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
		fresh->tgoid = trig->tgoid;
		fresh->relid = RelationGetRelid(rel);
		fresh->ntmpl = trig->tgnargs;
		fresh->cxt = cxt;
		/* Entered complete: an error above leaves no half-built entry behind. */
		e = hash_search(template_cache, &trig->tgoid, HASH_ENTER, &found);
		*e = *fresh;
	}
	for (i = 0; i < e->ntmpl; i++)
	{
		Template   *t = &e->tmpls[i];

		t->seen_cxt = CurrentMemoryContext;
		t->seen = NULL;			/* built on the second distinct value */
		t->dseen = NULL;
		t->has_last = false;	/* last is initialized on the first */
	}
	return e;
}

/*
 * Can an UPDATE's old rows be skipped?  When the statement set none of the
 * templates' columns, every old row names the same keys as its new version.
 * Only when nothing else can change a row on the way: a BEFORE ROW UPDATE
 * trigger may change any column, and so may one on a child table or a
 * partition, which this table's trigger list does not show.
 */
static bool
watch_keys_unchanged(TriggerData *td, Template *tmpls, int ntmpl)
{
	Relation	rel = td->tg_relation;
	int			i,
				j;

	if (td->tg_updatedcols == NULL)
		return false;			/* not told which columns changed */
	if ((rel->trigdesc != NULL && rel->trigdesc->trig_update_before_row) ||
		rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE || rel->rd_rel->relhassubclass)
		return false;
	for (i = 0; i < ntmpl; i++)
		for (j = 0; j < tmpls[i].nparts; j++)
			if (tmpls[i].parts[j].is_column &&
				bms_is_member(tmpls[i].parts[j].attnum - FirstLowInvalidHeapAttributeNumber,
							  td->tg_updatedcols))
				return false;
	return true;
}

/*
 * The row-level firing (in a logical-replication apply or table
 * synchronisation worker): the templates over the row's old and new
 * versions, paired as watch_pair pairs them.
 */
static void
watch_fire_row(TriggerData *td, TemplateCacheEntry *e)
{
	TupleTableSlot *oslot = NULL;
	TupleTableSlot *nslot = NULL;
	MemoryContext old;
	int			i;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		nslot = td->tg_trigslot;
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		oslot = td->tg_trigslot;
	else
	{
		oslot = td->tg_trigslot;
		nslot = td->tg_newslot;
	}
	MemoryContextReset(e->rowcxt);
	old = MemoryContextSwitchTo(e->rowcxt);
	for (i = 0; i < e->ntmpl; i++)
		watch_pair(&e->tmpls[i], oslot, oslot != NULL, nslot, nslot != NULL,
				   &e->obytes, &e->nbytes, &e->buf);
	MemoryContextSwitchTo(old);
	MemoryContextReset(e->rowcxt);
}

PG_FUNCTION_INFO_V1(mlcache_watch_trigger);

/*
 * The trigger function behind every watch: AFTER ... FOR EACH STATEMENT
 * with transition tables, or AFTER ... FOR EACH ROW for the apply workers
 * of logical replication (see the header).  Without the library preloaded
 * no cache can exist, so there is nothing to invalidate and it does nothing.
 */
Datum
mlcache_watch_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TemplateCacheEntry *e;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("mlcache.watch_trigger() must be fired AFTER ... FOR EACH STATEMENT or FOR EACH ROW")));
	if (mlcache_shared == NULL)
		return PointerGetDatum(NULL);
	/* Outside replication workers the statement-level triggers cover every row. */
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event) && !IsLogicalWorker())
		return PointerGetDatum(NULL);

	e = watch_entry(td->tg_trigger, td->tg_relation);
	mlcache_l3_mark_dirty(RelationGetRelid(td->tg_relation));
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		watch_fire_row(td, e);
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		for (i = 0; i < e->ntmpl; i++)
		{
			MlcacheTarget fb = mlcache_render_fallback(&e->tmpls[i]);

			mlcache_inval_add(&fb, false);
		}
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && td->tg_newtable != NULL &&
		watch_keys_unchanged(td, e->tmpls, e->ntmpl))
		watch_scan_rows(NULL, td->tg_newtable, e);
	else
		watch_scan_rows(td->tg_oldtable, td->tg_newtable, e);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(mlcache_check_templates);

/*
 * mlcache._check_templates(tbl, keys): validate templates against a table's
 * current columns; raises the error watch() reports.  Also used by the DDL
 * event trigger to refuse changes that would break a watch.
 */
Datum
mlcache_check_templates(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				j;
	Relation	rel;

	mlcache_require_loaded();
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at least one key template is required")));
	rel = relation_open(relid, AccessShareLock);
	for (i = 0; i < n; i++)
	{
		Template	t;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key template must not be null")));
		mlcache_render_parse(TextDatumGetCString(elems[i]), RelationGetDescr(rel), &t);
		for (j = 0; j < i; j++)
			if (!nulls[j] && strcmp(TextDatumGetCString(elems[j]), t.source) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("key template \"%s\" is listed twice", t.source)));
	}
	relation_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_invalidate_templates);

/*
 * mlcache._invalidate_templates(keys): at commit, invalidate everything the
 * templates can produce (their static prefixes), and mark every materialized
 * view of the database dirty.  Used by watch() and by DDL on watched tables,
 * where the rows involved are unknown: the data may have changed under the
 * views too (a view listed by the watch, or one the watch does not name).
 */
Datum
mlcache_invalidate_templates(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	mlcache_require_loaded();
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		Template	t;
		MlcacheTarget fb;

		if (nulls[i])
			continue;
		mlcache_render_parse(TextDatumGetCString(elems[i]), NULL, &t);
		fb = mlcache_render_fallback(&t);
		mlcache_inval_add(&fb, false);
	}
	mlcache_inval_views(InvalidOid);
	PG_RETURN_VOID();
}
