/*
 * mlcache.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init, which only calls the
 *	  init function of each part.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "compute.h"
#include "guc.h"
#include "hygiene.h"
#include "invalidate.h"
#include "l1.h"
#include "l3.h"
#include "lookup.h"
#include "security.h"
#include "sentinel.h"
#include "shmem.h"
#include "stats.h"
#include "track.h"
#include "wal.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* The parts with shared state of their own, in request and start-up order. */
static const MlcacheShmemPart mlcache_parts[] = {
	{mlcache_stats_shmem_size, NULL, mlcache_stats_shmem_startup},
	{mlcache_hygiene_shmem_size, NULL, mlcache_hygiene_shmem_startup},
	{mlcache_l3_shmem_size, NULL, mlcache_l3_shmem_startup},
	{mlcache_track_shmem_size, mlcache_track_shmem_request, mlcache_track_shmem_startup},
	{mlcache_wal_shmem_size, mlcache_wal_shmem_request, mlcache_wal_shmem_startup},
	{mlcache_sentinel_shmem_size, NULL, mlcache_sentinel_shmem_startup},
};

/*
 * Without shared_preload_libraries there is no shared memory for the
 * generation counters; the functions then refuse to run (see
 * mlcache_require_loaded), so nothing else is set up.
 */
void
_PG_init(void)
{
	mlcache_guc_init();
	mlcache_l1_init();
	if (!process_shared_preload_libraries_in_progress)
		return;
	mlcache_shmem_init(mlcache_parts, lengthof(mlcache_parts));
	mlcache_wal_register();
	/* Before mlcache_inval_init: see lookup.c's lookup_xact_callback. */
	mlcache_lookup_init();
	mlcache_track_init();
	mlcache_inval_init();
	mlcache_security_init();
	mlcache_compute_init();
	mlcache_worker_register();
}
