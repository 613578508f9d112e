/*
 * sentinel.h
 *	  Finding the Redis master through Redis Sentinel, with the answer kept
 *	  in shared memory for every backend.
 */
#ifndef MLCACHE_SENTINEL_H
#define MLCACHE_SENTINEL_H

#include "datatype/timestamp.h"

#include "guc.h"

/* What health() shows (see mlcache_sentinel_state). */
typedef struct MlcacheSentinelState
{
	bool		known;			/* a master has been resolved */
	bool		valid;			/* ... and nothing has failed on it since */
	MlcacheRedisAddr master;
	MlcacheRedisAddr answered_by;	/* the sentinel that named it */
	TimestampTz resolved_at;	/* when a sentinel last named it */
	TimestampTz changed_at;		/* when it last differed from the one before */
	uint64		changes;		/* how many times it changed */
} MlcacheSentinelState;

extern bool mlcache_sentinel_configured(void);
extern bool mlcache_sentinel_master(MlcacheRedisAddr *master, uint64 *version,
									char *detail, int detaillen);
extern uint64 mlcache_sentinel_version(void);
extern void mlcache_sentinel_forget(uint64 version);
extern void mlcache_sentinel_state(MlcacheSentinelState *out);
extern Size mlcache_sentinel_shmem_size(void);
extern void mlcache_sentinel_shmem_startup(void);

#endif
