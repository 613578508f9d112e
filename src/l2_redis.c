/*
 * l2_redis.c
 *	  L2: the only file that talks to Redis.
 *
 * Rules (see DESIGN.md, G5 and G6):
 *	- Every call is bounded: connecting by mlcache.redis_connect_timeout, each
 *	  command by mlcache.redis_command_timeout (set with redisSetTimeout after
 *	  every connect).  A hiredis call cannot be interrupted, so these timeouts
 *	  are also the bound on query cancel and statement_timeout.
 *	- After a context error the context is dead: it is freed, and the shared
 *	  circuit breaker skips Redis in every backend for a backoff period that
 *	  doubles on each failed retry (up to 10 times the base interval);
 *	  failures while it is open change nothing.  The process that opens the
 *	  breaker emits the single WARNING for that opening.
 *	- A connection kept from before a Redis restart fails on its first use
 *	  (EOF, reset): that command is retried once on a new connection before
 *	  it counts as a failure, so a restart does not open the breaker.
 *	- Replies are copied into palloc'd memory and freed before anything that
 *	  can ereport.
 *	- The password is never part of any message.
 */
#include "postgres.h"

#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "l2_redis.h"
#include "shmem.h"
#include "stats.h"

static redisContext *l2_ctx = NULL;
static bool l2_ctx_used = false;	/* a command went through on l2_ctx */

/*
 * Remove each of KEYS unless it is an mlcache value computed at or after its
 * ARGV[i] (a TimestampTz; ARGV[1] for every key when there is only one): the
 * clean-up after a commit must not delete a value stored after that commit,
 * nor one that may still be served stale (its max_stale window reaches past
 * the commit).  Values that are not envelopes, or of another type, are
 * removed.  The offsets are those of computed_at and max_stale in
 * envelope.c.  Returns how many keys were removed.
 */
static const char *const l2_unlink_older_script =
"local n = 0 "
"for i, k in ipairs(KEYS) do "
"  local t = tonumber(ARGV[i] or ARGV[1]) "
"  local ok, v = pcall(redis.call, 'GET', k) "
"  local keep = ok and not v "
"  if ok and v and #v >= 84 and string.sub(v, 1, 4) == 'MLC\\3' then "
"    local computed = struct.unpack('<i8', v, 41) "
"    local stale = struct.unpack('<I4', v, 69) "
"    keep = computed >= t or computed + stale * 1000000 > t "
"  end "
"  if not keep then n = n + redis.call('UNLINK', k) end "
"end "
"return n";
static uint64 l2_ctx_version = 0;

static struct timeval
ms_to_timeval(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

void
mlcache_l2_disconnect(void)
{
	if (l2_ctx != NULL)
		redisFree(l2_ctx);
	l2_ctx = NULL;
}

/* True while the breaker tells every backend to skip Redis. */
bool
mlcache_l2_breaker_open(void)
{
	uint64		until = pg_atomic_read_u64(&mlcache_shared->breaker_until);

	return until != 0 && (uint64) GetCurrentTimestamp() < until;
}

/*
 * Record a failure: drop the connection, count it and open (or keep open) the
 * breaker.  what says which step failed; detail is hiredis' text.
 */
static void
l2_failure(const char *what, const char *detail)
{
	uint64		backoff = pg_atomic_read_u64(&mlcache_shared->breaker_backoff);
	uint64		max_backoff = (uint64) mlcache_redis_retry_interval * 10;
	uint64		old_until = pg_atomic_read_u64(&mlcache_shared->breaker_until);
	uint64		until;

	uint64		now = (uint64) GetCurrentTimestamp();

	mlcache_l2_disconnect();
	mlcache_count(MLC_L2_ERROR);

	/*
	 * Sessions that fail together (one outage seen by several backends at
	 * once) open the breaker once: while it is open a failure changes
	 * nothing.  The backoff doubles only when a retry after the backoff
	 * period fails again.
	 */
	if (old_until != 0 && now < old_until)
		return;
	backoff = (backoff == 0 || old_until == 0) ? (uint64) mlcache_redis_retry_interval :
		Min(backoff * 2, max_backoff);
	pg_atomic_write_u64(&mlcache_shared->breaker_backoff, backoff);
	until = now + backoff * 1000;
	if (pg_atomic_compare_exchange_u64(&mlcache_shared->breaker_until, &old_until, until) &&
		old_until == 0)
	{
		mlcache_count(MLC_BREAKER_OPENED);
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("mlcache could not %s Redis: %s", what, detail),
				 errdetail("Redis is skipped for %d ms; reads are computed meanwhile, and results stay correct.",
						   (int) backoff)));
	}
}

