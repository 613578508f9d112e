/*
 * template.c
 *	  Splitting a watch key template such as "analytics:student:{student_id}:*"
 *	  into literal pieces and {column} placeholders, and escaping the values
 *	  written into keys.
 *
 * Pure C on purpose: no allocation (the caller gives room for one piece per
 * byte, more than a template can have), no PostgreSQL calls, so the parser
 * is fuzzed as it is (fuzz/fuzz_template.c).  watch.c turns the pieces into
 * column references and reports errors.
 */
#include <string.h>

#include "template.h"

static void
add_piece(MlcacheTemplatePiece *pieces, int *n, bool is_column, int start, int len)
{
	pieces[*n].is_column = is_column;
	pieces[*n].start = start;
	pieces[*n].len = len;
	(*n)++;
}

MlcacheTemplateError
mlcache_template_split(const char *src, int len, MlcacheTemplatePiece *pieces, int *npieces,
					   bool *is_prefix, char *bad)
{
	int			i = 0;
	int			lit_start = 0;

	*npieces = 0;
	*is_prefix = (len > 0 && src[len - 1] == '*');
	if (*is_prefix)
		len--;
	if (len == 0)
		return TEMPLATE_EMPTY;
	while (i < len)
	{
		unsigned char c = (unsigned char) src[i];

		if (c == '{')
		{
			const char *close = memchr(src + i + 1, '}', len - i - 1);
			int			name_len;

			if (close == NULL || close == src + i + 1)
				return TEMPLATE_UNTERMINATED;
			name_len = (int) (close - (src + i + 1));
			if (memchr(src + i + 1, '{', name_len) != NULL)
				return TEMPLATE_NESTED;
			if (i > lit_start)
				add_piece(pieces, npieces, false, lit_start, i - lit_start);
			add_piece(pieces, npieces, true, i + 1, name_len);
			i += name_len + 2;
			lit_start = i;
			continue;
		}
		if (c == '}' || c == '*')
		{
			*bad = (char) c;
			return TEMPLATE_STRAY;
		}
		if (c < 0x20 || c == 0x7f)
			return TEMPLATE_CONTROL;
		i++;
	}
	if (i > lit_start)
		add_piece(pieces, npieces, false, lit_start, i - lit_start);
	return TEMPLATE_OK;
}

int
mlcache_key_escaped_len(const char *s, int len)
{
	int			n = len;
	int			i;

	for (i = 0; i < len; i++)
		if (s[i] == '%' || s[i] == ':')
			n += 2;
	return n;
}

void
mlcache_key_escape(const char *s, int len, char *out)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		if (s[i] == '%' || s[i] == ':')
		{
			*out++ = '%';
			*out++ = s[i] == '%' ? '2' : '3';
			*out++ = s[i] == '%' ? '5' : 'A';
		}
		else
			*out++ = s[i];
	}
}
