/*
 * track.c
 *	  Per-key hit and miss counts over the last 24 hours, in hourly buckets
 *	  kept in shared memory.
 *
 * A shared hash table of at most mlcache.track_max keys.  Each entry has 24
 * buckets, one per hour of the day, each tagged with the hour it counts, so
 * a bucket left from a previous day is recognised and restarted.  When the
 * table is full, a new key evicts the 5% of entries with the fewest reads in
 * the last 24 hours.  Nothing here touches Redis.
 *
 * A read does not touch shared memory: it is counted in a backend-local
 * table (pending), which is added to the shared one in one pass (the lock
 * taken shared per key, exclusively for a key not yet tracked), at the end
 * of the first transaction that ends mlcache.track_flush_interval or more
 * after the oldest count in it, when it holds TRACK_PENDING_MAX keys, when
 * the hour changes, when a count would wrap, before this backend reads the
 * table (key_stats, tracking_sweep) and when the backend exits.  So backends
 * reading the same hot key do not contend on the lock and the key's
 * spinlock at each hit; other backends' reads show in key_stats once they
 * are flushed.
 *
 * Locking (see the table in shmem.c): track_shared->lock (the LWLock of
 * tranche "mlcache tracking") in shared mode to look entries up and count,
 * exclusive to insert, evict or sweep; each entry's counters are protected
 * by its spinlock, taken under track_shared->lock held shared (holding it
 * exclusively excludes every spinlock holder).  A test-only hour offset
 * (_tracking_advance) is an atomic, read without a lock.
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "envelope.h"
#include "guc.h"
#include "keys.h"
#include "l2_redis.h"
#include "shmem.h"
#include "track.h"

#define TRACK_HOURS		24
#define TRACK_KEY_LEN	200		/* longer keys are shown cut */

typedef struct TrackKey
{
	Oid			dbid;
	uint64		hash;			/* of the namespace and key */
} TrackKey;

typedef struct TrackEntry
{
	TrackKey	key;			/* hash key: must be first */
	slock_t		mutex;
	char		text[TRACK_KEY_LEN + 1];
	int64		hour[TRACK_HOURS];	/* the hour each bucket counts */
	uint32		hits[TRACK_HOURS];
	uint32		misses[TRACK_HOURS];
} TrackEntry;

typedef struct TrackShared
{
	LWLock	   *lock;
	pg_atomic_uint64 hour_offset;	/* test-only: hours added to the clock */
} TrackShared;

static TrackShared *track_shared = NULL;
static HTAB *track_table = NULL;

/* This backend's reads not yet added to the shared table. */
#define TRACK_PENDING_MAX 1024

typedef struct TrackPending
{
	TrackKey	key;			/* hash key: must be first */
	uint32		hits;
	uint32		misses;
	char		text[TRACK_KEY_LEN + 1];
} TrackPending;

static HTAB *pending = NULL;	/* in TopMemoryContext */
static TrackPending *pending_last = NULL;	/* the entry counted last */
static int64 pending_hour;		/* the hour all pending counts belong to */
static TimestampTz pending_since = 0;	/* of the oldest pending count; 0: none */
static bool pending_flushing = false;
static bool pending_exit_registered = false;

Size
mlcache_track_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(TrackShared)),
					hash_estimate_size(mlcache_track_max, sizeof(TrackEntry)));
}

void
mlcache_track_shmem_request(void)
{
	RequestNamedLWLockTranche("mlcache tracking", 1);
}

