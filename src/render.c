/*
 * render.c
 *	  Key templates rendered for rows: parsing a template against a table's
 *	  columns, writing a row's placeholder values into a key (escaped as
 *	  fetch() escapes its parameters), and the per-statement sets that let a
 *	  bulk UPDATE render each distinct key once.  The triggers that use them
 *	  are watch.c's; the template syntax itself is template.c's.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "keys.h"
#include "render.h"
#include "template.h"

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


/* Find a placeholder's column in desc; raises 42703 if it is not there. */
static void
render_resolve(TemplatePart *p, TupleDesc desc, const char *src)
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
void
mlcache_render_parse(const char *src, TupleDesc desc, Template *t)
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
			render_resolve(p, desc, src);
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
MlcacheTarget
mlcache_render_fallback(Template *t)
{
	return mlcache_pattern_target(t->fallback_glob, t->fallback_len);
}

/*
 * Append the bytes of t's placeholder values in this row to buf.  Returns
 * false if one is NULL (the row renders no key for t).
 */
bool
mlcache_render_value_bytes(Template *t, TupleTableSlot *slot, StringInfo buf)
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
render_seen_add(Template *t, const char *data, int len)
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
bool
mlcache_render_seen(Template *t, StringInfo bytes)
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
			(void) render_seen_add(t, t->last.data, t->last.len);
		}
		found = render_seen_add(t, bytes->data, bytes->len);
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
bool
mlcache_render_seen_datum(Template *t, Datum d)
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
render_part(TemplatePart *p, Datum d, StringInfo buf)
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
bool
mlcache_render_row(Template *t, TupleTableSlot *slot, StringInfo buf)
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
		render_part(p, d, buf);
	}
	return true;
}

/* A rendered key is usable if mlcache_check_key would accept it. */
bool
mlcache_render_key_ok(const char *key, int len)
{
	int			i;

	if (len == 0 || len > MLCACHE_MAX_KEY)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char) key[i] < 0x20 || key[i] == 0x7f)
			return false;
	return true;
}
