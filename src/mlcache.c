/*
 * mlcache.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init, which only calls the
 *	  init function of each part.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "guc.h"
#include "compute.h"
#include "invalidate.h"
#include "security.h"
#include "shmem.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Without shared_preload_libraries there is no shared memory for the
 * generation counters; the functions then refuse to run (see
 * mlcache_require_loaded), so nothing else is set up.
 */
void
_PG_init(void)
{
	mlcache_guc_init();
	if (!process_shared_preload_libraries_in_progress)
		return;
	mlcache_shmem_init();
	mlcache_inval_init();
	mlcache_security_init();
	mlcache_compute_init();
	mlcache_worker_register();
}
