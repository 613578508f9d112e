/*
 * shmem.h
 *	  The shared-memory segment: epoch, generation counters, breaker state.
 */
#ifndef MLCACHE_SHMEM_H
#define MLCACHE_SHMEM_H

#include "port/atomics.h"
#include "storage/lwlock.h"

#include "envelope.h"

/* Slot 0 of the generation table is never used by a hash (see gen_slot). */
typedef struct MlcacheShared
{
	LWLock	   *lock;			/* see locking rules in shmem.c */
	uint64		epoch;			/* random, new at every shmem initialisation */
	bool		secret_ok;		/* secret holds the cluster secret; else L2 is off */
	uint8		secret[MLCACHE_SECRET_LEN];	/* keys the envelope MAC (secret.c) */
	uint32		slot_mask;		/* number of generation slots - 1 */
	pg_atomic_uint64 breaker_until; /* Redis skipped until this time (us) */
	pg_atomic_uint64 breaker_backoff;	/* current backoff in ms, 0 = closed */
	pg_atomic_uint64 gens[FLEXIBLE_ARRAY_MEMBER];
} MlcacheShared;

extern MlcacheShared *mlcache_shared;

/* A part with shared state of its own (see mlcache_shmem_init). */
typedef struct MlcacheShmemPart
{
	Size		(*size) (void);	/* bytes it needs */
	void		(*request) (void);	/* more requests (tranches), or NULL */
	void		(*startup) (void);	/* attach; AddinShmemInitLock held */
} MlcacheShmemPart;

extern void mlcache_shmem_init(const MlcacheShmemPart *parts, int nparts);
extern void mlcache_require_loaded(void);

#endif
