/*
 * warm.h
 *	  Draining the durable warming queue (mlcache.warm_queue) off the
 *	  request path, in the per-database background worker.
 */
#ifndef MLCACHE_WARM_H
#define MLCACHE_WARM_H

extern bool mlcache_warm_drain_one(bool *waiting);

#endif
