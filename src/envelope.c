/*
 * envelope.c
 *	  Encoding and decoding of the Redis value envelope.
 *
 * Layout (host byte order; a Redis shared by machines of different
 * endianness only ever produces misses, since the magic will not match):
 *
 *	 0	"MLC" + format version byte
 *	 4	uint32 key length
 *	 8	uint64 epoch
 *	16	uint64 generation token
 *	24	uint32 database OID, 28 uint32 role OID
 *	32	uint64 query fingerprint
 *	40	int64 computed_at, 48 int64 expires_at, 56 int64 compute time (us)
 *	64	uint32 value length
 *	68	uint32 max_stale (seconds; the Redis clean-up leaves a value alone
 *		while it may still be served stale)
 *	72	uint64 writer's FullTransactionId (0: none; see lookup.c's leases)
 *	80	key bytes, then the jsonb value (its varlena body, without header)
 *	end uint32 CRC-32C of everything before it
 *
 * Decoding never trusts its input: any length that does not add up, a wrong
 * magic or version, a bad checksum, or a jsonb body whose own header does not
 * fit makes the value a miss.
 */
#include "postgres.h"

#include "port/pg_crc32c.h"
#include "utils/memutils.h"

#include "envelope.h"

#define ENV_HEADER	80
#define ENV_TRAILER 4

static const char env_magic[4] = {'M', 'L', 'C', MLCACHE_ENVELOPE_VERSION};

static void
put32(char *p, uint32 v)
{
	memcpy(p, &v, 4);
}

static void
put64(char *p, uint64 v)
{
	memcpy(p, &v, 8);
}

static uint32
get32(const char *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return v;
}

static uint64
get64(const char *p)
{
	uint64		v;

	memcpy(&v, p, 8);
	return v;
}

static uint32
env_crc(const char *buf, Size len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, len);
	FIN_CRC32C(crc);
	return crc;
}

/* Encode an envelope into a palloc'd buffer; *len receives its size. */
char *
mlcache_envelope_encode(const MlcacheEnvelope *env, Size *len)
{
	Size		vlen = VARSIZE(env->value) - VARHDRSZ;
	Size		total = ENV_HEADER + env->keylen + vlen + ENV_TRAILER;
	char	   *buf = palloc(total);
	char	   *p = buf;

	memcpy(p, env_magic, 4);
	put32(p + 4, (uint32) env->keylen);
	put64(p + 8, env->epoch);
	put64(p + 16, env->token);
	put32(p + 24, env->dbid);
	put32(p + 28, env->roleid);
	put64(p + 32, env->fingerprint);
	put64(p + 40, (uint64) env->computed_at);
	put64(p + 48, (uint64) env->expires_at);
	put64(p + 56, (uint64) env->compute_us);
	put32(p + 64, (uint32) vlen);
	put32(p + 68, env->max_stale);
	put64(p + 72, env->xid);
	memcpy(p + ENV_HEADER, env->key, env->keylen);
	memcpy(p + ENV_HEADER + env->keylen, VARDATA(env->value), vlen);
	put32(p + total - ENV_TRAILER, env_crc(buf, total - ENV_TRAILER));
	*len = total;
	return buf;
}

/*
 * Decode buf into env.  Returns false, leaving env undefined, if buf is not a
 * well-formed envelope.  On success env->key points into buf and env->value
 * is a new palloc'd jsonb.
 */
bool
mlcache_envelope_decode(const char *buf, Size len, MlcacheEnvelope *env)
{
	uint32		keylen,
				vlen;
	Jsonb	   *value;

	if (len < ENV_HEADER + ENV_TRAILER || memcmp(buf, env_magic, 4) != 0)
		return false;
	keylen = get32(buf + 4);
	vlen = get32(buf + 64);
	if ((Size) keylen + vlen + ENV_HEADER + ENV_TRAILER != len)
		return false;
	if (get32(buf + len - ENV_TRAILER) != env_crc(buf, len - ENV_TRAILER))
		return false;
	/* The smallest jsonb body is its 4-byte container header. */
	if (vlen < sizeof(uint32) || vlen > MaxAllocSize - VARHDRSZ)
		return false;

	env->keylen = keylen;
	env->key = buf + ENV_HEADER;
	env->epoch = get64(buf + 8);
	env->token = get64(buf + 16);
	env->dbid = get32(buf + 24);
	env->roleid = get32(buf + 28);
	env->fingerprint = get64(buf + 32);
	env->computed_at = (TimestampTz) get64(buf + 40);
	env->expires_at = (TimestampTz) get64(buf + 48);
	env->compute_us = (int64) get64(buf + 56);
	env->max_stale = get32(buf + 68);
	env->xid = get64(buf + 72);

	value = palloc(VARHDRSZ + vlen);
	SET_VARSIZE(value, VARHDRSZ + vlen);
	memcpy(VARDATA(value), buf + ENV_HEADER + keylen, vlen);
	env->value = value;
	return true;
}
