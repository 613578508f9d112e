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
extern void mlcache_worker_enqueue_hygiene(const char *channel, const char *text, bool is_pattern,
										   bool scan, TimestampTz committed);
extern int	mlcache_worker_queue_length(void);
extern bool mlcache_worker_alive(void);

#endif
