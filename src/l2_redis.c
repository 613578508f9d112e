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
 *	- No redisReply is live across anything that can ereport (an ERROR would
 *	  leak it): what is kept is copied with non-throwing allocations
 *	  (palloc_extended with MCXT_ALLOC_NO_OOM) and the reply freed at once.
 *	  Every path frees its replies.  A GET reply longer than any value this
 *	  session would store is refused before it is copied.
 *	- SCAN loops check for interrupts between batches, when no reply is live
 *	  and no command is in flight, so the connection stays usable.
 *	- mlcache.redis_host is a numeric address (guc.c): hiredis resolves host
 *	  names with a getaddrinfo that no timeout bounds.  "localhost" is
 *	  connected to as 127.0.0.1.
 *	- Without a usable cluster secret (secret.c) no value could be
 *	  authenticated, so Redis is not used at all: the breaker reports
 *	  "disabled" and every call is skipped.
 *	- With mlcache.redis_sentinels set, the server is the master the
 *	  sentinels name (sentinel.c), checked with ROLE on every new connection.
 *	  Any failure on it makes the next reconnect ask the sentinels again,
 *	  and a connection made for an older master is dropped when another
 *	  backend has found a new one.
 *	- READONLY, MASTERDOWN and LOADING replies mean the server is not (or
 *	  not yet) a usable master, whatever the command: they are connection
 *	  failures (the connection is dropped, the breaker opens, and with
 *	  Sentinel the master is looked up again), never a mere refused command.
 *	- The password is never part of any message.
 */
#include "postgres.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "envelope.h"
#include "guc.h"
#include "keys.h"
#include "l2_redis.h"
#include "sentinel.h"
#include "shmem.h"
#include "stats.h"

static redisContext *l2_ctx = NULL;
static bool l2_ctx_used = false;	/* a command went through on l2_ctx */
static bool l2_ctx_sentinel = false;	/* l2_ctx was found through the sentinels */
static uint64 l2_master_version = 0;	/* the sentinel address version it was made for */
static uint64 l2_conn_serial = 0;	/* counts this process's connections: l2_ctx's */

/*
 * Remove each of KEYS unless it is an mlcache value computed at or after its
 * ARGV[i] (a TimestampTz; ARGV[1] for every key when there is only one): the
 * clean-up after a commit must not delete a value stored after that commit,
 * nor one that may still be served stale (its max_stale window reaches past
 * the commit).  Values that are not envelopes, or of another type, are
 * removed.  Only a value's first 96 bytes are read (GETRANGE), however large
 * it is; that cannot tell an empty string from a missing key, so an empty
 * string is left alone (a reader takes it for a miss and overwrites it).
 * The offsets are those of computed_at and max_stale in envelope.c.
 * Returns how many keys were removed.
 */
static const char *const l2_unlink_older_script =
"local n = 0 "
"for i, k in ipairs(KEYS) do "
"  local t = tonumber(ARGV[i] or ARGV[1]) "
"  local ok, v = pcall(redis.call, 'GETRANGE', k, 0, 95) "
"  local keep = ok and v == '' "
"  if ok and v and #v >= 96 and string.sub(v, 1, 4) == 'MLC\\3' then "
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

/*
 * True while the breaker tells every backend to skip Redis, and always when
 * there is no cluster secret to authenticate values with.
 * Atomic read of breaker_until; secret_ok is written once at start-up: no
 * lock.
 */
bool
mlcache_l2_breaker_open(void)
{
	uint64		until = pg_atomic_read_u64(&mlcache_shared->breaker_until);

	if (!mlcache_shared->secret_ok)
		return true;
	return until != 0 && (uint64) GetCurrentTimestamp() < until;
}

/*
 * Record a failure: drop the connection, count it and open (or keep open) the
 * breaker.  what says which step failed; detail is hiredis' text.
 * The breaker is opened by compare-and-swap on breaker_until: no lock.
 */
