/*
 * template.h
 *	  The syntax of watch key templates, free of any PostgreSQL dependency so
 *	  that it can be fuzzed on its own (fuzz/fuzz_template.c).
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

#endif
