/*
 * warm.h
 *	  Warm queries, run as their definition's owner, and draining the
 *	  durable warming queue (mlcache.warm_queue) off the request path, in
 *	  the per-database background worker.
 */
#ifndef MLCACHE_WARM_H
#define MLCACHE_WARM_H

extern bool mlcache_warm_drain_one(bool *waiting);
extern void mlcache_warm_check_query(const char *name, Oid owner, const char *search_path,
									 const char *query, int nparams);

#endif
