/*
 * refresher.h
 *	  L3 refreshers: started by the main worker, one per database.
 */
#ifndef MLCACHE_REFRESHER_H
#define MLCACHE_REFRESHER_H

extern void mlcache_refresher_launch(void);
extern void mlcache_refresher_totals(int *nviews, int64 *refreshes);

#endif
