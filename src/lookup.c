/*
 * lookup.c
 *	  The read path: mlcache.get() through L1, then Redis, then the query.
 *
 * Freshness proof (G1, G2).  Before anything else a read takes the key's
 * generation token (keys.c).  A cached value is served only if it was
 * stored under that same token.  A computed value is stored under the token
 * read before its snapshot was taken.  A writer's commit bumps the counters
 * after its commit became visible and before COMMIT returns; so a value
 * computed from a snapshot that lacks the commit carries a token from before
 * the bump, and no read that starts after the bump can accept it.
 *
 * Reads go around the cache (compute, store nothing) when the cache cannot
 * prove anything for this snapshot: REPEATABLE READ and SERIALIZABLE (the
 * snapshot may be older than the token), a hot standby that cannot know
 * every commit's invalidations (wal.c: the primary does not log them, or
 * transactions the standby could not follow are still open), a
 * transaction with its own pending invalidation of the key
 * (read-your-writes, G9), or mlcache.enabled = off.
 *
 * Hot standbys.  No commit happens on a standby; the primary logs each
 * committing transaction's invalidations in the WAL, and the standby bumps
 * the same slots once it has replayed the commit (wal.c).  Every read first
 * applies the commits replayed so far (mlcache_wal_resolve), so its token
 * reflects every commit replayed before it began, and the rest of the
 * proof is the one above.  A standby also stores a computed value only if
 * no transaction in doubt there (logged, commit not yet replayed) that
 * touches the key is still in progress.
 *
 * Leases (G3).  A transaction that has written may compute a value from rows
 * that are never committed.  Such a value is stored stamped with the
 * transaction's id (of the current subtransaction, which commits only if
 * every level above it does): it is a lease that no reader accepts until
 * that id has committed, and that becomes garbage if it aborts.  Only the
 * writing transaction itself reads its own lease while it runs.  set()
 * values are leases too, so that a COMMIT that fails after they were written
 * (at PRE_COMMIT: a serialization failure, say) leaves nothing readable.
 *
 * What else a value's meaning depends on, and so joins its fingerprint: the
 * settings that shape a result's text (TimeZone, DateStyle, IntervalStyle,
 * extra_float_digits, bytea_output, lc_monetary, lc_numeric), and the names
 * of the settings a read varies on.  Under row-level security a computed
 * value is not stored at all, unless the read names the settings its
 * policies read (vary_on): their values then join the key (see compute.c).
 */
#include "postgres.h"

#include <math.h>

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "pgtime.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/bytea.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/pg_locale.h"
#include "utils/jsonb.h"
#include "utils/resowner.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compute.h"
#include "envelope.h"
#include "guc.h"
#include "invalidate.h"
#include "keys.h"
#include "l1.h"
#include "l2_redis.h"
#include "lookup.h"
#include "shmem.h"
#include "stats.h"
#include "track.h"
#include "wal.h"

/* What answered the last read in this session, for mlcache.last_level(). */
static const char *last_level = NULL;

/* A set() waiting for its transaction to commit. */
typedef struct PendingSet
{
	char	   *key;
	int			keylen;
	Jsonb	   *value;
	MlcacheStamp stamp;
	int			l1_ttl;
	int			l2_ttl;
	int			level;
} PendingSet;

static List *pending_sets = NIL;	/* in TopTransactionContext */

static Jsonb *
copy_jsonb(const Jsonb *j)
{
	Jsonb	   *c = palloc(VARSIZE(j));

	memcpy(c, j, VARSIZE(j));
	return c;
}

/* Why this read may not use the cache, or NULL if it may. */
static const char *
lookup_bypass_reason(const MlcacheKey *k)
{
	const char *why;

	if (!mlcache_enabled)
		return "mlcache.enabled is off";
	if (IsolationUsesXactSnapshot())
		return "the transaction uses REPEATABLE READ or SERIALIZABLE";
	if ((why = mlcache_wal_bypass_reason()) != NULL)
		return why;
	if (mlcache_inval_touches(k))
		return "the transaction has a pending invalidation of this key";
	return NULL;
}

/*
 * A fingerprint of what a value means: kind ("get" or "def") and text (a
 * query, or a definition's name, query, owner and search_path).  For get(),
 * whose query is resolved with the caller's search_path, that path is part
 * of it too.  A cached value is served only to a read with the same
 * fingerprint.
 */
uint64
mlcache_fingerprint(const char *kind, const char *text)
{
	uint64		h = hash_bytes_extended((const unsigned char *) text, strlen(text), 0x71);

	if (strcmp(kind, "get") == 0)
	{
		const char *sp = namespace_search_path ? namespace_search_path : "";

		h ^= hash_bytes_extended((const unsigned char *) sp, strlen(sp), 0x7370) * 31;
	}
	h ^= hash_bytes_extended((const unsigned char *) kind, strlen(kind), 0x6b) * 7;
	return h == 0 ? 1 : h;
}

