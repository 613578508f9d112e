/*
 * l3.h
 *	  L3: materialized views in front of the definitions' queries, refreshed
 *	  off the write path by background workers.
 */
#ifndef MLCACHE_L3_H
#define MLCACHE_L3_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "utils/jsonb.h"

/* A definition's L3 source, as loaded into a backend. */
typedef struct MlcacheL3
{
	Oid			view;			/* InvalidOid: none */
	int			ncols;
	char	  **cols;			/* view columns matching the parameters */
	char	   *value_col;		/* jsonb column holding the value */
	SPIPlanPtr	plan;			/* the lookup, prepared on first use */
} MlcacheL3;

extern Size mlcache_l3_shmem_size(void);
extern void mlcache_l3_shmem_startup(void);
extern void mlcache_l3_load(MlcacheL3 *l3, HeapTuple tup, TupleDesc desc, int firstcol,
							MemoryContext cxt);
extern void mlcache_l3_unload(MlcacheL3 *l3);
extern bool mlcache_l3_configured(const MlcacheL3 *l3);
extern Jsonb *mlcache_l3_read(MlcacheL3 *l3, Datum *values, const char *nulls,
							  int nparams, Oid *types);

#endif
