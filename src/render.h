/*
 * render.h
 *	  Key templates of a watch, parsed against a table and rendered for its
 *	  rows (render.c).
 */
#ifndef MLCACHE_RENDER_H
#define MLCACHE_RENDER_H

#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

#include "keys.h"

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
 * A parsed template, with the placeholder values already rendered in this
 * statement (the seen-sets are render.c's).
 */
typedef struct Template
{
	const char *source;
	int			nparts;
	TemplatePart *parts;
	bool		is_prefix;		/* ends in '*' */
	char	   *fallback_glob;	/* static prefix (or namespace) covering it, as a glob */
	int			fallback_len;
	AttrNumber	byval_attnum;	/* the only placeholder, if by value; else 0 */
	struct seen_hash *seen;		/* placeholder values already rendered, or NULL */
	struct dseen_hash *dseen;	/* the same, for a byval_attnum template */
	MemoryContext seen_cxt;		/* where seen and its values live */
	StringInfoData last;		/* the values last looked up (in seen, if built) */
	Datum		last_datum;		/* the same, for a byval_attnum template */
	bool		has_last;
} Template;

extern void mlcache_render_parse(const char *src, TupleDesc desc, Template *t);
extern MlcacheTarget mlcache_render_fallback(Template *t);
extern bool mlcache_render_value_bytes(Template *t, TupleTableSlot *slot, StringInfo buf);
extern bool mlcache_render_seen(Template *t, StringInfo bytes);
extern bool mlcache_render_seen_datum(Template *t, Datum d);
extern bool mlcache_render_row(Template *t, TupleTableSlot *slot, StringInfo buf);
extern bool mlcache_render_key_ok(const char *key, int len);

#endif
