/*
 * compute.h
 *	  Running a cache query through SPI and turning its result into jsonb.
 */
#ifndef MLCACHE_COMPUTE_H
#define MLCACHE_COMPUTE_H

#include "utils/jsonb.h"

extern Jsonb *mlcache_compute(const char *query, int64 *compute_us);

#endif