/* Called with AddinShmemInitLock held. */
void
mlcache_track_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	track_shared = ShmemInitStruct("mlcache tracking", sizeof(TrackShared), &found);
	if (!found)
	{
		track_shared->lock = &(GetNamedLWLockTranche("mlcache tracking"))->lock;
		pg_atomic_init_u64(&track_shared->hour_offset, 0);
	}
	info.keysize = sizeof(TrackKey);
	info.entrysize = sizeof(TrackEntry);
	/* Fixed size: never more than track_max entries (see track_flush_one). */
	track_table = ShmemInitHash("mlcache tracking table", mlcache_track_max, mlcache_track_max,
								&info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

/*
 * The hour number of ts, shifted by the test-only offset.  hour_offset is an
 * atomic: no lock.
 */
static int64
track_hour_of(TimestampTz ts)
{
	return ts / USECS_PER_HOUR + (int64) pg_atomic_read_u64(&track_shared->hour_offset);
}

/* The current hour number, shifted by the test-only offset. */
static int64
track_hour(void)
{
	return track_hour_of(GetCurrentTimestamp());
}

/*
 * The time a read is counted at: a client backend uses its transaction's
 * start, which PostgreSQL has already read (hours are all that matter here),
 * other processes the clock.  The transaction's, not the statement's: a
 * procedure that commits in a loop is one statement for hours, but each of
 * its transactions starts at the time it began.
 */
static TimestampTz
track_now(void)
{
	TimestampTz ts = (MyBackendType == B_BACKEND) ? GetCurrentTransactionStartTimestamp() : 0;

	return ts != 0 ? ts : GetCurrentTimestamp();
}

/*
 * Reads of an entry in the last 24 hours.  Caller holds its spinlock, or
 * track_shared->lock exclusively (which no holder of an entry's spinlock
 * can hold at the same time: they all hold it shared).
 */
static uint64
track_total(const TrackEntry *e, int64 now)
{
	uint64		sum = 0;
	int			i;

	for (i = 0; i < TRACK_HOURS; i++)
		if (e->hour[i] > now - TRACK_HOURS)
			sum += e->hits[i] + e->misses[i];
	return sum;
}

static int
track_cmp_u64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/*
 * Make room: evict the 5% of entries read least in the last 24 hours (at
 * least one); without memory for the counts, evict nothing (the new key is
 * then not tracked).  Evicting in batches keeps a stream of new keys from
 * scanning the whole table for each one, which made every read of an
 * untracked key cost O(track_max) once the table was full.  Caller holds
 * track_shared->lock exclusively.
 */
static void
track_evict(int64 now)
{
	long		n = hash_get_num_entries(track_table);
	long		nevict = Max(n / 20, 1);
	long		i = 0;
	long		below;
	uint64	   *totals;
	uint64		threshold;
	HASH_SEQ_STATUS seq;
	TrackEntry *e;

	if (n == 0)
		return;
	/* No ERROR here: this runs in the commit callback (track_flush). */
	totals = palloc_extended(sizeof(uint64) * n, MCXT_ALLOC_NO_OOM);
	if (totals == NULL)
		return;
	hash_seq_init(&seq, track_table);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (i < n)
			totals[i++] = track_total(e, now);
	n = i;
	qsort(totals, n, sizeof(uint64), track_cmp_u64);
	threshold = totals[Min(nevict, n) - 1];
	/* Everything below the threshold goes, then entries at it until nevict. */
	for (below = 0; below < n && totals[below] < threshold; below++)
		;
	pfree(totals);
	nevict -= below;
	hash_seq_init(&seq, track_table);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		uint64		t = track_total(e, now);

		if (t < threshold || (t == threshold && nevict-- > 0))
			hash_search(track_table, &e->key, HASH_REMOVE, NULL);
	}
}

/*
 * Add hits and misses of hour `hour` to e, unless its bucket already counts
 * a later hour (a count that waited in a backend past a whole day).  Caller
 * holds track_shared->lock (any mode); takes e->mutex.
 */
static void
track_add(TrackEntry *e, int64 hour, uint32 hits, uint32 misses)
{
	int			b = (int) (hour % TRACK_HOURS);

	SpinLockAcquire(&e->mutex);
	if (e->hour[b] < hour)
	{
		e->hour[b] = hour;
		e->hits[b] = 0;
		e->misses[b] = 0;
	}
	if (e->hour[b] == hour)
	{
		e->hits[b] += hits;
		e->misses[b] += misses;
	}
	SpinLockRelease(&e->mutex);
}

/*
 * Add one pending entry to the shared table.  Takes track_shared->lock
 * shared (exclusive to insert or evict), then the entry's spinlock.
 */
static void
track_flush_one(const TrackPending *p, int64 hour, int64 now)
{
	TrackEntry *e;
	bool		found;

	LWLockAcquire(track_shared->lock, LW_SHARED);
	e = hash_search(track_table, &p->key, HASH_FIND, NULL);
	if (e != NULL)
	{
		track_add(e, hour, p->hits, p->misses);
		LWLockRelease(track_shared->lock);
		return;
	}
	LWLockRelease(track_shared->lock);

	LWLockAcquire(track_shared->lock, LW_EXCLUSIVE);
	e = hash_search(track_table, &p->key, HASH_FIND, NULL);
	if (e == NULL && hash_get_num_entries(track_table) >= mlcache_track_max)
		track_evict(now);
	e = hash_search(track_table, &p->key, HASH_ENTER_NULL, &found);
	if (e != NULL)
	{
		if (!found)
		{
			SpinLockInit(&e->mutex);
			memset(e->hour, 0, sizeof(e->hour));
			memset(e->hits, 0, sizeof(e->hits));
			memset(e->misses, 0, sizeof(e->misses));
			strlcpy(e->text, p->text, sizeof(e->text));
		}
		track_add(e, hour, p->hits, p->misses);
	}
	LWLockRelease(track_shared->lock);
}

