/*
 * sentinel.c
 *	  Finding the Redis master through Redis Sentinel, as the Redis
 *	  "Sentinel clients" specification describes, with hiredis.
 *
 * When mlcache.redis_sentinels lists sentinels, l2_redis.c connects to the
 * master they name instead of mlcache.redis_host/port/socket:
 *	- The sentinels are asked in turn, starting with the one that answered
 *	  last, with SENTINEL get-master-addr-by-name <mlcache.redis_master_name>;
 *	  the first address given wins.  Each sentinel is bounded by the Redis
 *	  connect and command timeouts, so resolving takes at most
 *	  (connect + 2 * command timeout) per sentinel listed.
 *	- The answer is kept in shared memory, so that a backend that connects
 *	  for the first time uses it without asking the sentinels.  Any failure
 *	  on a master connection (l2_redis.c: errors, timeouts, READONLY, a ROLE
 *	  that is not "master") marks it no longer valid, so the next
 *	  (re)connect, in whichever backend, asks the sentinels again.  Between
 *	  the two, the shared circuit breaker keeps every backend off Redis, so
 *	  a failover costs a handful of sentinel queries, not one per backend.
 *	- When a sentinel names another master than before, the shared version
 *	  is bumped; every backend compares it with the version its connection
 *	  was made for and reconnects, so all of them follow a failover that one
 *	  of them noticed.
 *	- Addresses must be numeric (IPv4, [IPv6], or localhost): hiredis
 *	  resolves host names with a getaddrinfo that no timeout bounds.  A
 *	  sentinel that names a host name is skipped.
 *
 * Locking: SentinelShared's fields are read and written under its spinlock
 * `mutex`, held only to copy them (no I/O, no allocation, no ereport);
 * `version` is an atomic, read without the lock on every Redis call and
 * bumped under the lock.  No other lock is taken while it is held.
 */
#include "postgres.h"

#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "sentinel.h"

typedef struct SentinelShared
{
	slock_t		mutex;			/* every field below but version */
	pg_atomic_uint64 version;	/* bumped when the master's address changes */
	bool		known;			/* master holds an address */
	bool		valid;			/* no failure on it since it was resolved */
	uint32		config_hash;	/* of the settings it was resolved with */
	int			preferred;		/* index of the sentinel that answered last */
	MlcacheRedisAddr master;
	MlcacheRedisAddr answered_by;
	TimestampTz resolved_at;
	TimestampTz changed_at;
	uint64		changes;
} SentinelShared;

static SentinelShared *sentinel_shared = NULL;

Size
mlcache_sentinel_shmem_size(void)
{
	return MAXALIGN(sizeof(SentinelShared));
}

/* Attach, creating the struct in the first process; AddinShmemInitLock held. */
void
mlcache_sentinel_shmem_startup(void)
{
	bool		found;

	sentinel_shared = ShmemInitStruct("mlcache sentinel", sizeof(SentinelShared), &found);
	if (!found)
	{
		memset(sentinel_shared, 0, sizeof(SentinelShared));
		SpinLockInit(&sentinel_shared->mutex);
		pg_atomic_init_u64(&sentinel_shared->version, 1);
	}
}

/* Is mlcache.redis_sentinels set (and shared memory there to keep the answer)? */
bool
mlcache_sentinel_configured(void)
{
	return sentinel_shared != NULL &&
		mlcache_redis_sentinels != NULL && mlcache_redis_sentinels[0] != '\0';
}

/*
 * The settings an answer depends on: the list, the master name and the
 * sentinel password (so that a changed password is tried at once; only this
 * 32-bit hash of it is kept).
 */
static uint32
sentinel_config_hash(void)
{
	const char *const parts[3] = {mlcache_redis_sentinels, mlcache_redis_master_name,
	mlcache_redis_sentinel_password ? mlcache_redis_sentinel_password : ""};
	uint32		h = 0;

	for (int i = 0; i < lengthof(parts); i++)
		h = hash_combine(h, hash_bytes((const unsigned char *) parts[i], strlen(parts[i])));
	return h;
}

