/*
 * compute.h
 *	  Running a cache query through SPI and turning its result into jsonb.
 */
#ifndef MLCACHE_COMPUTE_H
#define MLCACHE_COMPUTE_H

#include "utils/jsonb.h"

#include "executor/spi.h"

extern void mlcache_compute_init(void);
extern bool mlcache_rls_watch_begin(void);
extern bool mlcache_rls_watch_end(bool outer_seen);
extern Jsonb *mlcache_compute(const char *query, int64 *compute_us);
extern SPIPlanPtr mlcache_compute_prepare(const char *query, int nparams, Oid *types);
extern Jsonb *mlcache_compute_plan(SPIPlanPtr plan, Datum *values, const char *nulls,
								   int64 *compute_us);
extern ErrorData *mlcache_subxact(void (*fn) (void *), void *arg);

#endif