/* A command went through: close the breaker if it was open. */
static void
l2_success(void)
{
	uint64		old_until = pg_atomic_read_u64(&mlcache_shared->breaker_until);

	if (old_until == 0)
		return;
	if (pg_atomic_compare_exchange_u64(&mlcache_shared->breaker_until, &old_until, 0))
	{
		pg_atomic_write_u64(&mlcache_shared->breaker_backoff, 0);
		ereport(LOG, (errmsg("mlcache reached Redis again")));
	}
}

/* Send a command on a fresh connection during set-up; true if it succeeded. */
static bool
l2_setup_command(redisContext *c, const char *what, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	bool		ok = (r != NULL && r->type != REDIS_REPLY_ERROR);

	if (r != NULL)
		freeReplyObject(r);
	if (!ok)
		l2_failure(what, c->err ? c->errstr : "the server refused the command");
	return ok;
}

/*
 * The connection to use now, or NULL (breaker open, or connecting failed and
 * was reported).  Reconnects when a connection setting changed.
 */
static redisContext *
l2_connection(void)
{
	redisContext *c;
	char		dbnum[16];

	if (mlcache_l2_breaker_open())
		return NULL;
	if (l2_ctx != NULL && l2_ctx_version == mlcache_redis_config_version)
		return l2_ctx;
	mlcache_l2_disconnect();

	if (mlcache_redis_socket != NULL && mlcache_redis_socket[0] != '\0')
		c = redisConnectUnixWithTimeout(mlcache_redis_socket,
										ms_to_timeval(mlcache_redis_connect_timeout));
	else
		c = redisConnectWithTimeout(mlcache_redis_host, mlcache_redis_port,
									ms_to_timeval(mlcache_redis_connect_timeout));
	if (c == NULL || c->err)
	{
		char		detail[160];

		strlcpy(detail, c ? c->errstr : "out of memory", sizeof(detail));
		if (c)
			redisFree(c);
		l2_failure("connect to", detail);
		return NULL;
	}
	if (redisSetTimeout(c, ms_to_timeval(mlcache_redis_command_timeout)) != REDIS_OK)
	{
		redisFree(c);
		l2_failure("configure the connection to", "setting the command timeout failed");
		return NULL;
	}
	if (mlcache_redis_password != NULL && mlcache_redis_password[0] != '\0')
	{
		const char *argv[2] = {"AUTH", mlcache_redis_password};

		if (!l2_setup_command(c, "authenticate to", 2, argv))
		{
			redisFree(c);
			return NULL;
		}
	}
	if (mlcache_redis_database != 0)
	{
		const char *argv[2] = {"SELECT", dbnum};

		snprintf(dbnum, sizeof(dbnum), "%d", mlcache_redis_database);
		if (!l2_setup_command(c, "select the database on", 2, argv))
		{
			redisFree(c);
			return NULL;
		}
	}
	l2_ctx = c;
	l2_ctx_version = mlcache_redis_config_version;
	l2_ctx_used = false;
	return c;
}

/*
 * After a failed call on c: true if c was a kept connection that the server
 * closed (Redis restarted, CLIENT KILL, idle timeout), so one retry on a new
 * connection is worth it.  It is forgotten here; a timeout is not retried.
 */
static bool
l2_dropped_connection(redisContext *c, int saved_errno)
{
	bool		dropped;

	dropped = l2_ctx_used &&
		(c->err == REDIS_ERR_EOF ||
		 (c->err == REDIS_ERR_IO &&
		  (saved_errno == ECONNRESET || saved_errno == EPIPE || saved_errno == ENOTCONN)));
	if (dropped)
		mlcache_l2_disconnect();
	return dropped;
}

/*
 * Run one command.  Returns the reply (caller frees it) or NULL after a
 * connection-level failure, which has been reported.
 */
static redisReply *
l2_command(int argc, const char **argv, const size_t *argvlen, MlcacheL2Result *res)
{
	redisContext *c = l2_connection();
	redisReply *r;

	if (c == NULL)
	{
		*res = mlcache_l2_breaker_open() ? L2_SKIPPED : L2_FAILED;
		return NULL;
	}
	r = redisCommandArgv(c, argc, argv, argvlen);
	if (r == NULL && l2_dropped_connection(c, errno))
	{
		c = l2_connection();
		if (c == NULL)
		{
			*res = mlcache_l2_breaker_open() ? L2_SKIPPED : L2_FAILED;
			return NULL;
		}
		r = redisCommandArgv(c, argc, argv, argvlen);
	}
	if (r == NULL)
	{
		char		detail[160];

		strlcpy(detail, c->errstr, sizeof(detail));
		l2_failure("talk to", detail);
		*res = L2_FAILED;
		return NULL;
	}
	l2_ctx_used = true;
	l2_success();
	*res = L2_OK;
	return r;
}

