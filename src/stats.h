/*
 * stats.h
 *	  Counters kept in shared memory, one row per backend, summed on read.
 */
#ifndef MLCACHE_STATS_H
#define MLCACHE_STATS_H

#include "datatype/timestamp.h"

typedef enum MlcacheCounter
{
	MLC_L1_HIT,
	MLC_L1_MISS,
	MLC_L2_HIT,
	MLC_L2_MISS,
	MLC_L3_HIT,
	MLC_L3_MISS,
	MLC_COMPUTE,
	MLC_BYPASS,				/* read around the cache (isolation, RYW, off) */
	MLC_REJECTED_FILL,		/* computed but not stored: generations moved */
	MLC_STALE_REJECTED,		/* cached value found but its generations moved */
	MLC_DECODE_FAILED,		/* Redis value that is not a valid envelope */
	MLC_TOO_LARGE,			/* result over max_value_size, not stored */
	MLC_L1_EVICTION,
	MLC_L2_ERROR,
	MLC_BREAKER_OPENED,
	MLC_INVALIDATION,		/* generation bumps applied at commit */
	MLC_SETS,
	MLC_HYGIENE_QUEUED,		/* keys and patterns queued for Redis removal */
	MLC_HYGIENE_DROPPED,	/* could not be queued or delivered: left to TTL */
	MLC_HYGIENE_DONE,		/* delivered to Redis (UNLINK or SCAN + UNLINK) */
	MLC_HYGIENE_RETRIES,	/* delivery attempts that failed and were retried */
	MLC_REDIS_UNLINKED,		/* keys Redis reported removed */
	MLC_FILL_WAIT,			/* misses that waited for another backend's fill */
	MLC_FILL_WAIT_TIMEOUT,	/* ... and gave up after fill_wait_timeout */
	MLC_STALE_SERVED,		/* stale values served (opt-in max_stale) */
	MLC_XFETCH_EARLY,		/* early recomputations chosen by XFetch */
	MLC_RLS_UNCACHED,		/* computed under row-level security: not stored */
	MLC_LEASE_REJECTED,		/* value of a transaction not (yet) committed: not served */
	MLC_NCOUNTERS
} MlcacheCounter;

extern Size mlcache_stats_shmem_size(void);
extern void mlcache_stats_shmem_startup(void);
extern void mlcache_count(MlcacheCounter c);
extern void mlcache_count_n(MlcacheCounter c, uint64 n);
extern uint64 mlcache_counter_value(MlcacheCounter c);
extern void mlcache_stats_set_l1(int64 entries, int64 bytes);
extern void mlcache_stats_l1_totals(int64 *entries, int64 *bytes);
extern TimestampTz mlcache_stats_reset_at(void);
extern void mlcache_stats_record_compute(uint64 fingerprint, int64 us);
extern double mlcache_stats_compute_ms(uint64 fingerprint);

#endif