/*
 * Is a stamp valid for this read?  fingerprint 0 marks a set() value, which
 * any query of the same role may read.
 */
static bool
stamp_matches(const MlcacheStamp *s, uint64 token, const MlcacheSource *src)
{
	return s->token == token && s->roleid == src->roleid &&
		(s->fingerprint == src->fingerprint || s->fingerprint == 0);
}

/*
 * The lease a value computed now must carry: 0 if this transaction has not
 * written, else the current subtransaction's FullTransactionId (assigned
 * here if it has none yet, so that rolling it back voids the lease).
 */
static uint64
lookup_lease_xid(void)
{
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return 0;
	return U64FromFullTransactionId(GetCurrentFullTransactionId());
}

/*
 * May a value under lease x be served now?  Yes if there is no lease, if x
 * is this transaction's own, or if x has committed and its commit is visible
 * to new snapshots.  A lease from another server life (not before the next
 * id) or so old that its status may be gone is refused.  The last committed
 * lease is remembered, since a committed id stays committed.
 */
static bool
lookup_lease_valid(uint64 x)
{
	static uint64 known_committed = 0;
	FullTransactionId fxid;
	FullTransactionId next;
	TransactionId xid;
	bool		ok;

	if (x == 0 || x == known_committed)
		return true;
	fxid = FullTransactionIdFromU64(x);
	xid = XidFromFullTransactionId(fxid);
	next = ReadNextFullTransactionId();
	if (!FullTransactionIdPrecedes(fxid, next) ||
		U64FromFullTransactionId(next) - x > (uint64) (MaxTransactionId / 4))
		return false;
	if (TransactionIdIsCurrentTransactionId(xid))
		return true;
	if (TransactionIdIsInProgress(xid))
		return false;
	/* As pg_xact_status does: the status must not be truncated meanwhile. */
	LWLockAcquire(XactTruncationLock, LW_SHARED);
	ok = !TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid) &&
		TransactionIdDidCommit(xid);
	LWLockRelease(XactTruncationLock);
	if (ok)
		known_committed = x;
	return ok;
}

/*
 * Is x, a lease lookup_lease_valid accepted, committed for good?  Only this
 * transaction's own lease is valid without being committed.
 */
static bool
lookup_lease_settled(uint64 x)
{
	return x != 0 &&
		!TransactionIdIsCurrentTransactionId(XidFromFullTransactionId(FullTransactionIdFromU64(x)));
}

/*
 * A hash of the settings that shape how a result is written as text (and so
 * as jsonb): a value computed under other settings means something else.
 * Recomputed only when one of them changed.
 */
static uint64
lookup_settings_hash(void)
{
	static const pg_tz *tz = NULL;
	static int	ints[5];
	static const char *mon = NULL,
			   *num = NULL;
	static uint64 h = 0;
	int			now[5] = {DateStyle, DateOrder, IntervalStyle, extra_float_digits, bytea_output};

	if (h == 0 || tz != session_timezone || memcmp(now, ints, sizeof(ints)) != 0 ||
		mon != locale_monetary || num != locale_numeric)
	{
		const char *tzname = session_timezone ? pg_get_timezone_name(session_timezone) : "";

		tz = session_timezone;
		memcpy(ints, now, sizeof(ints));
		mon = locale_monetary;
		num = locale_numeric;
		h = hash_bytes_extended((const unsigned char *) ints, sizeof(ints), 0x5e7);
		h ^= hash_bytes_extended((const unsigned char *) tzname, strlen(tzname), 0x747a) * 3;
		h ^= hash_bytes_extended((const unsigned char *) (mon ? mon : ""), mon ? strlen(mon) : 0, 0x6d6f) * 5;
		h ^= hash_bytes_extended((const unsigned char *) (num ? num : ""), num ? strlen(num) : 0, 0x6e75) * 11;
		if (h == 0)
			h = 1;
	}
	return h;
}

/* The names behind lookup_settings_hash, for whoever must reproduce them. */
const char *const mlcache_result_settings[MLCACHE_NRESULT_SETTINGS] = {
	"TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits", "bytea_output",
	"lc_monetary", "lc_numeric"
};

/*
 * The current values of mlcache_result_settings, as a text[] in that order:
 * queued warming stores them, so that the worker computes what the session
 * that asked for it would read.
 */
