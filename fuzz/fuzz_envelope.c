/*
 * fuzz_envelope.c
 *	  libFuzzer target for the Redis envelope decoder (src/envelope.c) and
 *	  the jsonb validator behind it (src/jsonb_check.c).
 *
 * Any bytes from Redis must decode to a miss or to a consistent envelope,
 * never to a read outside the buffer (AddressSanitizer).  Each input is
 * tried three ways:
 *	1. as it comes, which almost never carries a valid MAC: a forged value
 *	   must be refused by the MAC;
 *	2. with the magic, the lengths and the MAC made right (the fuzzer knows
 *	   its secret), to reach the body checks with any header and body;
 *	3. as a jsonb body, wrapped in a genuine envelope: it must decode exactly
 *	   when the validator accepts it, and then a reader that finds children
 *	   the way PostgreSQL's jsonb code does (walking back to the last
 *	   JENTRY_HAS_OFF entry, INTALIGN before numerics and containers, the
 *	   numeric's own varlena length) must stay inside the value.
 * On success the key lies inside the input, and encoding what was decoded
 * gives back the input.  envelope.c is compiled in with a malloc-based
 * palloc and the frontend HMAC of libpgcommon.
 */
#include "postgres.h"

#include <stdint.h>

#include "common/hmac.h"
#include "common/sha2.h"
#include "mb/pg_wchar.h"
#include "utils/resowner.h"

#include "envelope.h"
#include "jsonb_check.h"

#define HEADER 80
#define TAG MLCACHE_ENVELOPE_TAG_LEN

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What envelope.c needs from a backend. */
ResourceOwner CurrentResourceOwner = NULL;

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

int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

/* The fuzzer's secret: bytes 0..31 (fuzz/seeds.py uses the same). */
static uint8 secret[MLCACHE_SECRET_LEN];

static void
init_once(void)
{
	static bool done = false;
	static int	owner;
	int			i;

	if (done)
		return;
	for (i = 0; i < MLCACHE_SECRET_LEN; i++)
		secret[i] = (uint8) i;
	mlcache_envelope_set_secret(secret);
	CurrentResourceOwner = (ResourceOwner) &owner;	/* never dereferenced */
	done = true;
}

/* Put the right tag at the end of buf. */
static void
sign(char *buf, size_t size)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL || pg_hmac_init(ctx, secret, sizeof(secret)) != 0 ||
		pg_hmac_update(ctx, (uint8 *) buf, size - TAG) != 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) != 0)
		abort();
	pg_hmac_free(ctx);
	memcpy(buf + size - TAG, digest, TAG);
}

static volatile uint32 sink;

/* Read n bytes at p, which must lie in [lo, hi). */
static void
touch(const char *p, size_t n, const char *lo, const char *hi)
{
	size_t		i;

	if (p < lo || p > hi || n > (size_t) (hi - p))
		abort();
	for (i = 0; i < n; i++)
		sink += (unsigned char) p[i];
}

/* PostgreSQL's getJsonbOffset and getJsonbLength, as it computes them. */
static uint32
pg_offset(const JsonbContainer *c, int index)
{
	uint32		offset = 0;
	int			i;

	for (i = index - 1; i >= 0; i--)
	{
		offset += JBE_OFFLENFLD(c->children[i]);
		if (JBE_HAS_OFF(c->children[i]))
			break;
	}
	return offset;
}

static uint32
pg_length(const JsonbContainer *c, int index)
{
	uint32		off = JBE_OFFLENFLD(c->children[index]);

	return JBE_HAS_OFF(c->children[index]) ? off - pg_offset(c, index) : off;
}

/* Read every child of c the way PostgreSQL would, inside [lo, hi). */
static void
walk(const JsonbContainer *c, const char *lo, const char *hi)
{
	uint32		count;
	int			n,
				i;
	const char *base;

	touch((const char *) c, sizeof(uint32), lo, hi);
	count = JsonContainerSize(c);
	n = JsonContainerIsObject(c) ? 2 * count : count;
	touch((const char *) c->children, sizeof(JEntry) * n, lo, hi);
	base = (const char *) &c->children[n];
	for (i = 0; i < n; i++)
	{
		JEntry		je = c->children[i];
		uint32		off = pg_offset(c, i);
		uint32		len = pg_length(c, i);
		const char *p = base + INTALIGN(off);

		if (JBE_ISSTRING(je))
			touch(base + off, len, lo, hi);
		else if (JBE_ISNUMERIC(je))
		{
			touch(p, VARHDRSZ, lo, hi);
			touch(p, VARSIZE(p), lo, hi);
		}
		else if (JBE_ISCONTAINER(je))
			walk((const JsonbContainer *) p, lo, hi);
	}
}

/* Decode buf; if it decodes, check it and that encoding gives it back. */
static bool
check(const char *buf, size_t size)
{
	MlcacheEnvelope env;
	Size		len;
	char	   *again;

	if (!mlcache_envelope_decode(buf, size, &env))
		return false;
	if (env.key < buf || env.key + env.keylen > buf + size)
		abort();
	walk(&env.value->root, (const char *) env.value, (const char *) env.value + VARSIZE(env.value));
	again = mlcache_envelope_encode(&env, &len);
	if (len != size || memcmp(again, buf, size) != 0)
		abort();
	free(again);
	free(env.value);
	return true;
}

/* Way 2: the input with magic, lengths and MAC made right. */
static void
check_fixed(const uint8_t *data, size_t size)
{
	char	   *copy;
	uint32		keylen,
				vlen;

	if (size < HEADER + TAG)
		return;
	copy = malloc(size);
	memcpy(copy, data, size);
	memcpy(copy, "MLC\003", 4);
	memcpy(&keylen, copy + 4, 4);
	keylen %= (uint32) (size - HEADER - TAG + 1);
	vlen = (uint32) (size - HEADER - TAG) - keylen;
	memcpy(copy + 4, &keylen, 4);
	memcpy(copy + 64, &vlen, 4);
	sign(copy, size);
	(void) check(copy, size);
	copy[size - 1] ^= 1;		/* and one bit of the MAC wrong: refused */
	if (mlcache_envelope_decode(copy, size, &(MlcacheEnvelope) {0}))
		abort();
	free(copy);
}

/* Way 3: the input as a jsonb body in a genuine envelope. */
static void
check_body(const uint8_t *data, size_t size)
{
	MlcacheEnvelope env = {0};
	Jsonb	   *value = malloc(VARHDRSZ + size);
	char	   *buf;
	Size		len;

	SET_VARSIZE(value, VARHDRSZ + size);
	memcpy(VARDATA(value), data, size);
	env.epoch = 1;
	env.key = "fuzz:key";
	env.keylen = 8;
	env.value = value;
	buf = mlcache_envelope_encode(&env, &len);
	if (check(buf, len) != mlcache_jsonb_valid((const char *) data, size))
		abort();
	free(buf);
	free(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	(void) check((const char *) data, size);
	check_fixed(data, size);
	check_body(data, size);
	return 0;
}
