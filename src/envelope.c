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
 *	72	uint64 xid: FullTransactionId of the writing transaction, 0 if none
 *	80	key bytes, then the jsonb value (its varlena body, without header)
 *	end 16 bytes: HMAC-SHA256 of everything before it, keyed with the
 *		cluster secret (secret.c) and truncated
 *
 * The Lua scripts of l2_redis.c read the magic, epoch, computed_at and
 * max_stale at these offsets: keep them in step.
 *
 * Redis is outside the trust boundary (DESIGN.md G14): whoever can write to
 * it can delete values, never plant one.  Decoding therefore checks, in this
 * order, the magic and version, that the lengths add up, the MAC (in
 * constant time; a forged value fails here, before anything looks at its
 * body), and then, as defence in depth against bugs and other versions, that
 * the body is a well-formed jsonb container (jsonb_check.c).  Any failure
 * makes the value a miss.  Without a usable secret every decode fails and
 * encode writes a tag that never verifies.
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "common/sha2.h"
#include "utils/memutils.h"

#include "envelope.h"
#include "jsonb_check.h"

#define ENV_HEADER	80
#define ENV_TAG		MLCACHE_ENVELOPE_TAG_LEN

StaticAssertDecl(MLCACHE_ENVELOPE_OVERHEAD == ENV_HEADER + ENV_TAG,
				 "MLCACHE_ENVELOPE_OVERHEAD must match the layout");
StaticAssertDecl(ENV_TAG <= PG_SHA256_DIGEST_LENGTH, "tag longer than the digest");

static const char env_magic[4] = {'M', 'L', 'C', MLCACHE_ENVELOPE_VERSION};

/* The cluster secret in shared memory, or NULL when there is none. */
static const uint8 *env_secret = NULL;

/*
 * Set the key of the envelope MAC (MLCACHE_SECRET_LEN bytes that must stay
 * in place), or NULL: then no value decodes.  Called by the shared-memory
 * start-up in every process.
 */
void
mlcache_envelope_set_secret(const uint8 *secret)
{
	env_secret = secret;
}

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

/*
 * The MAC's two SHA-256 states keyed once per process: HMAC(k, m) is
 * H((k ^ opad) || H((k ^ ipad) || m)), and both keyed prefixes are one
 * 64-byte block, so each MAC copies a state and hashes the message, the
 * inner digest and nothing else.  pg_hmac_create/init/free per call
 * (OpenSSL's HMAC_CTX, which fetches SHA-256 from the provider store under
 * a lock and registers with the resource owner each time) cost more than
 * the hashing of a small envelope: 4.4% of an L2 hit's backend samples in
 * perf (bench/results/2026-12-06-profile.md).  The states are malloc'd
 * once, outside any memory context, and rebuilt only if the secret changes.
 */
#define ENV_SHA256_BLOCK 64

static EVP_MD_CTX *env_inner = NULL;	/* after (secret ^ ipad) */
static EVP_MD_CTX *env_outer = NULL;	/* after (secret ^ opad) */
static EVP_MD_CTX *env_work = NULL;
static uint8 env_keyed[MLCACHE_SECRET_LEN];	/* the secret they are keyed with */
static bool env_keyed_ok = false;

/* Key env_inner and env_outer with env_secret.  False on any failure. */
static bool
env_mac_key(void)
{
	uint8		pad[ENV_SHA256_BLOCK];
	bool		ok;
	int			i;

	StaticAssertStmt(MLCACHE_SECRET_LEN <= ENV_SHA256_BLOCK, "secret longer than a block");
	env_keyed_ok = false;
	if (env_inner == NULL)
		env_inner = EVP_MD_CTX_new();
	if (env_outer == NULL)
		env_outer = EVP_MD_CTX_new();
	if (env_work == NULL)
		env_work = EVP_MD_CTX_new();
	if (env_inner == NULL || env_outer == NULL || env_work == NULL)
		return false;
	memset(pad, 0x36, sizeof(pad));
	for (i = 0; i < MLCACHE_SECRET_LEN; i++)
		pad[i] ^= env_secret[i];
	ok = EVP_DigestInit_ex(env_inner, EVP_sha256(), NULL) == 1 &&
		EVP_DigestUpdate(env_inner, pad, sizeof(pad)) == 1;
	memset(pad, 0x5c, sizeof(pad));
	for (i = 0; i < MLCACHE_SECRET_LEN; i++)
		pad[i] ^= env_secret[i];
	ok = ok && EVP_DigestInit_ex(env_outer, EVP_sha256(), NULL) == 1 &&
		EVP_DigestUpdate(env_outer, pad, sizeof(pad)) == 1;
	explicit_bzero(pad, sizeof(pad));
	if (ok)
	{
		memcpy(env_keyed, env_secret, MLCACHE_SECRET_LEN);
		env_keyed_ok = true;
	}
	return ok;
}