Datum
mlcache_result_settings_values(void)
{
	Datum		vals[MLCACHE_NRESULT_SETTINGS];
	int			i;

	for (i = 0; i < MLCACHE_NRESULT_SETTINGS; i++)
		vals[i] = CStringGetTextDatum(GetConfigOption(mlcache_result_settings[i], false, false));
	return PointerGetDatum(construct_array(vals, MLCACHE_NRESULT_SETTINGS, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * The fingerprint a read really looks for: the source's, with the settings
 * that shape results and the names of the settings it varies on.
 */
static uint64
lookup_read_fingerprint(const MlcacheSource *src)
{
	uint64		h = src->fingerprint ^ lookup_settings_hash();
	int			i;

	for (i = 0; i < src->nvary; i++)
		h ^= hash_bytes_extended((const unsigned char *) src->vary[i], strlen(src->vary[i]),
								 0x7661 + i) * 13;
	return h == 0 ? 1 : h;
}

/*
 * vary_on: append the named settings' current values to the key, so that
 * each combination has a value of its own.  The generation slots stay those
 * of the key as given, so its invalidations reach every variant.  The
 * separator is a control character, which no caller's key may contain.
 * Settings the caller may not read raise the usual error.
 */
static void
lookup_vary_key(MlcacheKey *k, const MlcacheSource *src)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, k->key, k->keylen);
	for (i = 0; i < src->nvary; i++)
	{
		const char *v = GetConfigOption(src->vary[i], true, true);

		appendStringInfo(&buf, "\x1f%s", src->vary[i]);
		if (v != NULL)
			appendStringInfo(&buf, "=%d:%s", (int) strlen(v), v);
	}
	k->key = buf.data;
	k->keylen = buf.len;
	k->rkey = NULL;
	k->rkeylen = 0;
}

static TimestampTz
ttl_deadline(TimestampTz now, int ttl_s)
{
	return now + (TimestampTz) ttl_s * USECS_PER_SEC;
}

/*
 * Write a value to L2 under stamp; Redis trouble is only counted.  With
 * stale-while-revalidate the Redis copy outlives its logical expiry by
 * max_stale seconds, so that it can still be served stale.
 */
static void
l2_store(MlcacheKey *k, Jsonb *value, const MlcacheStamp *stamp, int max_stale)
{
	MlcacheEnvelope env;
	Size		len;
	char	   *buf;
	int64		ttl_ms = (stamp->expires_at - GetCurrentTimestamp()) / 1000 +
		(int64) max_stale * 1000;

	env.epoch = mlcache_shared->epoch;
	env.token = stamp->token;
	env.dbid = MyDatabaseId;
	env.roleid = stamp->roleid;
	env.fingerprint = stamp->fingerprint;
	env.computed_at = stamp->computed_at;
	env.expires_at = stamp->expires_at;
	env.compute_us = stamp->compute_us;
	env.max_stale = (uint32) Max(max_stale, 0);
	env.xid = stamp->xid;
	env.key = k->key;
	env.keylen = k->keylen;
	env.value = value;
	buf = mlcache_envelope_encode(&env, &len);
	if (len > (Size) mlcache_max_value_size * 1024)
		mlcache_count(MLC_TOO_LARGE);
	else if (ttl_ms > 0)
	{
		const char *rkey = mlcache_key_rkey(k);

		(void) mlcache_l2_set(rkey, k->rkeylen, buf, len, ttl_ms);
	}
	pfree(buf);
}

/* Store a value in the levels whose TTL is positive. */
static void
lookup_store(MlcacheKey *k, Jsonb *value, MlcacheStamp stamp, int l1_ttl, int l2_ttl,
			 int max_stale)
{
	TimestampTz now = GetCurrentTimestamp();

	if (VARSIZE(value) > (Size) mlcache_max_value_size * 1024)
	{
		mlcache_count(MLC_TOO_LARGE);
		return;
	}
	if (l2_ttl > 0)
	{
		stamp.expires_at = ttl_deadline(now, l2_ttl);
		l2_store(k, value, &stamp, max_stale);
	}
	if (l1_ttl > 0)
	{
		stamp.expires_at = ttl_deadline(now, l1_ttl);
		mlcache_l1_put(k, value, &stamp);
	}
}

/*
 * XFetch (probabilistic early recomputation, opt-in): recompute a valid value
 * before it expires with a probability that rises as expiry nears and with
 * how long it takes to compute: when now - compute_time * beta * ln(U) is
 * past the expiry, U uniform in (0, 1].
 */
static bool
xfetch_due(const MlcacheStamp *s, const MlcacheSource *src)
{
	double		u;

	if (src->beta <= 0)
		return false;
	u = pg_prng_double(&pg_global_prng_state);
	if (u <= 0)
		u = 1e-12;
	return (double) GetCurrentTimestamp() - (double) Max(s->compute_us, 1) * src->beta * log(u)
		>= (double) s->expires_at;
}

/* Try L1.  Returns a copy of the value on a valid hit, else NULL. */
static Jsonb *
lookup_l1(const MlcacheKey *k, uint64 token, const MlcacheSource *src)
{
	MlcacheStamp stamp;
	Jsonb	   *v = mlcache_l1_get(k, &stamp);

	if (v != NULL && stamp_matches(&stamp, token, src) && !lookup_lease_valid(stamp.xid))
	{
		mlcache_count(MLC_LEASE_REJECTED);
		mlcache_l1_remove(k);
		mlcache_count(MLC_L1_MISS);
		return NULL;
	}
	if (v != NULL && stamp_matches(&stamp, token, src) && xfetch_due(&stamp, src))
	{
		mlcache_count(MLC_XFETCH_EARLY);
		mlcache_count(MLC_L1_MISS);
		return NULL;
	}
	if (v != NULL && stamp_matches(&stamp, token, src))
	{
		mlcache_count(MLC_L1_HIT);
		return copy_jsonb(v);
	}
	if (v != NULL)
	{
		if (stamp.token != token)
			mlcache_count(MLC_STALE_REJECTED);
		mlcache_l1_remove(k);
	}
	mlcache_count(MLC_L1_MISS);
	return NULL;
}

/*
 * Try Redis.  A value is accepted only if it is a well-formed envelope for
 * this server life (epoch), database, key, role and query, under the current
 * token, and not past its expiry.  On a hit L1 is filled if l1_ttl > 0.
 *
 * With stale-while-revalidate (src->max_stale > 0), a value that fails only
 * the token or the expiry is returned in *stale instead, if it was computed
 * at most max_stale seconds ago (so it is at most that long past its
 * invalidation) or expired at most max_stale seconds ago.  XFetch likewise
 * turns a valid value due for early recomputation into a stale candidate.
 */
static Jsonb *
lookup_l2(MlcacheKey *k, uint64 token, const MlcacheSource *src, int l1_ttl, Jsonb **stale)
{
	char	   *buf;
	Size		len;
	MlcacheEnvelope env;
	MlcacheStamp stamp;
	TimestampTz now;
	const char *rkey = mlcache_key_rkey(k);

	if (mlcache_l2_get(rkey, k->rkeylen, &buf, &len) != L2_OK)
	{
		mlcache_count(MLC_L2_MISS);
		return NULL;
	}
	if (!mlcache_envelope_decode(buf, len, &env) ||
		env.epoch != mlcache_shared->epoch || env.dbid != MyDatabaseId ||
		env.keylen != k->keylen || memcmp(env.key, k->key, k->keylen) != 0)
	{
		mlcache_count(MLC_DECODE_FAILED);
		mlcache_count(MLC_L2_MISS);
		return NULL;
	}
	now = GetCurrentTimestamp();
	stamp.token = env.token;
	stamp.roleid = env.roleid;
	stamp.fingerprint = env.fingerprint;
	stamp.computed_at = env.computed_at;
	stamp.compute_us = env.compute_us;
	stamp.expires_at = Min(env.expires_at, ttl_deadline(now, l1_ttl));
	stamp.xid = env.xid;
	if (!lookup_lease_valid(env.xid))
	{
		/* Written by a transaction that has not committed, or never will. */
		mlcache_count(MLC_LEASE_REJECTED);
		mlcache_count(MLC_L2_MISS);
		return NULL;
	}
	if (lookup_lease_settled(stamp.xid))
		stamp.xid = 0;
	if (stamp_matches(&stamp, token, src) && env.expires_at > now && xfetch_due(&stamp, src))
	{
		mlcache_count(MLC_XFETCH_EARLY);
		mlcache_count(MLC_L2_MISS);
		if (stale)
			*stale = env.value;
		return NULL;
	}
	if (!stamp_matches(&stamp, token, src) || env.expires_at <= now)
	{
		if (env.token != token)
			mlcache_count(MLC_STALE_REJECTED);
		mlcache_count(MLC_L2_MISS);
		if (stale && src->max_stale > 0 && env.roleid == src->roleid &&
			(env.fingerprint == src->fingerprint || env.fingerprint == 0) &&
			(env.token == token
			 ? now - env.expires_at <= (TimestampTz) src->max_stale * USECS_PER_SEC
			 : now - env.computed_at <= (TimestampTz) src->max_stale * USECS_PER_SEC))
			*stale = env.value;
		return NULL;
	}
	mlcache_count(MLC_L2_HIT);
	if (l1_ttl > 0)
		mlcache_l1_put(k, env.value, &stamp);
	return env.value;
}

/*
 * Store a value that src produced under token, unless a commit invalidated
 * the key meanwhile.
 */
static void
lookup_fill(MlcacheKey *k, const MlcacheSource *src, Jsonb *value, uint64 token,
			MlcacheStamp stamp, int l1_ttl, int l2_ttl)
{
	if (mlcache_key_token(k) != token || !mlcache_wal_may_store(k))
	{
		mlcache_count(MLC_REJECTED_FILL);
		return;
	}
	stamp.token = token;
	stamp.roleid = src->roleid;
	stamp.fingerprint = src->fingerprint;
	stamp.xid = lookup_lease_xid();
	lookup_store(k, value, stamp, l1_ttl, l2_ttl, src->max_stale);
}

/* Keys this backend is computing right now, to refuse recursion. */
#define MAX_COMPUTE_DEPTH 16
static uint64 computing[MAX_COMPUTE_DEPTH];
static int	ncomputing = 0;

/*
 * The single-flight lock of a key: an advisory lock (field 4 = 3, apart from
 * the user-visible advisory lock spaces 1 and 2) on a 64-bit hash of the
 * namespace and key.  Two keys with the same hash share a lock: they then
 * fill one after the other, which costs time, never correctness.
 */
static void
lookup_fill_locktag(LOCKTAG *tag, uint64 h)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h, 3);
}