/*
 * Add this backend's pending counts to the shared table and forget them.
 * It runs in the commit callback, so nothing in it raises an ERROR: the
 * shared table is entered with HASH_ENTER_NULL (a key that finds no room is
 * not tracked) and eviction allocates without failing (track_evict).  Never
 * re-entered: a failure in the middle (a FATAL, say) leaves the rest
 * pending, and the exit callback then leaves them alone.
 */
static void
track_flush(void)
{
	HASH_SEQ_STATUS seq;
	TrackPending *p;
	int64		now;

	if (pending == NULL || pending_since == 0 || pending_flushing || track_table == NULL)
		return;
	pending_flushing = true;
	now = track_hour();
	hash_seq_init(&seq, pending);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		track_flush_one(p, pending_hour, now);
		hash_search(pending, &p->key, HASH_REMOVE, NULL);
	}
	pending_last = NULL;
	pending_since = 0;
	pending_flushing = false;
}

/* At backend exit: what is still pending. */
static void
track_exit(int code, Datum arg)
{
	track_flush();
}

/*
 * At the end of a transaction, flush if the oldest pending count is
 * mlcache.track_flush_interval old.  Not at abort: the lock and hash code
 * are best left alone there; the counts wait for the next commit or exit.
 */
static void
track_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT)
		pending_flushing = false;	/* an error in track_flush: try again later */
	if (pending_since == 0 || (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT))
		return;
	if (track_now() - pending_since >= (TimestampTz) mlcache_track_flush_interval * 1000)
		track_flush();
}

/* Register the end-of-transaction flush; called from _PG_init. */
void
mlcache_track_init(void)
{
	RegisterXactCallback(track_xact_callback, NULL);
}

/*
 * Count one read of k: a hit in any level, or a miss that computed.  Counted
 * in this backend's pending table: no shared memory, no lock.
 */