/*
 * GET.  On L2_OK *val is a palloc'd copy of the value.  A value of another
 * Redis type under our key (WRONGTYPE) is a miss, not a failure.
 */
MlcacheL2Result
mlcache_l2_get(const char *rkey, int rkeylen, char **val, Size *vlen)
{
	const char *argv[2] = {"GET", rkey};
	size_t		argvlen[2] = {3, (size_t) rkeylen};
	MlcacheL2Result res;
	redisReply *r = l2_command(2, argv, argvlen, &res);

	if (r == NULL)
		return res;
	if (r->type == REDIS_REPLY_STRING)
	{
		*vlen = r->len;
		*val = palloc(r->len + 1);
		memcpy(*val, r->str, r->len);
		(*val)[r->len] = '\0';
		res = L2_OK;
	}
	else
	{
		if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) != 0)
			mlcache_count(MLC_L2_ERROR);
		else if (r->type != REDIS_REPLY_NIL)
			mlcache_count(MLC_DECODE_FAILED);
		res = L2_MISS;
	}
	freeReplyObject(r);
	return res;
}

/*
 * SET with a time to live in milliseconds.  An error reply (such as OOM under
 * maxmemory noeviction) is counted; the connection stays usable.
 */
MlcacheL2Result
mlcache_l2_set(const char *rkey, int rkeylen, const char *val, Size vlen, int64 ttl_ms)
{
	char		ttl[32];
	const char *argv[5] = {"SET", rkey, val, "PX", ttl};
	size_t		argvlen[5];
	MlcacheL2Result res;
	redisReply *r;

	snprintf(ttl, sizeof(ttl), INT64_FORMAT, Max(ttl_ms, 1));
	argvlen[0] = 3;
	argvlen[1] = rkeylen;
	argvlen[2] = vlen;
	argvlen[3] = 2;
	argvlen[4] = strlen(ttl);
	r = l2_command(5, argv, argvlen, &res);
	if (r == NULL)
		return res;
	if (r->type == REDIS_REPLY_ERROR)
	{
		mlcache_count(MLC_L2_ERROR);
		res = L2_FAILED;
	}
	freeReplyObject(r);
	return res;
}

/*
 * Run n commands pipelined: all are appended, then all replies read.  Each
 * command's integer reply, if any, goes to its result field.  Arguments are
 * NUL-terminated strings unless their argvlen is set.
 */
MlcacheL2Result
mlcache_l2_pipeline(MlcacheL2Cmd *cmds, int n)
{
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		redisContext *c = l2_connection();
		int			i;

		if (c == NULL)
			return mlcache_l2_breaker_open() ? L2_SKIPPED : L2_FAILED;
		for (i = 0; i < n; i++)
		{
			int			j;

			for (j = 0; j < cmds[i].argc; j++)
				if (cmds[i].argvlen[j] == 0)
					cmds[i].argvlen[j] = strlen(cmds[i].argv[j]);
			if (redisAppendCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].argvlen) != REDIS_OK)
			{
				l2_failure("send to", "could not queue a command");
				return L2_FAILED;
			}
		}
		for (i = 0; i < n; i++)
		{
			redisReply *r = NULL;

			if (redisGetReply(c, (void **) &r) != REDIS_OK || r == NULL)
				break;
			cmds[i].result = (r->type == REDIS_REPLY_INTEGER) ? r->integer : 0;
			if (r->type == REDIS_REPLY_ERROR)
				mlcache_count(MLC_L2_ERROR);
			freeReplyObject(r);
		}
		if (i == n)
			break;
		/* Every command is idempotent: a dropped kept connection is retried whole. */
		if (attempt == 0 && i == 0 && l2_dropped_connection(c, errno))
			continue;
		{
			char		detail[160];

			strlcpy(detail, c->errstr, sizeof(detail));
			l2_failure("talk to", detail);
			return L2_FAILED;
		}
	}
	l2_ctx_used = true;
	l2_success();
	return L2_OK;
}

