/*
 * watch.c
 *	  The invalidation triggers installed by mlcache.watch(), and key
 *	  templates.
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
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "replication/logicalworker.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "invalidate.h"
#include "keys.h"
#include "l3_dirty.h"
#include "template.h"
#include "shmem.h"

/*
 * How a column's value becomes text: the common key types are written
 * directly, as their output functions would write them, without a function
 * call or an allocation; any other type goes through its output function.
 */
typedef enum PartRender
{
	RENDER_OUTPUT,
	RENDER_INT2,
	RENDER_INT4,
	RENDER_INT8,
	RENDER_TEXT					/* text and varchar: the bytes themselves */
} PartRender;

/* One piece of a parsed template: literal text or a column reference. */
typedef struct TemplatePart
{
	bool		is_column;
	char	   *text;			/* literal text, or the column name */
	int			textlen;
	int			attnum;			/* for columns, in the table's tuple descriptor */
	FmgrInfo	out;			/* for columns, the type's output function */
	PartRender	render;
	int16		typlen;			/* for columns: how to compare values as bytes */
	bool		typbyval;
} TemplatePart;

/*
 * The set of placeholder-value tuples already rendered for one template in
 * this statement, so that a bulk UPDATE renders each distinct key once.
 * Values are compared as bytes: equal bytes always render the same key (the
 * converse need not hold, which only costs a redundant render).  Entries are
 * keyed by a 64-bit hash of the bytes and keep the bytes themselves, so a
 * hash collision is never taken for a match.  A simplehash table: one probe
 * per row and template, no dynahash call overhead.
 */
typedef struct SeenEntry
{
	uint64		hash;
	char		status;			/* simplehash's */
	int			len;			/* the first byte string with this hash */
	char	   *data;
	List	   *more;			/* of StringInfo: others with the same hash */
} SeenEntry;

#define SH_PREFIX seen
#define SH_ELEMENT_TYPE SeenEntry
#define SH_KEY_TYPE uint64
#define SH_KEY hash
#define SH_HASH_KEY(tb, key) ((uint32) ((key) ^ ((key) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * The seen-set of a template whose only placeholder is a by-value column
 * (an id, almost always): the Datum itself is the key, so a lookup is one
 * probe with no hashing of bytes and no comparison of copies.
 */
typedef struct DatumSeenEntry
{
	uint64		value;
	char		status;			/* simplehash's */
} DatumSeenEntry;

/* Spread the bits of a Datum: sequential ids must not share buckets. */
static inline uint32
datum_mix(uint64 v)
{
	v ^= v >> 31;
	v *= UINT64CONST(0x9e3779b97f4a7c15);
	v ^= v >> 29;
	return (uint32) (v ^ (v >> 32));
}

#define SH_PREFIX dseen
#define SH_ELEMENT_TYPE DatumSeenEntry
#define SH_KEY_TYPE uint64
#define SH_KEY value
#define SH_HASH_KEY(tb, key) datum_mix(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct Template
{
	const char *source;
	int			nparts;
	TemplatePart *parts;
	bool		is_prefix;		/* ends in '*' */
	char	   *fallback_glob;	/* static prefix (or namespace) covering it, as a glob */
	int			fallback_len;
	AttrNumber	byval_attnum;	/* the only placeholder, if by value; else 0 */
	seen_hash  *seen;			/* placeholder values already rendered, or NULL */
	dseen_hash *dseen;			/* the same, for a byval_attnum template */
	MemoryContext seen_cxt;		/* where seen and its values live */
	StringInfoData last;		/* the values last looked up (in seen, if built) */
	Datum		last_datum;		/* the same, for a byval_attnum template */
	bool		has_last;
} Template;

/* Find a placeholder's column in desc; raises 42703 if it is not there. */
static void
template_resolve(TemplatePart *p, TupleDesc desc, const char *src)
{
	int			a;

	for (a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), p->text) == 0)
		{
			Oid			outfn;
			bool		varlena;

			p->attnum = a + 1;
			p->typlen = att->attlen;
			p->typbyval = att->attbyval;
			getTypeOutputInfo(att->atttypid, &outfn, &varlena);
			fmgr_info(outfn, &p->out);
			p->render = outfn == F_INT2OUT ? RENDER_INT2 :
				outfn == F_INT4OUT ? RENDER_INT4 :
				outfn == F_INT8OUT ? RENDER_INT8 :
				outfn == F_TEXTOUT || outfn == F_VARCHAROUT ? RENDER_TEXT :
				RENDER_OUTPUT;
			return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of key template \"%s\" does not exist", p->text, src)));
}

/*
 * Parse src into t.  With a tuple descriptor, every column must exist in it;
 * errors are raised with SQLSTATEs suited to watch() time.
 */
