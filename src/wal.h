/*
 * wal.h
 *	  Invalidations in the WAL, for hot standbys: mlcache's custom resource
 *	  manager, the in-doubt table a standby keeps, and the state records that
 *	  tell a standby whether the primary logs invalidations.
 */
#ifndef MLCACHE_WAL_H
#define MLCACHE_WAL_H

#include "access/transam.h"

#include "keys.h"

/* What health() shows about standby invalidation. */
typedef struct MlcacheWalStatus
{
	bool		in_recovery;
	bool		logging;		/* primary: transactions log their slots */
	uint64		records_written;	/* primary: invalidation records */
	int			walsenders;		/* primary: connected WAL senders */
	int			inactive_slots;	/* primary: physical slots nobody uses */
	const char *state;			/* standby: "on", "off" or "unknown" */
	bool		waiting;		/* standby: a barrier holds caching off */
	int			in_doubt;		/* standby: unresolved transactions */
	uint64		records_replayed;	/* standby: invalidation records */
	uint64		resolved_committed;
	uint64		resolved_aborted;
	uint64		overflows;
} MlcacheWalStatus;

extern void mlcache_wal_register(void);
extern Size mlcache_wal_shmem_size(void);
extern void mlcache_wal_shmem_request(void);
extern void mlcache_wal_shmem_startup(void);

/* Primary side. */
extern bool mlcache_wal_wanted(void);
extern bool mlcache_wal_log_invalidations(TransactionId xid, const uint64 *hashes, int n);
extern void mlcache_wal_worker_tick(void);

/* Standby side (and after promotion). */
extern void mlcache_wal_resolve(void);
extern const char *mlcache_wal_bypass_reason(void);
extern bool mlcache_wal_may_store(const MlcacheKey *k);

extern void mlcache_wal_status(MlcacheWalStatus *st);

#endif