/*
 * Remove each of KEYS unless it is an mlcache envelope of the epoch ARGV[1]
 * (8 bytes, as stored at offset 8): values of an older server life, or
 * foreign values, under our prefix.  Returns how many keys were removed.
 */
static const char *const l2_unlink_orphan_script =
"local n = 0 "
"for _, k in ipairs(KEYS) do "
"  local ok, v = pcall(redis.call, 'GET', k) "
"  local keep = ok and not v "
"  if ok and v and #v >= 84 and string.sub(v, 1, 3) == 'MLC' and string.sub(v, 9, 16) == ARGV[1] "
"  then keep = true end "
"  if not keep then n = n + redis.call('UNLINK', k) end "
"end "
"return n";

/*
 * Make c an EVAL of script on nkeys keys and nargs arguments.  A NULL
 * lengths array means NUL-terminated strings; the strings must outlive the
 * command.
 */
static void
l2_cmd_eval(MlcacheL2Cmd *c, const char *script,
			const char *const *keys, const size_t *keylens, int nkeys,
			const char *const *args, const size_t *arglens, int nargs)
{
	int			i;

	mlcache_l2_cmd_init(c, 3 + nkeys + nargs);
	c->argv[0] = "EVAL";
	c->argv[1] = script;
	c->argv[2] = psprintf("%d", nkeys);
	for (i = 0; i < nkeys; i++)
	{
		c->argv[3 + i] = keys[i];
		c->argvlen[3 + i] = keylens ? keylens[i] : 0;
	}
	for (i = 0; i < nargs; i++)
	{
		c->argv[3 + nkeys + i] = args[i];
		c->argvlen[3 + nkeys + i] = arglens ? arglens[i] : 0;
	}
}

/*
 * SCAN the keys matching match and run script (an EVAL with the keys as KEYS
 * and arg, arglen bytes, as ARGV[1]) on them, one EVAL per
 * MLCACHE_L2_KEYS_PER_EVAL keys of a SCAN batch, pipelined; *removed sums
 * the integer replies.  Each batch is built in a context of its own, reset
 * after it.  Off the commit path only.
 */
static MlcacheL2Result
l2_scan_eval(const char *match, const char *script, const char *arg, size_t arglen,
			 int64 *removed)
{
	char		cursor[32] = "0";
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "mlcache SCAN batch",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(batch_cxt);
	MlcacheL2Result res = L2_OK;

	*removed = 0;
	do
	{
		const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
		redisReply *r = l2_command(6, argv, NULL, &res);
		MlcacheL2Cmd *cmds;
		const char **keys;
		size_t	   *keylens;
		int			n,
					ncmds,
					i;

		if (r == NULL)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			r->element[0]->type != REDIS_REPLY_STRING ||
			r->element[1]->type != REDIS_REPLY_ARRAY)
		{
			freeReplyObject(r);
			mlcache_count(MLC_L2_ERROR);
			res = L2_FAILED;
			break;
		}
		strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		n = (int) r->element[1]->elements;
		keys = palloc(sizeof(char *) * Max(n, 1));
		keylens = palloc(sizeof(size_t) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			redisReply *e = r->element[1]->element[i];

			keys[i] = pnstrdup(e->str, e->len);
			keylens[i] = e->len;
		}
		freeReplyObject(r);
		ncmds = (n + MLCACHE_L2_KEYS_PER_EVAL - 1) / MLCACHE_L2_KEYS_PER_EVAL;
		cmds = palloc0(sizeof(MlcacheL2Cmd) * Max(ncmds, 1));
		for (i = 0; i < ncmds; i++)
		{
			int			first = i * MLCACHE_L2_KEYS_PER_EVAL;

			l2_cmd_eval(&cmds[i], script, keys + first, keylens + first,
						Min(n - first, MLCACHE_L2_KEYS_PER_EVAL), &arg, &arglen, 1);
		}
		if (ncmds > 0)
		{
			res = mlcache_l2_pipeline(cmds, ncmds);
			if (res != L2_OK)
				break;
			for (i = 0; i < ncmds; i++)
				*removed += cmds[i].result;
		}
		MemoryContextReset(batch_cxt);
	} while (strcmp(cursor, "0") != 0);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(batch_cxt);
	return res;
}

/*
 * SCAN keys matching match and remove the orphans among them (see
 * l2_unlink_orphan_script); epoch is the current one, 8 bytes.
 */
MlcacheL2Result
mlcache_l2_clean_orphans(const char *match, uint64 epoch, int64 *removed)
{
	char		ep[8];

	memcpy(ep, &epoch, 8);
	return l2_scan_eval(match, l2_unlink_orphan_script, ep, 8, removed);
}