static struct timeval
sentinel_timeval(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/*
 * AUTH with mlcache.redis_sentinel_password, if set.  The server's reply
 * text is not reported (it could echo the password).
 */
static bool
sentinel_auth(redisContext *c, char *detail, int detaillen)
{
	const char *argv[2] = {"AUTH", mlcache_redis_sentinel_password};
	redisReply *r;
	bool		ok;

	if (mlcache_redis_sentinel_password == NULL || mlcache_redis_sentinel_password[0] == '\0')
		return true;
	r = redisCommandArgv(c, 2, argv, NULL);
	ok = (r != NULL && r->type != REDIS_REPLY_ERROR);
	if (!ok)
		strlcpy(detail, r == NULL ? c->errstr : "the sentinel refused the password", detaillen);
	if (r != NULL)
		freeReplyObject(r);
	return ok;
}

/*
 * Copy a get-master-addr-by-name reply (an array of host and port) into
 * master; false (with detail) if it is anything else or not numeric.  No
 * allocation, no ereport: the reply is live.
 */
static bool
sentinel_copy_reply(const redisReply *r, MlcacheRedisAddr *master, char *detail, int detaillen)
{
	char	   *end;
	long		port;
	char		portbuf[8];

	if (r->type == REDIS_REPLY_NIL)
	{
		snprintf(detail, detaillen, "the sentinel does not know master \"%s\"",
				 mlcache_redis_master_name);
		return false;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
		r->element[0]->len >= MLCACHE_HOSTLEN || r->element[1]->len >= sizeof(portbuf))
	{
		strlcpy(detail, r->type == REDIS_REPLY_ERROR ? "the sentinel refused the command" :
				"the sentinel's reply was not an address", detaillen);
		return false;
	}
	memcpy(master->host, r->element[0]->str, r->element[0]->len);
	master->host[r->element[0]->len] = '\0';
	memcpy(portbuf, r->element[1]->str, r->element[1]->len);
	portbuf[r->element[1]->len] = '\0';
	port = strtol(portbuf, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535 || !mlcache_numeric_host(master->host))
	{
		strlcpy(detail, "the sentinel named a master that is not a numeric address", detaillen);
		return false;
	}
	master->port = (int) port;
	return true;
}

/* Ask one sentinel for the master's address; false with detail if it could not say. */
static bool
sentinel_ask(const MlcacheRedisAddr *s, MlcacheRedisAddr *master, char *detail, int detaillen)
{
	const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", mlcache_redis_master_name};
	redisContext *c;
	redisReply *r;
	bool		ok = false;

	c = redisConnectWithTimeout(s->host, s->port, sentinel_timeval(mlcache_redis_connect_timeout));
	if (c == NULL || c->err)
	{
		strlcpy(detail, c ? c->errstr : "out of memory", detaillen);
		if (c)
			redisFree(c);
		return false;
	}
	if (redisSetTimeout(c, sentinel_timeval(mlcache_redis_command_timeout)) != REDIS_OK)
		strlcpy(detail, "setting the command timeout failed", detaillen);
	else if (sentinel_auth(c, detail, detaillen))
	{
		r = redisCommandArgv(c, 3, argv, NULL);
		if (r == NULL)
			strlcpy(detail, c->errstr, detaillen);
		else
		{
			ok = sentinel_copy_reply(r, master, detail, detaillen);
			freeReplyObject(r);
		}
	}
	redisFree(c);
	return ok;
}

/*
 * Record that sentinel s named master: bump the version if it differs from
 * the address kept.  Takes the spinlock.
 */
static void
sentinel_store(const MlcacheRedisAddr *master, const MlcacheRedisAddr *s, int index,
			   uint32 config_hash)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&sentinel_shared->mutex);
	if (!sentinel_shared->known || sentinel_shared->master.port != master->port ||
		strcmp(sentinel_shared->master.host, master->host) != 0)
	{
		if (sentinel_shared->known)
			sentinel_shared->changes++;
		sentinel_shared->changed_at = now;
		pg_atomic_fetch_add_u64(&sentinel_shared->version, 1);
	}
	sentinel_shared->master = *master;
	sentinel_shared->answered_by = *s;
	sentinel_shared->known = true;
	sentinel_shared->valid = true;
	sentinel_shared->config_hash = config_hash;
	sentinel_shared->preferred = index;
	sentinel_shared->resolved_at = now;
	SpinLockRelease(&sentinel_shared->mutex);
}

