/*
 * track.c
 *	  Per-key hit and miss counts over the last 24 hours, in hourly buckets
 *	  kept in shared memory.
 *
 * A shared hash table of at most mlcache.track_max keys.  Each entry has 24
 * buckets, one per hour of the day, each tagged with the hour it counts, so
 * a bucket left from a previous day is recognised and restarted.  When the
 * table is full, a new key evicts the entry with the fewest reads in the
 * last 24 hours.  Nothing here touches Redis: an L1 hit costs a shared lock,
 * a hash lookup and a spinlock.
 *
 * Locking (see the table in shmem.c): track_shared->lock (the LWLock of
 * tranche "mlcache tracking") in shared mode to look entries up and count,
 * exclusive to insert, evict or sweep; each entry's counters are protected
 * by its spinlock, taken under track_shared->lock held shared (holding it
 * exclusively excludes every spinlock holder).  A test-only hour offset
 * (_tracking_advance) is an atomic, read without a lock.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
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
	track_table = ShmemInitHash("mlcache tracking table", mlcache_track_max, mlcache_track_max,
								&info, HASH_ELEM | HASH_BLOBS);
}

/*
 * The current hour number, shifted by the test-only offset.  hour_offset is
 * an atomic: no lock.
 */
static int64
track_hour(void)
{
	return GetCurrentTimestamp() / USECS_PER_HOUR +
		(int64) pg_atomic_read_u64(&track_shared->hour_offset);
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
 * least one).  Evicting in batches keeps a stream of new keys from scanning
 * the whole table for each one, which made every read of an untracked key
 * cost O(track_max) once the table was full.  Caller holds
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
	totals = palloc(sizeof(uint64) * n);
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

/* Caller holds track_shared->lock (any mode); takes e->mutex. */
static void
track_add(TrackEntry *e, int64 now, bool hit)
{
	int			b = (int) (now % TRACK_HOURS);

	SpinLockAcquire(&e->mutex);
	if (e->hour[b] != now)
	{
		e->hour[b] = now;
		e->hits[b] = 0;
		e->misses[b] = 0;
	}
	if (hit)
		e->hits[b]++;
	else
		e->misses[b]++;
	SpinLockRelease(&e->mutex);
}

/*
 * Count one read of k: a hit in any level, or a miss that computed.  Takes
 * track_shared->lock shared (exclusive to insert or evict), then the entry's
 * spinlock.
 */
void
mlcache_track(const MlcacheKey *k, uint64 hash, bool hit)
{
	TrackKey	tk;
	TrackEntry *e;
	int64		now;
	bool		found;

	if (track_table == NULL || mlcache_track_max == 0)
		return;
	memset(&tk, 0, sizeof(tk));
	tk.dbid = MyDatabaseId;
	tk.hash = hash;
	now = track_hour();
	LWLockAcquire(track_shared->lock, LW_SHARED);
	e = hash_search(track_table, &tk, HASH_FIND, NULL);
	if (e != NULL)
	{
		track_add(e, now, hit);
		LWLockRelease(track_shared->lock);
		return;
	}
	LWLockRelease(track_shared->lock);

	LWLockAcquire(track_shared->lock, LW_EXCLUSIVE);
	e = hash_search(track_table, &tk, HASH_FIND, NULL);
	if (e == NULL && hash_get_num_entries(track_table) >= mlcache_track_max)
		track_evict(now);
	e = hash_search(track_table, &tk, HASH_ENTER_NULL, &found);
	if (e != NULL)
	{
		if (!found)
		{
			SpinLockInit(&e->mutex);
			memset(e->hour, 0, sizeof(e->hour));
			memset(e->hits, 0, sizeof(e->hits));
			memset(e->misses, 0, sizeof(e->misses));
			strlcpy(e->text, k->key, Min(k->keylen, TRACK_KEY_LEN) + 1);
		}
		track_add(e, now, hit);
	}
	LWLockRelease(track_shared->lock);
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