/* Allocate c's argument arrays for argc arguments, zeroed. */
void
mlcache_l2_cmd_init(MlcacheL2Cmd *c, int argc)
{
	c->argc = argc;
	c->argv = palloc0(sizeof(const char *) * argc);
	c->argvlen = palloc0(sizeof(size_t) * argc);
	c->result = 0;
}

/*
 * Make c the conditional UNLINK of n keys (at most MLCACHE_L2_KEYS_PER_EVAL),
 * each unless computed at or after its befores[i] (see
 * l2_unlink_older_script).  The strings must outlive the command.
 */
void
mlcache_l2_cmd_unlink_older(MlcacheL2Cmd *c, const char *const *keys,
							const char *const *befores, int n)
{
	Assert(n > 0 && n <= MLCACHE_L2_KEYS_PER_EVAL);
	l2_cmd_eval(c, l2_unlink_older_script, keys, NULL, n, befores, NULL, n);
}

/*
 * SCAN the keyspace with MATCH and remove what it finds that was computed
 * before 'before' (see l2_unlink_older_script).
 */
MlcacheL2Result
mlcache_l2_scan_unlink(const char *match, const char *before, int64 *removed)
{
	return l2_scan_eval(match, l2_unlink_older_script, before, 0, removed);
}

/* PING, reporting the round trip in milliseconds. */
MlcacheL2Result
mlcache_l2_ping(double *rtt_ms)
{
	const char *argv[1] = {"PING"};
	TimestampTz start = GetCurrentTimestamp();
	MlcacheL2Result res;
	redisReply *r = l2_command(1, argv, NULL, &res);

	if (r == NULL)
		return res;
	freeReplyObject(r);
	*rtt_ms = (double) (GetCurrentTimestamp() - start) / 1000.0;
	return L2_OK;
}

/* "closed", "open" (Redis skipped) or "half-open" (the next call retries). */
const char *
mlcache_l2_breaker_state(void)
{
	uint64		until = pg_atomic_read_u64(&mlcache_shared->breaker_until);

	if (until == 0)
		return "closed";
	return (uint64) GetCurrentTimestamp() < until ? "open" : "half-open";
}

/* INFO memory's used_memory, in bytes. */
MlcacheL2Result
mlcache_l2_used_memory(int64 *bytes)
{
	const char *argv[2] = {"INFO", "memory"};
	MlcacheL2Result res;
	redisReply *r = l2_command(2, argv, NULL, &res);
	const char *p;

	if (r == NULL)
		return res;
	res = L2_FAILED;
	if (r->type == REDIS_REPLY_STRING && (p = strstr(r->str, "used_memory:")) != NULL)
	{
		*bytes = strtoll(p + strlen("used_memory:"), NULL, 10);
		res = L2_OK;
	}
	freeReplyObject(r);
	return res;
}

/*
 * Count keys matching a pattern with SCAN, stopping after max_steps SCAN
 * calls; *exact says whether the whole keyspace was seen.
 */
MlcacheL2Result
mlcache_l2_count_keys(const char *match, int max_steps, int64 *count, bool *exact)
{
	char		cursor[32] = "0";
	int			steps = 0;

	*count = 0;
	*exact = false;
	do
	{
		const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
		MlcacheL2Result res;
		redisReply *r = l2_command(6, argv, NULL, &res);

		if (r == NULL)
			return res;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			r->element[0]->type != REDIS_REPLY_STRING ||
			r->element[1]->type != REDIS_REPLY_ARRAY)
		{
			freeReplyObject(r);
			return L2_FAILED;
		}
		strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		*count += r->element[1]->elements;
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0 && ++steps < max_steps);
	*exact = (strcmp(cursor, "0") == 0);
	return L2_OK;
}

/* PTTL of a key, in ms (-2: no such key, -1: no expiry). */
MlcacheL2Result
mlcache_l2_pttl(const char *rkey, int rkeylen, int64 *ttl_ms)
{
	const char *argv[2] = {"PTTL", rkey};
	size_t		argvlen[2] = {4, (size_t) rkeylen};
	MlcacheL2Result res;
	redisReply *r = l2_command(2, argv, argvlen, &res);

	if (r == NULL)
		return res;
	res = (r->type == REDIS_REPLY_INTEGER) ? L2_OK : L2_FAILED;
	if (res == L2_OK)
		*ttl_ms = r->integer;
	freeReplyObject(r);
	return res;
}
