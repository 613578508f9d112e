/*
 * l3_dirty.h
 *	  Marking the materialized views a watched table feeds dirty.
 */
#ifndef MLCACHE_L3_DIRTY_H
#define MLCACHE_L3_DIRTY_H

extern void mlcache_l3_mark_dirty(Oid relid);

#endif