static void
template_parse(const char *src, TupleDesc desc, Template *t)
{
	int			len = strlen(src);
	MlcacheTemplatePiece *pieces = palloc(sizeof(MlcacheTemplatePiece) * (len + 1));
	int			n,
				i;
	char		bad = 0;
	MlcacheTemplateError err = mlcache_template_split(src, len, pieces, &n, &t->is_prefix, &bad);

	if (err != TEMPLATE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 err == TEMPLATE_EMPTY ? errmsg("key template \"%s\" is empty", src) :
				 err == TEMPLATE_UNTERMINATED ? errmsg("key template \"%s\" has an unterminated or empty placeholder", src) :
				 err == TEMPLATE_NESTED ? errmsg("key template \"%s\" has a nested \"{\"", src) :
				 err == TEMPLATE_STRAY ? errmsg("key template \"%s\" has a stray \"%c\"", src, bad) :
				 errmsg("key template \"%s\" contains a control character", src),
				 err == TEMPLATE_STRAY ?
				 errhint("Placeholders are written {column}; '*' may only end a template.") : 0));
	t->source = src;
	t->nparts = n;
	t->parts = palloc(sizeof(TemplatePart) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		TemplatePart *p = &t->parts[i];

		p->is_column = pieces[i].is_column;
		p->text = pnstrdup(src + pieces[i].start, pieces[i].len);
		p->textlen = pieces[i].len;
		p->render = RENDER_OUTPUT;
		p->attnum = InvalidAttrNumber;
		p->typlen = 0;
		p->typbyval = false;
		if (p->is_column && desc != NULL)
			template_resolve(p, desc, src);
	}
	t->byval_attnum = InvalidAttrNumber;
	for (i = 0; i < n; i++)
	{
		if (!t->parts[i].is_column)
			continue;
		if (t->byval_attnum != InvalidAttrNumber || t->parts[i].attnum == InvalidAttrNumber ||
			!t->parts[i].typbyval)
		{
			t->byval_attnum = InvalidAttrNumber;
			break;
		}
		t->byval_attnum = t->parts[i].attnum;
	}

	/* The static prefix: the leading literal, as a glob. */
	{
		StringInfoData glob;

		initStringInfo(&glob);
		if (t->nparts > 0 && !t->parts[0].is_column)
			appendStringInfoString(&glob, t->parts[0].text);
		if (t->nparts != 1 || t->parts[0].is_column || t->is_prefix)
			appendStringInfoChar(&glob, '*');
		t->fallback_glob = glob.data;
		t->fallback_len = glob.len;
	}
}

/*
 * The invalidation of t's static prefix, made when needed (TRUNCATE, DDL, a
 * row that renders no valid key): it depends on the session's namespace.
 */
static MlcacheTarget
template_fallback(Template *t)
{
	return mlcache_pattern_target(t->fallback_glob, t->fallback_len);
}

/*
 * Append the bytes of t's placeholder values in this row to buf.  Returns
 * false if one is NULL (the row renders no key for t).
 */
static bool
template_value_bytes(Template *t, TupleTableSlot *slot, StringInfo buf)
{
	int			i;

	resetStringInfo(buf);
	for (i = 0; i < t->nparts; i++)
	{
		TemplatePart *p = &t->parts[i];
		bool		isnull;
		Datum		d;

		if (!p->is_column)
			continue;
		d = slot_getattr(slot, p->attnum, &isnull);
		if (isnull)
			return false;
		if (p->typbyval)
			appendBinaryStringInfo(buf, (char *) &d, sizeof(Datum));
		else if (p->typlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
			int32		len = VARSIZE_ANY_EXHDR(v);

			appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
			appendBinaryStringInfo(buf, VARDATA_ANY(v), len);
		}
		else if (p->typlen == -2)
		{
			int32		len = strlen(DatumGetCString(d));

			appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
			appendBinaryStringInfo(buf, DatumGetCString(d), len);
		}
		else
			appendBinaryStringInfo(buf, DatumGetPointer(d), p->typlen);
	}
	return true;
}

/* Remember bytes in t's seen-set; true if they were there already. */
static bool
seen_add(Template *t, const char *data, int len)
{
	uint64		h = hash_bytes_extended((const unsigned char *) data, len, 0);
	bool		found;
	SeenEntry  *e = seen_insert(t->seen, h, &found);
	ListCell   *lc;
	StringInfo	copy;

	if (!found)
	{
		e->len = len;
		e->data = palloc(len + 1);
		memcpy(e->data, data, len);
		e->more = NIL;
		return false;
	}
	if (e->len == len && memcmp(e->data, data, len) == 0)
		return true;
	foreach(lc, e->more)
	{
		StringInfo	v = lfirst(lc);

		if (v->len == len && memcmp(v->data, data, len) == 0)
			return true;
	}
	copy = makeStringInfo();
	appendBinaryStringInfo(copy, data, len);
	e->more = lappend(e->more, copy);
	return false;
}

/*
 * Has this tuple of placeholder values been rendered for t already in this
 * statement?  If not, remember it (in the set's memory context).  Rows with
 * the same values as the previous lookup (rows clustered by key) skip the
 * hash altogether, and the hash table is only built for a second distinct
 * value: a single-row statement never hashes.
 */
