/*
 * shmem.c
 *	  Shared-memory set-up for mlcache, in the way pg_stat_statements does it.
 *
 * Locking rules:
 *	- gens[] and the breaker fields are only touched with atomic operations;
 *	  no lock is ever held across I/O, and the commit path takes no lock.
 *	- mlcache_shared->lock protects the statistics baseline (stats.c) and the
 *	  hygiene queue (worker.c); each of those files says how it uses it.
 *	- epoch, slot_mask and the secret are written once, under
 *	  AddinShmemInitLock, before any backend can read them.
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
