/*
 * hygiene.h
 *	  Redis hygiene: the shared queue of invalidated keys and patterns that
 *	  the worker removes from Redis after commit and publishes.
 */
#ifndef MLCACHE_HYGIENE_H
#define MLCACHE_HYGIENE_H

#include "datatype/timestamp.h"
#include "utils/resowner.h"

/* Longest text a hygiene record carries (a key, a prefix or a Redis name). */
#define MLCACHE_HYGIENE_MAX_TEXT 1024
/* Kind of a record that carries a ready Redis name (besides MLCACHE_TARGET_*). */
#define MLCACHE_HYGIENE_RNAME	'R'

extern Size mlcache_hygiene_shmem_size(void);
extern void mlcache_hygiene_shmem_startup(void);
extern void mlcache_hygiene_enqueue(char kind, const char *ns, int nslen,
									const char *text, int len, bool scan,
									TimestampTz committed);
extern int	mlcache_hygiene_queue_length(void);
extern int	mlcache_hygiene_scans_waiting(void);
extern int64 mlcache_hygiene_scan_restarts(void);
extern bool mlcache_hygiene_worker_alive(void);

/* The worker's side (worker.c). */

/* First block kept by the worker's per-batch and per-iteration contexts. */
#define MLCACHE_WORKER_KEPT_BLOCK (256 * 1024)

extern void mlcache_hygiene_attach(void);
extern long mlcache_hygiene_timeout(void);
extern void mlcache_hygiene_reloaded(void);
extern void mlcache_hygiene_work(MemoryContext loop_cxt, ResourceOwner owner);

#endif
