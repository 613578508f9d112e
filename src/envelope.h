/*
 * envelope.h
 *	  The self-describing format of every value mlcache writes to Redis.
 */
#ifndef MLCACHE_ENVELOPE_H
#define MLCACHE_ENVELOPE_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#define MLCACHE_ENVELOPE_VERSION 3

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
	uint64		xid;			/* FullTransactionId of the writing transaction, 0 if none */
	const char *key;			/* full cache key */
	int			keylen;
	Jsonb	   *value;
} MlcacheEnvelope;

extern char *mlcache_envelope_encode(const MlcacheEnvelope *env, Size *len);
extern bool mlcache_envelope_decode(const char *buf, Size len, MlcacheEnvelope *env);

#endif