/*
 * Ask the sentinels in turn, starting with the one that answered last.
 * True with master set and stored in shared memory; false with detail.
 */
static bool
sentinel_resolve(MlcacheRedisAddr *master, int preferred, uint32 config_hash,
				 char *detail, int detaillen)
{
	MlcacheRedisAddr list[MLCACHE_MAX_SENTINELS];
	char		bad[64];
	char		last[160] = "";
	int			n = mlcache_parse_sentinels(mlcache_redis_sentinels, list, MLCACHE_MAX_SENTINELS,
										   bad, sizeof(bad));

	if (n <= 0)
	{
		strlcpy(detail, "mlcache.redis_sentinels lists no usable sentinel", detaillen);
		return false;
	}
	for (int i = 0; i < n; i++)
	{
		int			k = (preferred + i) % n;

		if (sentinel_ask(&list[k], master, last, sizeof(last)))
		{
			sentinel_store(master, &list[k], k, config_hash);
			return true;
		}
	}
	snprintf(detail, detaillen, "no sentinel of %d named master \"%s\" (the last one, %s:%d: %s)",
			 n, mlcache_redis_master_name, list[(preferred + n - 1) % n].host,
			 list[(preferred + n - 1) % n].port, last);
	return false;
}

/*
 * The master to connect to, and the version of the address (see
 * mlcache_sentinel_version).  The address kept in shared memory is used
 * while it is valid and was resolved with the current settings; otherwise
 * the sentinels are asked.  False with detail when none could say.
 * Takes the spinlock to read the shared address.
 */
bool
mlcache_sentinel_master(MlcacheRedisAddr *master, uint64 *version,
						char *detail, int detaillen)
{
	uint32		config_hash = sentinel_config_hash();
	bool		usable;
	int			preferred;

	SpinLockAcquire(&sentinel_shared->mutex);
	usable = sentinel_shared->known && sentinel_shared->valid &&
		sentinel_shared->config_hash == config_hash;
	*master = sentinel_shared->master;
	preferred = sentinel_shared->preferred;
	*version = pg_atomic_read_u64(&sentinel_shared->version);
	SpinLockRelease(&sentinel_shared->mutex);
	if (usable)
		return true;
	if (!sentinel_resolve(master, preferred, config_hash, detail, detaillen))
		return false;
	/* A concurrent resolution may have bumped it again: the next call sees it. */
	*version = pg_atomic_read_u64(&sentinel_shared->version);
	return true;
}

/* The version of the master's address: it changes when the master does.  No lock. */
uint64
mlcache_sentinel_version(void)
{
	return sentinel_shared ? pg_atomic_read_u64(&sentinel_shared->version) : 0;
}

/*
 * Something failed on the master of this version: the next (re)connect asks
 * the sentinels again.  A failure on an older master changes nothing.
 * Takes the spinlock.
 */
void
mlcache_sentinel_forget(uint64 version)
{
	if (sentinel_shared == NULL)
		return;
	SpinLockAcquire(&sentinel_shared->mutex);
	if (pg_atomic_read_u64(&sentinel_shared->version) == version)
		sentinel_shared->valid = false;
	SpinLockRelease(&sentinel_shared->mutex);
}

/* A copy of the shared state, for health().  Takes the spinlock. */
void
mlcache_sentinel_state(MlcacheSentinelState *out)
{
	memset(out, 0, sizeof(*out));
	if (sentinel_shared == NULL)
		return;
	SpinLockAcquire(&sentinel_shared->mutex);
	out->known = sentinel_shared->known;
	out->valid = sentinel_shared->valid;
	out->master = sentinel_shared->master;
	out->answered_by = sentinel_shared->answered_by;
	out->resolved_at = sentinel_shared->resolved_at;
	out->changed_at = sentinel_shared->changed_at;
	out->changes = sentinel_shared->changes;
	SpinLockRelease(&sentinel_shared->mutex);
}
