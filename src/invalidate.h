/*
 * invalidate.h
 *	  Transactional invalidation: targets collected during a transaction and
 *	  applied to the generation counters when it commits.
 */
#ifndef MLCACHE_INVALIDATE_H
#define MLCACHE_INVALIDATE_H

#include "keys.h"

extern void mlcache_inval_init(void);
extern bool mlcache_inval_add(const MlcacheTarget *t, bool scan);
extern bool mlcache_inval_touches(const MlcacheKey *k);
extern bool mlcache_inval_slot_pending(uint32 slot);
extern int	mlcache_inval_pending_count(void);
extern void mlcache_inval_views(Oid viewid);
extern void mlcache_inval_refuse_prepare(void);

#endif
