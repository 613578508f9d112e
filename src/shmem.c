/*
 * shmem.c
 *	  Shared-memory set-up for mlcache, in the way pg_stat_statements does
 *	  it, and the one table of every lock that guards mlcache's shared state.
 *
 * The segment "mlcache" (MlcacheShared) holds the epoch, the cluster secret,
 * the Redis breaker and the generation table.  The parts with shared state
 * of their own (stats.c, hygiene.c, l3.c, track.c) are passed in by
 * _PG_init (mlcache.c), so this file depends on none of them.
 *
 * Locks and what they protect
 * ---------------------------
 *  lock (kind)                    protects                       taken by
 *  AddinShmemInitLock (LWLock,    creating every struct below;   mlcache_shmem_startup (whole
 *    PostgreSQL's)                epoch, slot_mask, secret_ok,   start-up of every part), once
 *                                 secret: written once, before   per process; the secret file is
 *                                 any backend reads them         read under it (secret.c)
 *  mlcache_shared->lock (LWLock,  stats baseline and reset_time  stats.c: reset_stats (excl.),
 *    tranche "mlcache")           (MlcacheStatsShared); L3's     counter_value, stats_reset_at
 *                                 table (L3Shared: views[],      (shared); l3.c: l3_register
 *                                 refresher[], refresher_db[],   (excl.), l3_is_fresh (shared);
 *                                 warm_db[]; l3_shared.h)        refresher.c: every function that
 *                                                                reads (shared) or writes (excl.)
 *                                                                the table
 *  track_shared->lock (LWLock,    the tracking hash table:       track.c: track_flush_one (shared;
 *    tranche "mlcache tracking")  entries' existence and keys    exclusive to insert), lookup
 *                                                                (shared), evict, tracking_sweep
 *                                                                (excl.)
 *  TrackEntry.mutex (spinlock)    one tracked key's buckets      track.c: track_add, track_lookup,
 *                                 (hour[], hits[], misses[])     under track_shared->lock; holders
 *                                                                of that lock in exclusive mode
 *                                                                (track_evict, tracking_sweep)
 *                                                                read buckets without it
 *  ring->mutex (spinlock)         the hygiene ring: head, tail,  hygiene.c: enqueue (commit path),
 *                                 used, records, data[];         queue_length, scans_waiting,
 *                                 waiting (records whose SCAN    scan_restarts, hygiene_drain,
 *                                 waits in the worker), held     hygiene_counts, hygiene_clear_held,
 *                                 (taken, not delivered),        hygiene_scan_recount,
 *                                 scan_restarts                  hygiene_count_restarts,
 *                                                                hygiene_clear_pid
 *  atomics, no lock               gens[] (bumped at commit by    invalidate.c: inval_apply
 *                                 fetch_add, read anywhere);     (fetch_add); keys.c, fetch.c,
 *                                 breaker_until/backoff (CAS:    l3.c, l3_dirty.c (reads);
 *                                 one opener, one closer);       l2_redis.c: l2_failure,
 *                                 counter rows (one writer per   l2_success (CAS), breaker_open,
 *                                 row; row 0 by fetch_add);      breaker_state (reads); stats.c:
 *                                 compute_stats (slot claimed    count_n, record_compute,
 *                                 by CAS); track hour_offset     set_l1; track.c: track_hour,
 *                                                                tracking_advance
 *  no lock (single writer)        ring->worker_latch and         written by the worker
 *                                 worker_pid                     (hygiene.c); read by committing
 *                                                                backends: a stale value only
 *                                                                delays a wake-up
 *  advisory lock, field 4 = 3     single flight (G7): one        lookup.c: lookup_fill_turn and
 *    (heavyweight, ExclusiveLock  backend computes a key's       the stale path of lookup_read
 *    on the key's 64-bit hash,    missing or stale value while   (conditional); lookup_wait_fill
 *    session lock: no)            the others wait for it         (a bounded wait, released at
 *                                                                once); the filler releases it
 *                                                                after storing the value
 *                                                                (mlcache_lookup_read)
 *  XactTruncationLock (LWLock,    the clog range a lease's xid   lookup.c: lookup_lease_valid
 *    PostgreSQL's)                is looked up in                (shared), no other lock held
 *  wal->lock (LWLock, tranche     standby invalidation: the      wal.c: redo (startup process),
 *    "mlcache standby")           in-doubt table, its slot       resolvers, rmgr start-up and
 *                                 pool and the barrier xid       clean-up (excl.); may_store,
 *                                 (wal.c has the rules)          status (shared); no other lock
 *                                                                held, xid look-ups done outside
 *  sentinel_shared->mutex         the Redis master the           sentinel.c: mlcache_sentinel_
 *    (spinlock)                   sentinels named: address,      master, _forget, _state,
 *                                 confirmation, times, the       sentinel_store; held only to
 *                                 preferred sentinel             copy, no other lock taken; the
 *                                                                version is an atomic, read
 *                                                                without it
 *
 * Order.  At most one mlcache LWLock is held at a time, with one exception:
 * track_shared->lock, then a TrackEntry.mutex inside it.  No spinlock is
 * held while taking any other lock.  The advisory fill lock is a
 * heavyweight lock, taken with no LWLock held; while it is held the backend
 * computes and stores, taking (and releasing) the LWLocks and spinlocks
 * above as any read does.  No mlcache lock is held across I/O (Redis,
 * SPI, catalog access) or an ereport, except AddinShmemInitLock at start-up
 * (the secret file), and the commit path (inval_apply, the hygiene
 * enqueue) takes only ring->mutex.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "envelope.h"
#include "guc.h"
#include "secret.h"
#include "shmem.h"

MlcacheShared *mlcache_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The parts with shared state of their own, in request and start-up order. */
static const MlcacheShmemPart *shmem_parts = NULL;
static int	shmem_nparts = 0;