typedef struct WaitFillArgs
{
	const LOCKTAG *tag;
	int			timeout_ms;
} WaitFillArgs;

/* Inside lookup_wait_fill's subtransaction: take the lock, then let it go. */
static void
lookup_wait_fill_cb(void *arg)
{
	WaitFillArgs *a = arg;
	int			nest = NewGUCNestLevel();
	char		ms[32];

	snprintf(ms, sizeof(ms), "%d", Max(a->timeout_ms, 1));
	(void) set_config_option("lock_timeout", ms, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) LockAcquire(a->tag, ExclusiveLock, false, false);
	LockRelease(a->tag, ExclusiveLock, false);
	AtEOXact_GUC(true, nest);
}

/*
 * Wait until the backend filling the same key is done, at most timeout_ms.
 * The wait is a real lock wait, so it is interruptible, deadlock-detected,
 * and shows in pg_locks; the lock is released again at once, inside the
 * subtransaction that bounds the wait.  Returns false if the wait timed out.
 * Other errors (cancel, statement_timeout, deadlock) propagate.
 */
static bool
lookup_wait_fill(const LOCKTAG *tag, int timeout_ms)
{
	WaitFillArgs a = {tag, timeout_ms};
	ErrorData  *edata = mlcache_subxact(lookup_wait_fill_cb, &a);

	if (edata == NULL)
		return true;
	if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
		ReThrowError(edata);
	FreeErrorData(edata);
	return false;
}

