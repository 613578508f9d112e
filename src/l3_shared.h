/*
 * l3_shared.h
 *	  L3's shared table of registered views and refresher slots, shared by
 *	  the read side (l3.c) and the refreshers (refresher.c) only.
 *
 * Locking rules (see also the table in shmem.c):
 *	- L3Shared (views[], refresher[], refresher_db[], warm_db[]) is protected
 *	  by mlcache_shared->lock: LW_SHARED to read, LW_EXCLUSIVE to write.
 *	- While it is held, only plain reads and writes of L3Shared, atomic reads
 *	  of the generation table and kill(pid, 0) run: no catalog or syscache
 *	  access, no SPI, no palloc, nothing that can ereport.
 *	- No pointer to an entry is kept after the lock is released.
 */
#ifndef MLCACHE_L3_SHARED_H
#define MLCACHE_L3_SHARED_H

#include "datatype/timestamp.h"

#define L3_MAX_VIEWS	256
#define L3_MAX_DBS		16
#define L3_ERROR_LEN	256
#define L3_IDLE_EXIT_MS 500	/* a refresher with nothing to do exits (DROP DATABASE waits 5 s for it) */

typedef enum L3State
{
	L3_UNKNOWN = 'u',			/* not refreshed since the server started */
	L3_FRESH = 'f',
	L3_REFRESHING = 'r',
	L3_FAILED = 'e'
} L3State;

typedef struct L3Entry
{
	Oid			dbid;			/* InvalidOid: free */
	Oid			viewid;
	char		state;			/* L3State */
	bool		fresh_valid;
	uint64		fresh_token;
	TimestampTz dirty_since;	/* 0 while clean or not yet noticed */
	TimestampTz last_refresh;
	int64		last_duration_us;
	TimestampTz next_attempt;
	int			failures;
	int64		refreshes;
	bool		requested;		/* refresh_views() asked for a refresh */
	char		error[L3_ERROR_LEN];
} L3Entry;

typedef struct L3Shared
{
	pid_t		refresher[L3_MAX_DBS];	/* per database slot below */
	Oid			refresher_db[L3_MAX_DBS];
	Oid			warm_db[L3_MAX_DBS];	/* databases with warming queued */
	L3Entry		views[L3_MAX_VIEWS];
} L3Shared;

extern L3Shared *mlcache_l3_shared;

extern L3Entry *mlcache_l3_entry(Oid dbid, Oid viewid);
extern uint64 mlcache_l3_token(Oid dbid, Oid viewid);

#endif