/*
 * The truncated HMAC-SHA256 of buf[0..len) into tag.  False, tag undefined,
 * without a secret or if the HMAC fails.  Nothing here raises an error.
 */
static bool
env_mac(const char *buf, Size len, uint8 *tag)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	unsigned int dlen = 0;
	bool		ok;

	if (env_secret == NULL)
		return false;
	if ((!env_keyed_ok || memcmp(env_keyed, env_secret, MLCACHE_SECRET_LEN) != 0) &&
		!env_mac_key())
		return false;
	ok = EVP_MD_CTX_copy_ex(env_work, env_inner) == 1 &&
		EVP_DigestUpdate(env_work, buf, len) == 1 &&
		EVP_DigestFinal_ex(env_work, digest, &dlen) == 1 && dlen == sizeof(digest) &&
		EVP_MD_CTX_copy_ex(env_work, env_outer) == 1 &&
		EVP_DigestUpdate(env_work, digest, sizeof(digest)) == 1 &&
		EVP_DigestFinal_ex(env_work, digest, &dlen) == 1 && dlen == sizeof(digest);
	if (ok)
		memcpy(tag, digest, ENV_TAG);
	explicit_bzero(digest, sizeof(digest));
	return ok;
}

/*
 * Encode an envelope into a palloc'd buffer; *len receives its size.  When
 * no MAC can be computed the tag is zeros, which never verifies: the value
 * is then only ever a miss.
 */
char *
mlcache_envelope_encode(const MlcacheEnvelope *env, Size *len)
{
	Size		vlen = VARSIZE(env->value) - VARHDRSZ;
	Size		total = ENV_HEADER + env->keylen + vlen + ENV_TAG;
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
	if (!env_mac(buf, total - ENV_TAG, (uint8 *) p + total - ENV_TAG))
		memset(p + total - ENV_TAG, 0, ENV_TAG);
	*len = total;
	return buf;
}

/* Does buf end with the right tag?  Compared in constant time. */
static bool
env_mac_valid(const char *buf, Size len)
{
	uint8		tag[ENV_TAG];
	bool		ok;

	ok = env_mac(buf, len - ENV_TAG, tag) &&
		timingsafe_bcmp(tag, buf + len - ENV_TAG, ENV_TAG) == 0;
	explicit_bzero(tag, sizeof(tag));
	return ok;
}

/*
 * Decode buf into env.  Returns false, leaving env undefined, if buf is not a
 * well-formed envelope with a valid MAC and a valid jsonb body.  On success
 * env->key points into buf and env->value is a new palloc'd jsonb.
 */
bool
mlcache_envelope_decode(const char *buf, Size len, MlcacheEnvelope *env)
{
	uint32		keylen,
				vlen;
	const char *body;
	Jsonb	   *value;

	if (len < ENV_HEADER + ENV_TAG || memcmp(buf, env_magic, 4) != 0)
		return false;
	keylen = get32(buf + 4);
	vlen = get32(buf + 64);
	if ((uint64) keylen + vlen + ENV_HEADER + ENV_TAG != (uint64) len)
		return false;
	if (!env_mac_valid(buf, len))
		return false;
	body = buf + ENV_HEADER + keylen;
	if (vlen > MaxAllocSize - VARHDRSZ || !mlcache_jsonb_valid(body, vlen))
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
	memcpy(VARDATA(value), body, vlen);
	env->value = value;
	return true;
}