static void
l2_failure(const char *what, const char *detail)
{
	uint64		backoff = pg_atomic_read_u64(&mlcache_shared->breaker_backoff);
	uint64		max_backoff = (uint64) mlcache_redis_retry_interval * 10;
	uint64		old_until = pg_atomic_read_u64(&mlcache_shared->breaker_until);
	uint64		until;

	uint64		now = (uint64) GetCurrentTimestamp();

	/* Whatever failed, the next connection asks the sentinels again. */
	if (mlcache_sentinel_configured())
		mlcache_sentinel_forget(l2_master_version);
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

/*
 * A command went through: close the breaker if it was open.  The breaker is
 * closed by compare-and-swap on breaker_until: no lock.
 */
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

/*
 * Is r an error reply saying that the server is not a usable master now
 * (READONLY: a replica; MASTERDOWN: a replica cut off from its master;
 * LOADING: still loading its data set)?  If so detail says which.  No
 * allocation: the reply is live.
 */
static bool
l2_unusable_reply(const redisReply *r, char *detail, int detaillen)
{
	static const char *const codes[] = {"READONLY", "MASTERDOWN", "LOADING"};

	if (r->type != REDIS_REPLY_ERROR || r->str == NULL)
		return false;
	for (int i = 0; i < lengthof(codes); i++)
	{
		size_t		n = strlen(codes[i]);

		if (r->len >= n && strncmp(r->str, codes[i], n) == 0 &&
			(r->len == n || r->str[n] == ' '))
		{
			snprintf(detail, detaillen, "the server replied %s", codes[i]);
			return true;
		}
	}
	return false;
}

/*
 * Send a command on a fresh connection during set-up; true if it succeeded.
 * refused is the detail reported for an error reply (the server's own text
 * is not used: after AUTH it could echo the password).
 */
static bool
l2_setup_command(redisContext *c, const char *what, const char *refused,
				 int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	bool		ok = (r != NULL && r->type != REDIS_REPLY_ERROR);
	char		detail[160];

	if (r == NULL)
		strlcpy(detail, c->errstr, sizeof(detail));
	else if (!ok && !l2_unusable_reply(r, detail, sizeof(detail)))
		strlcpy(detail, refused, sizeof(detail));
	if (r != NULL)
		freeReplyObject(r);
	if (!ok)
		l2_failure(what, detail);
	return ok;
}

/*
 * AUTH on a fresh connection: as mlcache.redis_username (an ACL user, Redis
 * 6 and later) when it is set, else as the default user; nothing when
 * neither a user name nor a password is set.
 */
static bool
l2_authenticate(redisContext *c)
{
	const char *password = mlcache_redis_password ? mlcache_redis_password : "";
	const char *argv[3] = {"AUTH", NULL, NULL};

	if (mlcache_redis_username != NULL && mlcache_redis_username[0] != '\0')
	{
		argv[1] = mlcache_redis_username;
		argv[2] = password;
		return l2_setup_command(c, "authenticate to",
								"the server refused the user name or password", 3, argv);
	}
	if (password[0] == '\0')
		return true;
	argv[1] = password;
	return l2_setup_command(c, "authenticate to", "the server refused the password", 2, argv);
}

/*
 * The host to connect to: mlcache.redis_host, which guc.c allows only as a
 * numeric address or "localhost", so that hiredis' getaddrinfo never waits
 * for DNS.
 */
static const char *
l2_host(void)
{
	if (pg_strcasecmp(mlcache_redis_host, "localhost") == 0)
		return "127.0.0.1";
	return mlcache_redis_host;
}

/*
 * Connect to the server: the master the sentinels name when
 * mlcache.redis_sentinels is set, else the unix socket or host and port.
 * NULL after a failure, which has been reported.
 */
static redisContext *
l2_connect_target(void)
{
	struct timeval tv = ms_to_timeval(mlcache_redis_connect_timeout);
	redisContext *c;
	char		detail[256];

	l2_ctx_sentinel = mlcache_sentinel_configured();
	if (l2_ctx_sentinel)
	{
		MlcacheRedisAddr master;

		if (!mlcache_sentinel_master(&master, &l2_master_version, detail, sizeof(detail)))
		{
			l2_failure("locate", detail);
			return NULL;
		}
		c = redisConnectWithTimeout(master.host, master.port, tv);
		snprintf(detail, sizeof(detail), "%s:%d: %s", master.host, master.port,
				 c ? c->errstr : "out of memory");
	}
	else
	{
		if (mlcache_redis_socket != NULL && mlcache_redis_socket[0] != '\0')
			c = redisConnectUnixWithTimeout(mlcache_redis_socket, tv);
		else
			c = redisConnectWithTimeout(l2_host(), mlcache_redis_port, tv);
		strlcpy(detail, c ? c->errstr : "out of memory", sizeof(detail));
	}
	if (c == NULL || c->err)
	{
		if (c)
			redisFree(c);
		l2_failure("connect to", detail);
		return NULL;
	}
	return c;
}

/*
 * ROLE on a new connection to the master the sentinels named: it must say
 * "master" (a sentinel may still name a demoted master during a failover).
 */
static bool
l2_verify_master(redisContext *c)
{
	const char *argv[1] = {"ROLE"};
	redisReply *r = redisCommandArgv(c, 1, argv, NULL);
	bool		ok;
	char		detail[160];

	ok = (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		  r->element[0]->type == REDIS_REPLY_STRING &&
		  strcmp(r->element[0]->str, "master") == 0);
	if (r == NULL)
		strlcpy(detail, c->errstr, sizeof(detail));
	else if (!ok && !l2_unusable_reply(r, detail, sizeof(detail)))
		strlcpy(detail, "the server the sentinels named is not a master (ROLE)", sizeof(detail));
	if (r != NULL)
		freeReplyObject(r);
	if (!ok)
		l2_failure("use", detail);
	return ok;
}

/*
 * Is the kept connection still the one to use: made with the current
 * settings and, with Sentinel, for the master the sentinels named last?
 */
static bool
l2_connection_current(void)
{
	if (l2_ctx == NULL || l2_ctx_version != mlcache_redis_config_version)
		return false;
	return !l2_ctx_sentinel || l2_master_version == mlcache_sentinel_version();
}

/*
 * The connection to use now, or NULL (breaker open, or connecting failed and
 * was reported).  Reconnects when a connection setting changed, or when
 * another backend found a new master.
 */
static redisContext *
l2_connection(void)
{
	redisContext *c;
	char		dbnum[16];

	if (mlcache_l2_breaker_open())
		return NULL;
	if (l2_connection_current())
		return l2_ctx;
	mlcache_l2_disconnect();

	c = l2_connect_target();
	if (c == NULL)
		return NULL;
	if (redisSetTimeout(c, ms_to_timeval(mlcache_redis_command_timeout)) != REDIS_OK)
	{
		redisFree(c);
		l2_failure("configure the connection to", "setting the command timeout failed");
		return NULL;
	}
	if (!l2_authenticate(c) || (l2_ctx_sentinel && !l2_verify_master(c)))
	{
		redisFree(c);
		return NULL;
	}
	if (mlcache_redis_database != 0)
	{
		const char *argv[2] = {"SELECT", dbnum};

		snprintf(dbnum, sizeof(dbnum), "%d", mlcache_redis_database);
		if (!l2_setup_command(c, "select the database on", "the server refused the command",
							  2, argv))
		{
			redisFree(c);
			return NULL;
		}
	}
	l2_ctx = c;
	l2_ctx_version = mlcache_redis_config_version;
	l2_ctx_used = false;
	l2_conn_serial++;
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
	{
		/* A failover drops connections too: the retry asks the sentinels. */
		if (l2_ctx_sentinel)
			mlcache_sentinel_forget(l2_master_version);
		mlcache_l2_disconnect();
	}
	return dropped;
}

/*
 * Send one command and read its reply.  With mlcache.redis_spin_us > 0, and
 * while this backend's replies have been coming back within that time (a
 * moving average of the last few round trips), the reply is first waited
 * for by polling the socket without blocking, for up to that long, so that
 * a fast reply is read without this process going to sleep and being woken
 * up.  Slower replies (a remote or loaded Redis) stop the polling by
 * themselves, and it resumes once round trips are fast again.
 */
static redisReply *
l2_roundtrip(redisContext *c, int argc, const char **argv, const size_t *argvlen)
{
	static double rtt_us = 0;	/* moving average of round trips */
	void	   *reply = NULL;
	int			done = 0;
	bool		spin;
	instr_time	start,
				now;

	if (mlcache_redis_spin_us <= 0)
		return redisCommandArgv(c, argc, argv, argvlen);
	if (redisAppendCommandArgv(c, argc, argv, argvlen) != REDIS_OK)
		return NULL;
	do
	{
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return NULL;
	} while (!done);
	INSTR_TIME_SET_CURRENT(start);
	spin = rtt_us <= mlcache_redis_spin_us;
	while (spin)
	{
		char		b;
		ssize_t		n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

		if (n != -1 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			break;
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		spin = INSTR_TIME_GET_MICROSEC(now) < mlcache_redis_spin_us;
	}
	if (redisGetReply(c, &reply) != REDIS_OK)
		return NULL;
	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	rtt_us += ((double) INSTR_TIME_GET_MICROSEC(now) - rtt_us) / 8;
	return (redisReply *) reply;
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
	r = l2_roundtrip(c, argc, argv, argvlen);
	if (r == NULL && l2_dropped_connection(c, errno))
	{
		c = l2_connection();
		if (c == NULL)
		{
			*res = mlcache_l2_breaker_open() ? L2_SKIPPED : L2_FAILED;
			return NULL;
		}
		r = l2_roundtrip(c, argc, argv, argvlen);
	}
	if (r == NULL)
	{
		char		detail[160];

		strlcpy(detail, c->errstr, sizeof(detail));
		l2_failure("talk to", detail);
		*res = L2_FAILED;
		return NULL;
	}
	{
		char		detail[160];

		if (l2_unusable_reply(r, detail, sizeof(detail)))
		{
			freeReplyObject(r);
			l2_failure("use", detail);
			*res = L2_FAILED;
			return NULL;
		}
	}
	l2_ctx_used = true;
	l2_success();
	*res = L2_OK;
	return r;
}

/*
 * The longest GET reply worth copying: an envelope of the largest value this
 * session stores (mlcache.max_value_size) and the longest key.  Anything
 * longer cannot be one of ours.
 */
static Size
l2_max_reply(void)
{
	Size		max = (Size) mlcache_max_value_size * 1024 +
		MLCACHE_ENVELOPE_OVERHEAD + MLCACHE_MAX_KEY;

	return Min(max, MaxAllocSize - 1);
}

/*
 * GET.  On L2_OK *val is a palloc'd copy of the value.  A value of another
 * Redis type under our key (WRONGTYPE) is a miss, not a failure, and so is a
 * value longer than l2_max_reply (counted as a decode failure) or one there
 * is no memory to copy.  The copy cannot raise an error while the reply is
 * live.
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
	if (r->type == REDIS_REPLY_STRING && (Size) r->len > l2_max_reply())
	{
		mlcache_count(MLC_DECODE_FAILED);
		res = L2_MISS;
	}
	else if (r->type == REDIS_REPLY_STRING)
	{
		char	   *copy = palloc_extended(r->len + 1, MCXT_ALLOC_NO_OOM);

		res = L2_MISS;
		if (copy != NULL)
		{
			memcpy(copy, r->str, r->len);
			copy[r->len] = '\0';
			*val = copy;
			*vlen = r->len;
			res = L2_OK;
		}
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
		char		unusable[160] = "";
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
			if (unusable[0] == '\0' && l2_unusable_reply(r, unusable, sizeof(unusable)))
				cmds[i].result = 0;
			else if (r->type == REDIS_REPLY_ERROR)
				mlcache_count(MLC_L2_ERROR);
			freeReplyObject(r);
		}
		if (i == n && unusable[0] != '\0')
		{
			l2_failure("use", unusable);
			return L2_FAILED;
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
 * Remove each of KEYS unless it is an mlcache envelope of the epoch in the
 * first 8 bytes of ARGV[1] (as stored at offset 8): values of an older
 * server life, or foreign values, under our prefix.  Keys that begin with
 * the rest of ARGV[1] (a standby's names under a primary's namespace) are
 * left alone, and so are empty strings (see l2_unlink_older_script: only
 * the first 96 bytes are read).  Returns how many keys were removed.
 */
static const char *const l2_unlink_orphan_script =
"local n = 0 "
"local epoch = string.sub(ARGV[1], 1, 8) "
"local skip = string.sub(ARGV[1], 9) "
"for _, k in ipairs(KEYS) do "
"  if skip == '' or string.sub(k, 1, #skip) ~= skip then "
"    local ok, v = pcall(redis.call, 'GETRANGE', k, 0, 95) "
"    local keep = ok and v == '' "
"    if ok and v and #v >= 96 and string.sub(v, 1, 4) == 'MLC\\3' and string.sub(v, 9, 16) == epoch "
"    then keep = true end "
"    if not keep then n = n + redis.call('UNLINK', k) end "
"  end "
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
 * Is r a SCAN reply (a cursor and an array of key names)?  If so its cursor
 * is copied into cursor (MLCACHE_L2_CURSOR_LEN bytes).
 */
static bool
l2_scan_reply(const redisReply *r, char *cursor)
{
	size_t		i;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		r->element[0]->type != REDIS_REPLY_STRING ||
		r->element[0]->len >= MLCACHE_L2_CURSOR_LEN ||
		r->element[1]->type != REDIS_REPLY_ARRAY)
		return false;
	for (i = 0; i < r->element[1]->elements; i++)
		if (r->element[1]->element[i]->type != REDIS_REPLY_STRING)
			return false;
	strlcpy(cursor, r->element[0]->str, MLCACHE_L2_CURSOR_LEN);
	return true;
}

/*
 * Copy the key names of a SCAN reply (checked by l2_scan_reply) into
 * CurrentMemoryContext with allocations that cannot raise an error, since
 * the reply is live.  False if they are too large or memory ran out (what
 * was allocated is left to the context).
 */
static bool
l2_scan_keys(const redisReply *r, const char ***keys, size_t **keylens, int *n)
{
	const redisReply *arr = r->element[1];
	Size		total = 0;
	char	   *p;
	size_t		i;

	if (arr->elements > MaxAllocSize / sizeof(char *))
		return false;
	for (i = 0; i < arr->elements; i++)
	{
		total += arr->element[i]->len + 1;
		if (total > MaxAllocSize)
			return false;
	}
	*n = (int) arr->elements;
	*keys = palloc_extended(sizeof(char *) * Max(*n, 1), MCXT_ALLOC_NO_OOM);
	*keylens = palloc_extended(sizeof(size_t) * Max(*n, 1), MCXT_ALLOC_NO_OOM);
	p = palloc_extended(Max(total, 1), MCXT_ALLOC_NO_OOM);
	if (*keys == NULL || *keylens == NULL || p == NULL)
		return false;
	for (i = 0; i < arr->elements; i++)
	{
		const redisReply *e = arr->element[i];

		memcpy(p, e->str, e->len);
		p[e->len] = '\0';
		(*keys)[i] = p;
		(*keylens)[i] = e->len;
		p += e->len + 1;
	}
	return true;
}

/*
 * Run script over n keys, one EVAL per MLCACHE_L2_KEYS_PER_EVAL keys,
 * pipelined; the integer replies are added to *removed.  Its ARGV is args[0]
 * for every EVAL, or with per_key args[i] for keys[i] (arglens NULL: the
 * args are NUL-terminated).
 */
static MlcacheL2Result
l2_eval_keys(const char *script, const char **keys, const size_t *keylens, int n,
			 const char *const *args, const size_t *arglens, bool per_key, int64 *removed)
{
	int			ncmds = (n + MLCACHE_L2_KEYS_PER_EVAL - 1) / MLCACHE_L2_KEYS_PER_EVAL;
	MlcacheL2Cmd *cmds;
	MlcacheL2Result res;
	int			i;

	if (ncmds == 0)
		return L2_OK;
	cmds = palloc0(sizeof(MlcacheL2Cmd) * ncmds);
	for (i = 0; i < ncmds; i++)
	{
		int			first = i * MLCACHE_L2_KEYS_PER_EVAL;
		int			count = Min(n - first, MLCACHE_L2_KEYS_PER_EVAL);

		if (per_key)
			l2_cmd_eval(&cmds[i], script, keys + first, keylens + first, count,
						args + first, arglens ? arglens + first : NULL, count);
		else
			l2_cmd_eval(&cmds[i], script, keys + first, keylens + first, count,
						args, arglens, 1);
	}
	res = mlcache_l2_pipeline(cmds, ncmds);
	if (res == L2_OK)
		for (i = 0; i < ncmds; i++)
			*removed += cmds[i].result;
	return res;
}

/* What to do with one page of SCAN results. */
typedef MlcacheL2Result (*L2ScanPageFn) (const char **keys, const size_t *keylens, int n,
										 void *arg, int64 *removed);

/* A cursor at the start of a SCAN. */
void
mlcache_l2_cursor_init(MlcacheL2Cursor *cursor)
{
	strlcpy(cursor->pos, "0", sizeof(cursor->pos));
	cursor->conn = 0;
	cursor->restarts = 0;
}

/*
 * SCAN the keys matching match from cursor (pos "0" for the start) and hand
 * them to page_fn page by page, for at most max_pages pages (0: to the
 * end); *removed sums what it reports.  On success cursor is where the next
 * call resumes, pos "0" when the SCAN has ended.  A page read on another
 * connection than the one that returned the cursor is dropped, and the SCAN
 * starts over (see MlcacheL2Cursor).  On failure cursor is left as it was:
 * a later call resumes there if the connection survived, and starts over
 * if not.  Each page is handled in a context of its own, reset after it.
 * Interrupts are checked between pages, where no reply is live and no
 * command in flight.  Off the commit path only.
 */
static MlcacheL2Result
l2_scan_pages(const char *match, MlcacheL2Cursor *cursor, int max_pages, L2ScanPageFn page_fn,
			  void *arg, int64 *removed)
{
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "mlcache SCAN batch",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(batch_cxt);
	MlcacheL2Result res = L2_OK;
	int			pages = 0;

	*removed = 0;
	for (;;)
	{
		char		pos[MLCACHE_L2_CURSOR_LEN];
		uint64		conn;
		const char *argv[6] = {"SCAN", cursor->pos, "MATCH", match, "COUNT", "1000"};
		redisReply *r;
		const char **keys = NULL;
		size_t	   *keylens = NULL;
		int			n = 0;
		bool		ok;

		CHECK_FOR_INTERRUPTS();
		r = l2_command(6, argv, NULL, &res);
		if (r == NULL)
			break;
		if (strcmp(cursor->pos, "0") != 0 && cursor->conn != l2_conn_serial)
		{
			/* The cursor is another connection's: this page means nothing. */
			freeReplyObject(r);
			strlcpy(cursor->pos, "0", sizeof(cursor->pos));
			cursor->restarts++;
			continue;
		}
		/* The connection pos belongs to, whatever page_fn reconnects to. */
		conn = l2_conn_serial;
		ok = l2_scan_reply(r, pos) && l2_scan_keys(r, &keys, &keylens, &n);
		freeReplyObject(r);
		if (!ok)
		{
			mlcache_count(MLC_L2_ERROR);
			res = L2_FAILED;
			break;
		}
		res = page_fn(keys, keylens, n, arg, removed);
		if (res != L2_OK)
			break;
		strlcpy(cursor->pos, pos, sizeof(cursor->pos));
		cursor->conn = conn;
		MemoryContextReset(batch_cxt);
		if (strcmp(cursor->pos, "0") == 0 || (max_pages > 0 && ++pages >= max_pages))
			break;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(batch_cxt);
	return res;
}

typedef struct L2ScriptArg
{
	const char *script;
	const char *arg;
	size_t		arglen;
} L2ScriptArg;

/* A page handler: the script over the page's keys (see l2_eval_keys). */
static MlcacheL2Result
l2_scan_script_page(const char **keys, const size_t *keylens, int n, void *arg, int64 *removed)
{
	L2ScriptArg *a = arg;

	return l2_eval_keys(a->script, keys, keylens, n, &a->arg, &a->arglen, false, removed);
}

/*
 * SCAN the keys matching match and run script (an EVAL with the keys as KEYS
 * and arg, arglen bytes, as ARGV[1]) on them, page by page.
 */
static MlcacheL2Result
l2_scan_eval(const char *match, const char *script, const char *arg, size_t arglen,
			 int64 *removed)
{
	L2ScriptArg a = {script, arg, arglen};
	MlcacheL2Cursor cursor;

	mlcache_l2_cursor_init(&cursor);
	return l2_scan_pages(match, &cursor, 0, l2_scan_script_page, &a, removed);
}

/* Order prefixes by length, then bytes: each length's run is sorted. */
static int
l2_prefix_cmp(const void *a, const void *b)
{
	const MlcacheL2Prefix *x = a;
	const MlcacheL2Prefix *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->text, y->text, x->len);
}

typedef struct L2PrefixArg
{
	MlcacheL2Prefix *prefixes;	/* sorted by l2_prefix_cmp */
	int			np;
} L2PrefixArg;

/*
 * The latest commit time among the prefixes key begins with, or 0 if none:
 * for each length, a binary search of that length's run.
 */
static TimestampTz
l2_prefix_before(const L2PrefixArg *a, const char *key, size_t keylen)
{
	TimestampTz before = 0;
	int			run = 0;

	while (run < a->np)
	{
		int			len = a->prefixes[run].len;
		int			end = run;
		int			lo,
					hi;

		while (end < a->np && a->prefixes[end].len == len)
			end++;
		lo = run;
		hi = end - 1;
		while ((size_t) len <= keylen && lo <= hi)
		{
			int			mid = lo + (hi - lo) / 2;
			int			c = memcmp(key, a->prefixes[mid].text, len);

			if (c == 0)
			{
				before = Max(before, a->prefixes[mid].before);
				break;
			}
			if (c < 0)
				hi = mid - 1;
			else
				lo = mid + 1;
		}
		run = end;
	}
	return before;
}

/*
 * A page handler: remove the page's keys that are under one of the
 * prefixes, each compared with the latest commit time of the prefixes it
 * is under (mlcache_l2_cmd_unlink_older), pipelined.
 */
static MlcacheL2Result
l2_scan_prefix_page(const char **keys, const size_t *keylens, int n, void *arg, int64 *removed)
{
	L2PrefixArg *a = arg;
	const char **mkeys = palloc(sizeof(char *) * Max(n, 1));
	size_t	   *mkeylens = palloc(sizeof(size_t) * Max(n, 1));
	const char **befores = palloc(sizeof(char *) * Max(n, 1));
	int			m = 0,
				i;

	for (i = 0; i < n; i++)
	{
		TimestampTz before = l2_prefix_before(a, keys[i], keylens[i]);

		if (before == 0)
			continue;
		mkeys[m] = keys[i];
		mkeylens[m] = keylens[i];
		befores[m] = psprintf(INT64_FORMAT, (int64) before);
		m++;
	}
	return l2_eval_keys(l2_unlink_older_script, mkeys, mkeylens, m, befores, NULL, true, removed);
}

/*
 * One SCAN pass for several prefixes, or max_pages pages of it (0: all) from
 * cursor (see l2_scan_pages): SCAN the keys matching match (which must cover
 * every prefix) and remove those under one of the prefixes that were
 * computed before its commit time (the latest of them, for a key under
 * several; see l2_unlink_older_script).  Sorts prefixes.
 */
MlcacheL2Result
mlcache_l2_scan_unlink_prefixes(const char *match, MlcacheL2Prefix *prefixes, int np,
								MlcacheL2Cursor *cursor, int max_pages, int64 *removed)
{
	L2PrefixArg a = {prefixes, np};

	qsort(prefixes, np, sizeof(MlcacheL2Prefix), l2_prefix_cmp);
	return l2_scan_pages(match, cursor, max_pages, l2_scan_prefix_page, &a, removed);
}

/*
 * SCAN keys matching match and remove the orphans among them (see
 * l2_unlink_orphan_script); epoch is the current one, 8 bytes; keys that
 * begin with skip are left alone.
 */
MlcacheL2Result
mlcache_l2_clean_orphans(const char *match, uint64 epoch, const char *skip, int64 *removed)
{
	size_t		skiplen = strlen(skip);
	char	   *arg = palloc(8 + skiplen);

	memcpy(arg, &epoch, 8);
	memcpy(arg + 8, skip, skiplen);
	return l2_scan_eval(match, l2_unlink_orphan_script, arg, 8 + skiplen, removed);
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

/*
 * "closed", "open" (Redis skipped), "half-open" (the next call retries) or
 * "disabled" (no usable cluster secret: Redis is never used).
 * Atomic read: no lock.
 */
const char *
mlcache_l2_breaker_state(void)
{
	uint64		until = pg_atomic_read_u64(&mlcache_shared->breaker_until);

	if (!mlcache_shared->secret_ok)
		return "disabled";
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
	char		cursor[MLCACHE_L2_CURSOR_LEN] = "0";
	int			steps = 0;

	*count = 0;
	*exact = false;
	do
	{
		const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
		MlcacheL2Result res;
		redisReply *r;
		bool		ok;

		/* Between SCAN calls no reply is live and no command in flight. */
		CHECK_FOR_INTERRUPTS();
		r = l2_command(6, argv, NULL, &res);
		if (r == NULL)
			return res;
		ok = l2_scan_reply(r, cursor);
		if (ok)
			*count += r->element[1]->elements;
		freeReplyObject(r);
		if (!ok)
			return L2_FAILED;
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
