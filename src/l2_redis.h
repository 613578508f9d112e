/*
 * l2_redis.h
 *	  L2: Redis through hiredis, with timeouts and a shared circuit breaker.
 *	  Nothing here ever raises an ERROR because of Redis.
 */
#ifndef MLCACHE_L2_REDIS_H
#define MLCACHE_L2_REDIS_H

#include "datatype/timestamp.h"

typedef enum MlcacheL2Result
{
	L2_OK,						/* command done (GET: value found) */
	L2_MISS,					/* GET: no usable value */
	L2_SKIPPED,					/* breaker open: Redis not tried */
	L2_FAILED					/* Redis error; counted and reported */
} MlcacheL2Result;

/*
 * One command of a pipeline (see mlcache_l2_cmd_init); result receives an
 * integer reply.  argvlen[i] 0 means argv[i] is NUL-terminated.
 */
typedef struct MlcacheL2Cmd
{
	int			argc;
	const char **argv;
	size_t	   *argvlen;
	long long	result;
} MlcacheL2Cmd;

/* A Redis name prefix whose values computed before `before` are removed. */
typedef struct MlcacheL2Prefix
{
	const char *text;
	int			len;
	TimestampTz before;
} MlcacheL2Prefix;

/* Room for a SCAN cursor as text, with its terminator. */
#define MLCACHE_L2_CURSOR_LEN 32

/*
 * Where a SCAN resumes.  Redis's cursor means something only to the server
 * process that returned it (its hash tables are seeded per process), so it
 * is kept with the connection it came from; a page read on another
 * connection (a reconnect, a restarted Redis, a new master) starts the
 * SCAN over, and counts in restarts.
 */
typedef struct MlcacheL2Cursor
{
	char		pos[MLCACHE_L2_CURSOR_LEN];	/* "0": from the start */
	uint64		conn;			/* the connection it came from */
	int			restarts;
} MlcacheL2Cursor;

extern void mlcache_l2_cursor_init(MlcacheL2Cursor *cursor);

/* Redis keys per EVAL of the clean-up scripts. */
#define MLCACHE_L2_KEYS_PER_EVAL 512

extern MlcacheL2Result mlcache_l2_pipeline(MlcacheL2Cmd *cmds, int n);
extern MlcacheL2Result mlcache_l2_get(const char *rkey, int rkeylen, char **val, Size *vlen);
extern MlcacheL2Result mlcache_l2_set(const char *rkey, int rkeylen,
									  const char *val, Size vlen, int64 ttl_ms);
extern void mlcache_l2_cmd_init(MlcacheL2Cmd *c, int argc);
extern void mlcache_l2_cmd_unlink_older(MlcacheL2Cmd *c, const char *const *keys,
										const char *const *befores, int n);
extern MlcacheL2Result mlcache_l2_clean_orphans(const char *match, uint64 epoch,
												const char *skip, int64 *removed);
extern MlcacheL2Result mlcache_l2_scan_unlink_prefixes(const char *match, MlcacheL2Prefix *prefixes,
													   int np, MlcacheL2Cursor *cursor, int max_pages,
													   int64 *removed);
extern MlcacheL2Result mlcache_l2_ping(double *rtt_ms);
extern bool mlcache_l2_breaker_open(void);
extern MlcacheL2Result mlcache_l2_pttl(const char *rkey, int rkeylen, int64 *ttl_ms);
extern const char *mlcache_l2_breaker_state(void);
extern MlcacheL2Result mlcache_l2_used_memory(int64 *bytes);
extern MlcacheL2Result mlcache_l2_count_keys(const char *match, int max_steps, int64 *count,
											 bool *exact);
extern void mlcache_l2_disconnect(void);

#endif