static Size
gens_size(void)
{
	return add_size(offsetof(MlcacheShared, gens),
					mul_size(mlcache_generation_slots, sizeof(pg_atomic_uint64)));
}

static void
mlcache_shmem_request(void)
{
	int			i;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(gens_size());
	for (i = 0; i < shmem_nparts; i++)
		RequestAddinShmemSpace(shmem_parts[i].size());
	for (i = 0; i < shmem_nparts; i++)
		if (shmem_parts[i].request)
			shmem_parts[i].request();
	RequestNamedLWLockTranche("mlcache", 1);
}

/*
 * Pick a new random epoch.  Every Redis envelope carries it, so values written
 * before this initialisation (an older server life, when generations started
 * from zero again) can never be mistaken for current ones.
 */
static uint64
new_epoch(void)
{
	uint64		epoch = 0;

	if (!pg_strong_random(&epoch, sizeof(epoch)))
		epoch = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	return epoch == 0 ? 1 : epoch;
}

static void
mlcache_shmem_startup(void)
{
	bool		found;
	uint32		i;
	int			p;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	mlcache_shared = ShmemInitStruct("mlcache", gens_size(), &found);
	if (!found)
	{
		mlcache_shared->lock = &(GetNamedLWLockTranche("mlcache"))->lock;
		mlcache_shared->epoch = new_epoch();
		mlcache_shared->slot_mask = (uint32) mlcache_generation_slots - 1;
		mlcache_shared->secret_ok = mlcache_secret_load(mlcache_shared->secret);
		pg_atomic_init_u64(&mlcache_shared->breaker_until, 0);
		pg_atomic_init_u64(&mlcache_shared->breaker_backoff, 0);
		for (i = 0; i < (uint32) mlcache_generation_slots; i++)
			pg_atomic_init_u64(&mlcache_shared->gens[i], 0);
	}
	mlcache_envelope_set_secret(mlcache_shared->secret_ok ? mlcache_shared->secret : NULL);
	for (p = 0; p < shmem_nparts; p++)
		shmem_parts[p].startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Install the shared-memory hooks; only valid while preloading.  parts (a
 * static array of the caller's) lists the parts with shared state of their
 * own: each one's size is requested after the generation table, and each
 * one's start-up runs, in this order, under AddinShmemInitLock after the
 * segment is set up.  Passing them in keeps shmem.c below every part.
 */
void
mlcache_shmem_init(const MlcacheShmemPart *parts, int nparts)
{
	shmem_parts = parts;
	shmem_nparts = nparts;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = mlcache_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = mlcache_shmem_startup;
}

/*
 * Every SQL entry point calls this first: without shared_preload_libraries
 * there is no generation table, so no read could be proved fresh.
 */
void
mlcache_require_loaded(void)
{
	if (mlcache_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("mlcache must be loaded via shared_preload_libraries"),
				 errhint("Add mlcache to shared_preload_libraries in postgresql.conf and restart the server.")));
}

PG_FUNCTION_INFO_V1(mlcache_require_loaded_sql);

/* mlcache._require_loaded(): the same check, for the SQL-language functions. */
Datum
mlcache_require_loaded_sql(PG_FUNCTION_ARGS)
{
	mlcache_require_loaded();
	PG_RETURN_VOID();
}
