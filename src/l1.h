/*
 * l1.h
 *	  L1: the per-backend in-memory cache, bounded by mlcache.l1_max_memory.
 */
#ifndef MLCACHE_L1_H
#define MLCACHE_L1_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#include "keys.h"

/* Validity fields shared by L1 entries and Redis envelopes. */
typedef struct MlcacheStamp
{
	uint64		token;			/* generation token computed under */
	Oid			roleid;
	uint64		fingerprint;
	TimestampTz computed_at;
	TimestampTz expires_at;
	int64		compute_us;
	uint64		xid;			/* FullTransactionId of the writer whose commit
								 * makes it readable (a lease); 0: none */
} MlcacheStamp;

extern Jsonb *mlcache_l1_get(const MlcacheKey *k, MlcacheStamp *stamp);
extern void mlcache_l1_put(const MlcacheKey *k, Jsonb *value, const MlcacheStamp *stamp);
extern void mlcache_l1_remove(const MlcacheKey *k);
extern void mlcache_l1_init(void);
extern void mlcache_l1_clear(void);
extern void mlcache_l1_usage(int64 *entries, int64 *bytes);

#endif
