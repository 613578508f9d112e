/*
 * worker.h
 *	  The background worker and the shared queue of Redis hygiene work.
 */
#ifndef MLCACHE_WORKER_H
#define MLCACHE_WORKER_H

#include "datatype/timestamp.h"

extern Size mlcache_worker_shmem_size(void);
extern void mlcache_worker_shmem_startup(void);
extern void mlcache_worker_register(void);
/* Longest text a hygiene record carries (a key, a prefix or a Redis name). */
#define MLCACHE_HYGIENE_MAX_TEXT 1024
/* Kind of a record that carries a ready Redis name (besides MLCACHE_TARGET_*). */
#define MLCACHE_HYGIENE_RNAME	'R'

extern void mlcache_worker_enqueue_hygiene(char kind, const char *ns, int nslen,
										   const char *text, int len, bool scan,
										   TimestampTz committed);
extern int	mlcache_worker_queue_length(void);
extern bool mlcache_worker_alive(void);

#endif
