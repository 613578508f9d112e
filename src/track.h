/*
 * track.h
 *	  Per-key hit tracking over 24 hours, in shared memory.
 */
#ifndef MLCACHE_TRACK_H
#define MLCACHE_TRACK_H

#include "keys.h"

extern Size mlcache_track_shmem_size(void);
extern void mlcache_track_shmem_request(void);
extern void mlcache_track_shmem_startup(void);
extern void mlcache_track_init(void);
extern void mlcache_track(const MlcacheKey *k, uint64 hash, bool hit);

#endif
