/*
 * template.h
 *	  The syntax of key templates and how a value is written into a key, free
 *	  of any PostgreSQL dependency so that it can be fuzzed on its own
 *	  (fuzz/fuzz_template.c).
 */
#ifndef MLCACHE_TEMPLATE_H
#define MLCACHE_TEMPLATE_H

#include <stdbool.h>

typedef enum MlcacheTemplateError
{
	TEMPLATE_OK,
	TEMPLATE_EMPTY,				/* nothing but an optional final '*' */
	TEMPLATE_UNTERMINATED,		/* '{' without '}', or "{}" */
	TEMPLATE_NESTED,			/* '{' inside a placeholder */
	TEMPLATE_STRAY,				/* '}' or a '*' that does not end it */
	TEMPLATE_CONTROL			/* a control character */
} MlcacheTemplateError;

/* A piece of a template: literal text or a {column}, as offsets into it. */
typedef struct MlcacheTemplatePiece
{
	bool		is_column;
	int			start;			/* of the text, or of the column name */
	int			len;
} MlcacheTemplatePiece;

/*
 * Split a template of len bytes into at most len pieces (the caller's array
 * has room for len).  *is_prefix is set when it ends in '*'.  On
 * TEMPLATE_STRAY, *bad is the offending character.
 */
extern MlcacheTemplateError mlcache_template_split(const char *src, int len,
												   MlcacheTemplatePiece *pieces, int *npieces,
												   bool *is_prefix, char *bad);

/*
 * A value substituted into a key (a fetch() parameter, a watched column) is
 * written with '%' as "%25" and ':' as "%3A", so that the boundaries between
 * values and literal text stay unambiguous: with "amb:{1}:{2}", ("x:y", "z")
 * and ("x", "y:z") give different keys.  fetch() and the watch triggers
 * must write the same bytes for the same value, so both use these.
 */
#define MLCACHE_KEY_ESCAPE_MAX	3	/* bytes written per byte of value, at most */

/* The length of s (len bytes) once escaped; equal to len when it needs none. */
extern int	mlcache_key_escaped_len(const char *s, int len);

/* Write s escaped into out, which has room for mlcache_key_escaped_len bytes. */
extern void mlcache_key_escape(const char *s, int len, char *out);

#endif