void
mlcache_track(const MlcacheKey *k, uint64 hash, bool hit)
{
	TrackKey	tk;
	TrackPending *p;
	TimestampTz ts;
	int64		hour;
	bool		found;

	if (track_table == NULL || mlcache_track_max == 0)
		return;
	ts = track_now();
	hour = track_hour_of(ts);
	if (pending_since != 0 && hour != pending_hour)
		track_flush();
	p = pending_last;
	if (p == NULL || p->key.hash != hash || p->key.dbid != MyDatabaseId)
	{
		if (pending == NULL)
		{
			HASHCTL		info;

			info.keysize = sizeof(TrackKey);
			info.entrysize = sizeof(TrackPending);
			info.hcxt = TopMemoryContext;
			pending = hash_create("mlcache pending tracking", 64, &info,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		}
		if (!pending_exit_registered)
		{
			before_shmem_exit(track_exit, (Datum) 0);
			pending_exit_registered = true;
		}
		memset(&tk, 0, sizeof(tk));
		tk.dbid = MyDatabaseId;
		tk.hash = hash;
		p = hash_search(pending, &tk, HASH_FIND, NULL);
		if (p == NULL && hash_get_num_entries(pending) >= TRACK_PENDING_MAX)
			track_flush();
		if (p == NULL)
		{
			p = hash_search(pending, &tk, HASH_ENTER, &found);
			p->hits = p->misses = 0;
			strlcpy(p->text, k->key, Min(k->keylen, TRACK_KEY_LEN) + 1);
		}
		pending_last = p;
	}
	if ((hit ? p->hits : p->misses) == PG_UINT32_MAX)
	{
		/* A count about to wrap is added to the shared table first. */
		track_flush();
		if (pending_since == 0)
			mlcache_track(k, hash, hit);
		return;					/* else not flushed: this read is not counted */
	}
	if (pending_since == 0)
	{
		pending_since = ts;
		pending_hour = hour;
	}
	if (hit)
		p->hits++;
	else
		p->misses++;
}

/*
 * Hits and misses of a key in the last 24 hours; false if it is not
 * tracked.
 * Takes track_shared->lock shared, then the entry's spinlock.
 */
static bool
track_lookup(uint64 hash, uint64 *hits, uint64 *misses)
{
	TrackKey	tk;
	TrackEntry *e;
	int64		now = track_hour();
	int			i;

	memset(&tk, 0, sizeof(tk));
	tk.dbid = MyDatabaseId;
	tk.hash = hash;
	*hits = *misses = 0;
	LWLockAcquire(track_shared->lock, LW_SHARED);
	e = hash_search(track_table, &tk, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		for (i = 0; i < TRACK_HOURS; i++)
			if (e->hour[i] > now - TRACK_HOURS)
			{
				*hits += e->hits[i];
				*misses += e->misses[i];
			}
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(track_shared->lock);
	return e != NULL;
}

/*
 * The L2 TTL, in whole seconds, that the value under rkey was stored
 * with (its logical lifetime, without any stale-while-revalidate grace); -1
 * when there is no readable value of this key and database there.
 */
static int32
track_stored_ttl(const MlcacheKey *k, const char *rkey)
{
	char	   *buf;
	Size		len;
	MlcacheEnvelope env;
	int64		lifetime;

	if (mlcache_l2_get(rkey, k->rkeylen, &buf, &len) != L2_OK)
		return -1;
	if (!mlcache_envelope_decode(buf, len, &env) || env.dbid != MyDatabaseId ||
		env.keylen != k->keylen || memcmp(env.key, k->key, k->keylen) != 0 ||
		env.expires_at < env.computed_at)
		return -1;
	/* Stored at computed_at + compute_us (plus a moment): round to nearest. */
	lifetime = env.expires_at - env.computed_at - Max(env.compute_us, 0);
	return (int32) Min(Max((lifetime + USECS_PER_SEC / 2) / USECS_PER_SEC, 0), PG_INT32_MAX);
}

PG_FUNCTION_INFO_V1(mlcache_key_stats);

/*
 * mlcache.key_stats(key): hits, misses, total and hit rate (percent) of the
 * key over the last 24 hours, the key as cached, its remaining time to live
 * in Redis, and the L2 TTL its value was stored with (both NULL when it is
 * not there or Redis cannot be asked).
 */
Datum
mlcache_key_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		v[7];
	bool		n[7] = {false};
	MlcacheKey	k;
	uint64		hits,
				misses;
	int64		ttl_ms;
	const char *rkey;

	mlcache_key_arg(fcinfo, &k);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	track_flush();
	(void) track_lookup(mlcache_key_hash(&k), &hits, &misses);
	rkey = mlcache_key_rkey(&k);
	v[0] = Int64GetDatum(hits);
	v[1] = Int64GetDatum(misses);
	v[2] = Int64GetDatum(hits + misses);
	v[3] = Float8GetDatum(hits + misses == 0 ? 0.0 : 100.0 * hits / (hits + misses));
	v[4] = CStringGetTextDatum(k.key);
	n[5] = (mlcache_l2_pttl(rkey, k.rkeylen, &ttl_ms) != L2_OK || ttl_ms < 0);
	v[5] = Int32GetDatum((int32) ((ttl_ms + 999) / 1000));
	v[6] = Int32GetDatum(track_stored_ttl(&k, rkey));
	n[6] = DatumGetInt32(v[6]) < 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, n)));
}

PG_FUNCTION_INFO_V1(mlcache_tracking_sweep);

/*
 * mlcache.tracking_sweep(): forget keys with no read in 24 hours.  Takes
 * track_shared->lock exclusively: the entries are read without their
 * spinlocks (see track_total).
 */
Datum
mlcache_tracking_sweep(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	TrackEntry *e;
	int64		now;
	int64		removed = 0;

	mlcache_require_loaded();
	track_flush();
	now = track_hour();
	LWLockAcquire(track_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, track_table);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (track_total(e, now) == 0)
		{
			hash_search(track_table, &e->key, HASH_REMOVE, NULL);
			removed++;
		}
	LWLockRelease(track_shared->lock);
	PG_RETURN_INT64(removed);
}

PG_FUNCTION_INFO_V1(mlcache_tracking_advance);

/*
 * mlcache._tracking_advance(hours): a testing aid that moves the tracking
 * clock forward for the whole server, so that 24-hour retention can be
 * tested without waiting a day.  Superuser only.
 * hour_offset is an atomic: no lock.
 */
Datum
mlcache_tracking_advance(PG_FUNCTION_ARGS)
{
	int32		hours = PG_GETARG_INT32(0);

	mlcache_require_loaded();
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to move the tracking clock")));
	if (hours < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the tracking clock only moves forward")));
	pg_atomic_fetch_add_u64(&track_shared->hour_offset, (uint64) hours);
	PG_RETURN_VOID();
}
