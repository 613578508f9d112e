/*
 * worker.h
 *	  The background worker: starts L3 refreshers and does Redis hygiene.
 */
#ifndef MLCACHE_WORKER_H
#define MLCACHE_WORKER_H

extern void mlcache_worker_register(void);

#endif
