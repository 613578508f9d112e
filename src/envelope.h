/*
 * envelope.h
 *	  The self-describing, authenticated format of every value mlcache writes
 *	  to Redis.
 */
#ifndef MLCACHE_ENVELOPE_H
#define MLCACHE_ENVELOPE_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#define MLCACHE_ENVELOPE_VERSION 3

/* Bytes of the cluster secret that keys the envelope MAC (see secret.c). */
#define MLCACHE_SECRET_LEN 32
/* Bytes of the HMAC-SHA256 tag kept at the end of every envelope. */
#define MLCACHE_ENVELOPE_TAG_LEN 16
/* Envelope bytes around the key and the value: header and tag. */
#define MLCACHE_ENVELOPE_OVERHEAD (80 + MLCACHE_ENVELOPE_TAG_LEN)

typedef struct MlcacheEnvelope
{
	uint64		epoch;			/* shared-memory epoch it was written under */
	uint64		token;			/* generation token it was computed under */
	Oid			dbid;			/* database it was computed in */
	Oid			roleid;			/* role it was computed as */
	uint64		fingerprint;	/* query fingerprint, 0 for set() values */
	TimestampTz computed_at;
	TimestampTz expires_at;
	int64		compute_us;		/* how long the computation took */
	uint32		max_stale;		/* s it may be served stale (stale-while-revalidate) */
	uint64		xid;			/* FullTransactionId (as uint64) of the writing
								 * transaction, 0 when none */
	const char *key;			/* full cache key */
	int			keylen;
	Jsonb	   *value;
} MlcacheEnvelope;

extern void mlcache_envelope_set_secret(const uint8 *secret);
extern char *mlcache_envelope_encode(const MlcacheEnvelope *env, Size *len);
extern bool mlcache_envelope_decode(const char *buf, Size len, MlcacheEnvelope *env);

#endif