typedef enum FillTurn
{
	FILL_MINE,					/* we hold the lock: compute and store */
	FILL_DONE,					/* another backend filled it: *value */
	FILL_NOT_STORED,			/* the filler is done but Redis has no value:
								 * compute and store, without the lock */
	FILL_GAVE_UP				/* waited too long: compute, do not store */
} FillTurn;

/*
 * Single-flight (G7): only one backend computes a missing key; the others
 * wait for it and re-check Redis.  Only used when the value goes to Redis,
 * since waiters can read nothing else.  If the filler is done and Redis
 * still has no value (Redis refused it, it was too large, the filler failed
 * or an invalidation overtook it), the waiters compute on their own at once
 * rather than one after another.  The wait is bounded by
 * mlcache.fill_wait_timeout.
 */
static FillTurn
lookup_fill_turn(MlcacheKey *k, uint64 h, uint64 token, const MlcacheSource *src,
				 int l1_ttl, LOCKTAG *tag, Jsonb **value)
{
	lookup_fill_locktag(tag, h);
	if (LockAcquireExtended(tag, ExclusiveLock, false, true, false, NULL) != LOCKACQUIRE_NOT_AVAIL)
		return FILL_MINE;
	mlcache_count(MLC_FILL_WAIT);
	elog(DEBUG1, "mlcache: waiting for another backend to fill \"%s\"", k->key);
	if (!lookup_wait_fill(tag, mlcache_fill_wait_timeout))
	{
		mlcache_count(MLC_FILL_WAIT_TIMEOUT);
		return FILL_GAVE_UP;
	}
	if ((*value = lookup_l2(k, token, src, l1_ttl, NULL)) != NULL)
		return FILL_DONE;
	return FILL_NOT_STORED;
}

/*
 * Compute src's value, refusing to recurse into a key this backend is
 * already computing (its query reading the same key again would never end).
 */
static Jsonb *
lookup_compute(const MlcacheKey *k, uint64 h, const MlcacheSource *src, int64 *us, bool *rls)
{
	Jsonb	   *volatile value = NULL;
	int			i;
	bool		outer;
	volatile bool seen = false;

	for (i = 0; i < ncomputing; i++)
		if (computing[i] == h)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_RECURSION),
					 errmsg("cache key \"%s\" is read again while its value is being computed", k->key),
					 errhint("The query behind a key must not read that same key.")));
	if (ncomputing >= MAX_COMPUTE_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
				 errmsg("cache reads are nested more than %d deep", MAX_COMPUTE_DEPTH)));
	computing[ncomputing++] = h;
	outer = mlcache_rls_watch_begin();
	PG_TRY();
	{
		value = src->compute(src->arg, us);
	}
	PG_FINALLY();
	{
		ncomputing--;
		seen = mlcache_rls_watch_end(outer);
	}
	PG_END_TRY();
	if (rls)
		*rls = seen;
	return value;
}

