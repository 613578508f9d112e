/*
 * worker.c
 *	  mlcache's background worker: one per server, with no database.  Every
 *	  iteration it starts the L3 refreshers that are due (l3.c), does the
 *	  Redis hygiene work (hygiene.c) and tells hot standbys whether
 *	  invalidations are logged (wal.c).
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"

#include "hygiene.h"
#include "refresher.h"
#include "wal.h"
#include "worker.h"

PGDLLEXPORT void mlcache_worker_main(Datum arg);

/*
 * The worker's main loop.  Hygiene holds the current batch across
 * iterations while Redis fails, retrying with exponential backoff;
 * everything else is allocated in a context reset every iteration.
 */
void
mlcache_worker_main(Datum arg)
{
	MemoryContext loop_cxt;
	ResourceOwner owner;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGPIPE, SIG_IGN);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("mlcache worker");
	/*
	 * SHA-256 of long keys (mlcache_redis_name) registers with a resource
	 * owner.  The transactions the L3 code runs here leave
	 * CurrentResourceOwner NULL when they end, so it is set before every
	 * drain.
	 */
	owner = ResourceOwnerCreate(NULL, "mlcache worker");

	mlcache_hygiene_attach();
	/* Its kept first block holds a batch's Redis commands (see hygiene.c). */
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "mlcache worker loop",
									 MLCACHE_WORKER_KEPT_BLOCK, MLCACHE_WORKER_KEPT_BLOCK,
									 ALLOCSET_DEFAULT_MAXSIZE);

	while (!ShutdownRequestPending)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 mlcache_hygiene_timeout(), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			mlcache_hygiene_reloaded();
		}
		MemoryContextReset(loop_cxt);
		mlcache_wal_worker_tick();
		mlcache_refresher_launch();
		mlcache_hygiene_work(loop_cxt, owner);
	}
	proc_exit(0);
}

/* Register the worker; called from _PG_init while preloading. */
void
mlcache_worker_register(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	strlcpy(bgw.bgw_library_name, "mlcache", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "mlcache_worker_main", BGW_MAXLEN);
	strlcpy(bgw.bgw_name, "mlcache worker", BGW_MAXLEN);
	strlcpy(bgw.bgw_type, "mlcache worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&bgw);
}
