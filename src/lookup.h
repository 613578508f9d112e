/*
 * lookup.h
 *	  The read path (L1 -> L2 -> compute) and set().
 */
#ifndef MLCACHE_LOOKUP_H
#define MLCACHE_LOOKUP_H

extern void mlcache_lookup_flush_sets(void);
extern void mlcache_lookup_reset_sets(void);
extern void mlcache_lookup_discard_sets(int level);
extern void mlcache_lookup_promote_sets(int level);
extern int	mlcache_lookup_pending_sets(void);

#endif