/*
 * Read a key through the levels: L1, Redis, then src's L3 if it has one,
 * then src's computation.  This is the whole of get() and fetch() once their
 * arguments are checked.
 */
Jsonb *
mlcache_lookup_read(MlcacheKey *k, const MlcacheSource *src, int l1_ttl, int l2_ttl)
{
	MlcacheStamp stamp;
	uint64		token;
	uint64		h;
	Jsonb	   *value;
	FillTurn	turn;
	LOCKTAG		tag;
	Jsonb	   *stale;
	MlcacheSource read_src;
	uint64		stats_fingerprint = src->fingerprint;
	bool		rls = false;
	const char *why;

	/* On a standby: bump what the commits replayed so far invalidate. */
	mlcache_wal_resolve();
	why = lookup_bypass_reason(k);
	if (why != NULL)
	{
		int64		us;

		mlcache_count(MLC_BYPASS);
		elog(DEBUG1, "mlcache: reading \"%s\" around the cache: %s", k->key, why);
		last_level = "compute";
		h = mlcache_key_hash(k);
		mlcache_track(k, h, false);
		return lookup_compute(k, h, src, &us, NULL);
	}

	read_src = *src;
	read_src.fingerprint = lookup_read_fingerprint(src);
	src = &read_src;
	if (src->nvary > 0)
		lookup_vary_key(k, src);
	token = mlcache_key_token(k);
	h = mlcache_key_hash(k);
	if (l1_ttl > 0 && (value = lookup_l1(k, token, src)) != NULL)
	{
		elog(DEBUG1, "mlcache: L1 hit for \"%s\"", k->key);
		last_level = "l1";
		mlcache_track(k, h, true);
		return value;
	}
	stale = NULL;
	if (l2_ttl > 0 && (value = lookup_l2(k, token, src, l1_ttl, &stale)) != NULL)
	{
		elog(DEBUG1, "mlcache: L2 hit for \"%s\"", k->key);
		last_level = "l2";
		mlcache_track(k, h, true);
		return value;
	}

	turn = FILL_MINE;
	if (stale != NULL)
	{
		/*
		 * Stale-while-revalidate: whoever gets the fill lock recomputes; while
		 * someone does, the others serve the stale value rather than wait.
		 */
		lookup_fill_locktag(&tag, h);
		if (LockAcquireExtended(&tag, ExclusiveLock, false, true, false, NULL) == LOCKACQUIRE_NOT_AVAIL)
		{
			mlcache_count(MLC_STALE_SERVED);
			elog(DEBUG1, "mlcache: serving \"%s\" stale while another backend recomputes", k->key);
			last_level = "stale";
			mlcache_track(k, h, true);
			return stale;
		}
	}
	else if (l2_ttl > 0 && !mlcache_l2_breaker_open())
		turn = lookup_fill_turn(k, h, token, src, l1_ttl, &tag, &value);
	else
		turn = FILL_NOT_STORED;		/* nothing to wait for: Redis is skipped */
	if (turn == FILL_DONE)
	{
		last_level = "l2";
		mlcache_track(k, h, true);
		return value;
	}

	stamp.computed_at = GetCurrentTimestamp();
	stamp.compute_us = 0;
	value = NULL;
	if (src->l3 != NULL && (value = src->l3(src->arg)) != NULL)
	{
		mlcache_count(MLC_L3_HIT);
		elog(DEBUG1, "mlcache: L3 hit for \"%s\"", k->key);
		last_level = "l3";
		mlcache_track(k, h, true);
	}
	else
	{
		if (src->l3 != NULL)
			mlcache_count(MLC_L3_MISS);
		elog(DEBUG1, "mlcache: miss for \"%s\", computing", k->key);
		value = lookup_compute(k, h, src, &stamp.compute_us, &rls);
		mlcache_stats_record_compute(stats_fingerprint, stamp.compute_us);
		mlcache_count(MLC_COMPUTE);
		last_level = "compute";
		mlcache_track(k, h, false);
	}
	if (rls && src->nvary == 0)
	{
		/* Its rows depend on who reads and on settings the key does not show. */
		mlcache_count(MLC_RLS_UNCACHED);
		elog(DEBUG1, "mlcache: not storing \"%s\": row-level security applied", k->key);
	}
	else if (turn == FILL_MINE || turn == FILL_NOT_STORED)
		lookup_fill(k, src, value, token, stamp, l1_ttl, l2_ttl);
	if (turn == FILL_MINE && l2_ttl > 0)
		LockRelease(&tag, ExclusiveLock, false);
	return value;
}