static bool
template_seen(Template *t, StringInfo bytes)
{
	MemoryContext old;
	bool		found;

	if (t->has_last && t->last.len == bytes->len &&
		memcmp(t->last.data, bytes->data, bytes->len) == 0)
		return true;
	old = MemoryContextSwitchTo(t->seen_cxt);
	if (!t->has_last)
	{
		initStringInfo(&t->last);
		t->has_last = true;
		found = false;
	}
	else
	{
		if (t->seen == NULL)
		{
			t->seen = seen_create(t->seen_cxt, 16, NULL);
			(void) seen_add(t, t->last.data, t->last.len);
		}
		found = seen_add(t, bytes->data, bytes->len);
	}
	resetStringInfo(&t->last);
	appendBinaryStringInfo(&t->last, bytes->data, bytes->len);
	MemoryContextSwitchTo(old);
	return found;
}

/*
 * template_seen for a byval_attnum template, whose placeholder value is d.
 * The hash table is built on the second distinct value.
 */
static bool
template_seen_datum(Template *t, Datum d)
{
	bool		found;

	if (t->has_last && t->last_datum == d)
		return true;
	if (!t->has_last)
		found = false;
	else
	{
		if (t->dseen == NULL)
		{
			t->dseen = dseen_create(t->seen_cxt, 16, NULL);
			(void) dseen_insert(t->dseen, (uint64) t->last_datum, &found);
		}
		(void) dseen_insert(t->dseen, (uint64) d, &found);
	}
	t->last_datum = d;
	t->has_last = true;
	return found;
}

/*
 * Append column part p's value d as text, as its output function writes it,
 * escaped as fetch() escapes its parameters (mlcache_key_append_value): the
 * keys must be byte for byte the ones fetch() renders.  Integers contain
 * neither '%' nor ':', so their fast path writes them as they are.
 */
static void
part_render(TemplatePart *p, Datum d, StringInfo buf)
{
	char		num[MAXINT8LEN + 1];

	switch (p->render)
	{
		case RENDER_INT2:
			appendBinaryStringInfo(buf, num, pg_ltoa(DatumGetInt16(d), num));
			break;
		case RENDER_INT4:
			appendBinaryStringInfo(buf, num, pg_ltoa(DatumGetInt32(d), num));
			break;
		case RENDER_INT8:
			appendBinaryStringInfo(buf, num, pg_lltoa(DatumGetInt64(d), num));
			break;
		case RENDER_TEXT:
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

				mlcache_key_append_value(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
				break;
			}
		case RENDER_OUTPUT:
			{
				char	   *text = OutputFunctionCall(&p->out, d);

				mlcache_key_append_value(buf, text, strlen(text));
				break;
			}
	}
}

/* Render t for one row into buf; false if a placeholder column is NULL. */
static bool
template_render(Template *t, TupleTableSlot *slot, StringInfo buf)
{
	int			i;

	resetStringInfo(buf);
	for (i = 0; i < t->nparts; i++)
	{
		TemplatePart *p = &t->parts[i];
		bool		isnull;
		Datum		d;

		if (!p->is_column)
		{
			appendBinaryStringInfo(buf, p->text, p->textlen);
			continue;
		}
		d = slot_getattr(slot, p->attnum, &isnull);
		if (isnull)
			return false;
		part_render(p, d, buf);
	}
	return true;
}

/* A rendered key is usable if mlcache_check_key would accept it. */
static bool
key_is_valid(const char *key, int len)
{
	int			i;

	if (len == 0 || len > MLCACHE_MAX_KEY)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char) key[i] < 0x20 || key[i] == 0x7f)
			return false;
	return true;
}

/*
 * Add the invalidation for the key of template t rendered in buf (a prefix
 * template's '*' is appended to it there).
 */
static void
watch_add_key(Template *t, StringInfo buf)
{
	MlcacheTarget target;

	if (!key_is_valid(buf->data, buf->len))
		target = template_fallback(t);
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
	if (template_render(t, slot, buf))
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
		if (nkey && !template_seen_datum(t, nd))
			watch_row(t, nslot, buf);
		if (okey && !(nkey && od == nd) && !template_seen_datum(t, od))
			watch_row(t, oslot, buf);
		return;
	}
	nkey = nhave && template_value_bytes(t, nslot, nbytes);
	okey = ohave && template_value_bytes(t, oslot, obytes);
	if (nkey && !template_seen(t, nbytes))
		watch_row(t, nslot, buf);
	if (okey && !(nkey && obytes->len == nbytes->len &&
				  memcmp(obytes->data, nbytes->data, nbytes->len) == 0) &&
		!template_seen(t, obytes))
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
				template_parse(pstrdup(trig->tgargs[i]), desc, &fresh->tmpls[i]);
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
			MlcacheTarget fb = template_fallback(&e->tmpls[i]);

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
		template_parse(TextDatumGetCString(elems[i]), RelationGetDescr(rel), &t);
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
		template_parse(TextDatumGetCString(elems[i]), NULL, &t);
		fb = template_fallback(&t);
		mlcache_inval_add(&fb, false);
	}
	mlcache_inval_views(InvalidOid);
	PG_RETURN_VOID();
}
