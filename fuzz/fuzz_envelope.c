/*
 * fuzz_envelope.c
 *	  libFuzzer target for the Redis envelope decoder (src/envelope.c).
 *
 * Any bytes from Redis must decode to a miss or to a consistent envelope,
 * never to a read outside the buffer (AddressSanitizer): on success the key
 * lies inside the input and the value is a varlena of the declared length.
 * Encoding what was decoded must give back the input.  The decoder is
 * compiled in with a malloc-based palloc.
 */
#include "postgres.h"

#include <stdint.h>

#include "envelope.h"
#include "port/pg_crc32c.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The memory functions envelope.c uses, for a process without a backend. */
void *
palloc(Size size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

void
pfree(void *pointer)
{
	free(pointer);
}

/* Decode buf; if it decodes, check it and that encoding gives it back. */
static void
check(const char *buf, size_t size)
{
	MlcacheEnvelope env;
	Size		len;
	char	   *again;

	if (!mlcache_envelope_decode(buf, size, &env))
		return;
	if (env.key < buf || env.key + env.keylen > buf + size)
		abort();
	again = mlcache_envelope_encode(&env, &len);
	if (len != size || memcmp(again, buf, size) != 0)
		abort();
	free(again);
	free(env.value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *copy;
	pg_crc32c	crc;

	/* As it comes, which almost never passes the checksum ... */
	check((const char *) data, size);
	/* ... and with the magic and checksum made right, to reach the rest. */
	if (size < 8)
		return 0;
	copy = malloc(size);
	memcpy(copy, data, size);
	memcpy(copy, "MLC\002", 4);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, copy, size - 4);
	FIN_CRC32C(crc);
	memcpy(copy + size - 4, &crc, 4);
	check(copy, size);
	free(copy);
	return 0;
}