/* get()'s source: its query, run as the caller. */
static Jsonb *
lookup_compute_query(void *arg, int64 *compute_us)
{
	return mlcache_compute((const char *) arg, compute_us);
}

/*
 * vary_on's setting names from a text[] argument: non-null, at most
 * MLCACHE_MAX_VARY.  *n receives how many.
 */
#define MLCACHE_MAX_VARY 16

static const char *const *
lookup_vary_arg(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **names;
	int			i;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	if (*n > MLCACHE_MAX_VARY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vary_on names %d settings; the limit is %d", *n, MLCACHE_MAX_VARY)));
	names = palloc(sizeof(char *) * Max(*n, 1));
	for (i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("vary_on must not contain null")));
		names[i] = TextDatumGetCString(elems[i]);
		if (names[i][0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("vary_on must not contain an empty setting name")));
	}
	return (const char *const *) names;
}

/*
 * get() with its first nargs arguments (key, query, l1_ttl, l2_ttl,
 * max_stale, beta; trailing ones may be absent) and vary_on's names.
 */
static Datum
lookup_get(FunctionCallInfo fcinfo, int nargs, const char *const *vary, int nvary)
{
	MlcacheKey	k;
	MlcacheSource src;
	char	   *query;
	int			l1_ttl,
				l2_ttl;

	mlcache_key_arg(fcinfo, &k);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cache query must not be null")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	l1_ttl = nargs > 2 ? mlcache_ttl_arg(fcinfo, 2, "l1_ttl", mlcache_l1_ttl) : mlcache_l1_ttl;
	l2_ttl = nargs > 3 ? mlcache_ttl_arg(fcinfo, 3, "l2_ttl", mlcache_l2_ttl) : mlcache_l2_ttl;
	src.fingerprint = mlcache_fingerprint("get", query);
	src.roleid = GetUserId();
	src.compute = lookup_compute_query;
	src.l3 = NULL;
	src.arg = query;
	src.max_stale = nargs > 4 ? mlcache_ttl_arg(fcinfo, 4, "max_stale", 0) : 0;
	src.beta = (nargs > 5 && !PG_ARGISNULL(5)) ? PG_GETARG_FLOAT8(5) : 0;
	src.nvary = nvary;
	src.vary = vary;
	if (src.beta < 0 || isnan(src.beta))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("beta must not be negative"),
				 errdetail("0 turns XFetch early recomputation off; 1 is its usual strength.")));
	PG_RETURN_JSONB_P(mlcache_lookup_read(&k, &src, l1_ttl, l2_ttl));
}

PG_FUNCTION_INFO_V1(mlcache_get);

/* mlcache.get(key, query [, l1_ttl [, l2_ttl [, max_stale [, beta]]]]) RETURNS jsonb */
Datum
mlcache_get(PG_FUNCTION_ARGS)
{
	return lookup_get(fcinfo, PG_NARGS(), NULL, 0);
}

PG_FUNCTION_INFO_V1(mlcache_get_vary);

/*
 * mlcache.get(key, query, vary_on) and
 * mlcache.get(key, query, l1_ttl, l2_ttl, max_stale, beta, vary_on):
 * vary_on (text[], last) names settings whose values join the key.
 */
Datum
mlcache_get_vary(PG_FUNCTION_ARGS)
{
	int			last = PG_NARGS() - 1;
	const char *const *vary = NULL;
	int			nvary = 0;

	if (!PG_ARGISNULL(last))
		vary = lookup_vary_arg(PG_GETARG_ARRAYTYPE_P(last), &nvary);
	return lookup_get(fcinfo, last, vary, nvary);
}

PG_FUNCTION_INFO_V1(mlcache_last_level);

/* mlcache.last_level(): l1, l2, l3 or compute; NULL before the first read. */
Datum
mlcache_last_level(PG_FUNCTION_ARGS)
{
	mlcache_require_loaded();
	if (last_level == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(last_level));
}

PG_FUNCTION_INFO_V1(mlcache_set);

/*
 * mlcache.set(key, value, l1_ttl, l2_ttl): store a value.  Like an
 * invalidation it takes effect when the transaction commits (just before,
 * at PRE_COMMIT, since it does I/O), so an aborted transaction stores
 * nothing.  The value is stamped with the token current at the call: a
 * commit that invalidates the key in between makes it unreadable.
 */
Datum
mlcache_set(PG_FUNCTION_ARGS)
{
	MlcacheKey	k;
	PendingSet *ps;
	MemoryContext old;

	mlcache_key_arg(fcinfo, &k);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cache value must not be null"),
				 errhint("Store the JSON null, 'null'::jsonb, instead.")));
	old = MemoryContextSwitchTo(TopTransactionContext);
	ps = palloc(sizeof(PendingSet));
	ps->l1_ttl = mlcache_ttl_arg(fcinfo, 2, "l1_ttl", mlcache_l1_ttl);
	ps->l2_ttl = mlcache_ttl_arg(fcinfo, 3, "l2_ttl", mlcache_l2_ttl);
	ps->key = pnstrdup(k.key, k.keylen);
	ps->keylen = k.keylen;
	ps->value = copy_jsonb(PG_GETARG_JSONB_P(1));
	ps->stamp.token = mlcache_key_token(&k);
	ps->stamp.roleid = GetUserId();
	ps->stamp.fingerprint = 0;
	ps->stamp.computed_at = GetCurrentTimestamp();
	ps->stamp.compute_us = 0;
	/* A lease: readable once this (sub)transaction has committed. */
	ps->stamp.xid = RecoveryInProgress() ? 0 :
		U64FromFullTransactionId(GetCurrentFullTransactionId());
	ps->level = GetCurrentTransactionNestLevel();
	pending_sets = lappend(pending_sets, ps);
	MemoryContextSwitchTo(old);
	PG_RETURN_VOID();
}

/*
 * PRE_COMMIT: perform the transaction's set() calls, in order.  A key the
 * transaction also invalidates is not stored: the invalidation wins.
 */
static void
lookup_flush_sets(void)
{
	ListCell   *lc;

	foreach(lc, pending_sets)
	{
		PendingSet *ps = lfirst(lc);
		MlcacheKey	k;

		mlcache_key_init(&k, ps->key, ps->keylen);
		if (!mlcache_enabled || RecoveryInProgress() || mlcache_inval_touches(&k))
		{
			mlcache_count(MLC_BYPASS);
			continue;
		}
		mlcache_count(MLC_SETS);
		lookup_store(&k, ps->value, ps->stamp, ps->l1_ttl, ps->l2_ttl, 0);
	}
	pending_sets = NIL;
}

static void
lookup_reset_sets(void)
{
	pending_sets = NIL;
}

/* A subtransaction at level aborted: forget its sets. */
static void
lookup_discard_sets(int level)
{
	ListCell   *lc;

	foreach(lc, pending_sets)
	{
		PendingSet *ps = lfirst(lc);

		if (ps->level >= level)
			pending_sets = foreach_delete_current(pending_sets, lc);
	}
}

/* A subtransaction at level committed: its sets belong to its parent. */
static void
lookup_promote_sets(int level)
{
	ListCell   *lc;

	foreach(lc, pending_sets)
	{
		PendingSet *ps = lfirst(lc);

		if (ps->level >= level)
			ps->level = level - 1;
	}
}


/*
 * The transaction's set() calls: performed at PRE_COMMIT, forgotten at the
 * end of the transaction, refused by PREPARE TRANSACTION.
 *
 * Order with invalidate.c's callback.  PostgreSQL calls xact callbacks in
 * reverse registration order (xact.c: RegisterXactCallback prepends,
 * CallXactCallbacks walks from the head), and _PG_init registers this one
 * before invalidate.c's, so within each event it runs after that one, as
 * the single callback of invalidate.c did before.  The order does not
 * matter anyway: the sets are flushed at PRE_COMMIT and consult the pending
 * invalidations (mlcache_inval_touches), which invalidate.c resets only at
 * COMMIT, ABORT or PREPARE, events that PostgreSQL raises for every callback
 * after PRE_COMMIT has been raised for all of them.  At PRE_PREPARE both
 * callbacks refuse with the same error, so pending invalidations or pending
 * sets stop a PREPARE whichever runs first.
 */
static void
lookup_xact_callback(XactEvent event, void *arg)
{
	if (mlcache_shared == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			lookup_flush_sets();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			lookup_reset_sets();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (list_length(pending_sets) > 0)
				mlcache_inval_refuse_prepare();
			break;
		default:
			break;
	}
}

/*
 * Drop what an aborted subtransaction set; hand a committed one's up.  The
 * sets are independent of invalidate.c's pending targets, so the order of
 * the two subtransaction callbacks does not matter.
 */
static void
lookup_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_ABORT_SUB)
		lookup_discard_sets(level);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		lookup_promote_sets(level);
}

/*
 * Register the callbacks; called from _PG_init while preloading, before
 * mlcache_inval_init (see lookup_xact_callback for why the order is safe).
 */
void
mlcache_lookup_init(void)
{
	RegisterXactCallback(lookup_xact_callback, NULL);
	RegisterSubXactCallback(lookup_subxact_callback, NULL);
}
