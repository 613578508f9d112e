/*
 * stats.c
 *	  mlcache's counters and the SQL functions that show and reset them.
 *
 * Each backend owns one row of counters, indexed by its BackendId, and is
 * the only writer of that row, so an increment is a plain read and write of
 * an atomic (no locked instruction on the hot path).  Processes without a
 * BackendId share row 0 and use a real atomic add.  Rows are never zeroed
 * when a backend exits, so sums only grow; a reset records the sums as a
 * baseline, under mlcache_shared->lock, and readers subtract it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "stats.h"

/*
 * A row starts a cache line and fills whole ones (shared memory is
 * allocated cache-line aligned), so no two backends' counters share one.
 */
typedef struct MlcacheCounterRow
{
	pg_atomic_uint64 v[MLC_NCOUNTERS];
	pg_atomic_uint64 l1_entries;	/* gauges of the backend's L1, zeroed at exit */
	pg_atomic_uint64 l1_bytes;
} pg_attribute_aligned(PG_CACHE_LINE_SIZE) MlcacheCounterRow;

typedef struct MlcacheStatsShared
{
	TimestampTz reset_time;		/* protected by mlcache_shared->lock */
	uint64		baseline[MLC_NCOUNTERS];	/* likewise */
	int			nrows;
	MlcacheCounterRow rows[FLEXIBLE_ARRAY_MEMBER];
} MlcacheStatsShared;

static MlcacheStatsShared *stats_shared = NULL;

/*
 * Compute times per fingerprint (a query or a definition), for warming's
 * estimates: a small open-addressed table of atomics; a full table simply
 * stops recording new fingerprints.
 */
#define COMPUTE_SLOTS 1024

typedef struct ComputeStat
{
	pg_atomic_uint64 fingerprint;	/* 0: free */
	pg_atomic_uint64 calls;
	pg_atomic_uint64 total_us;
} ComputeStat;

static ComputeStat *compute_stats = NULL;

static const char *const counter_names[MLC_NCOUNTERS] = {
	[MLC_L1_HIT] = "l1_hits",
	[MLC_L1_MISS] = "l1_misses",
	[MLC_L2_HIT] = "l2_hits",
	[MLC_L2_MISS] = "l2_misses",
	[MLC_L3_HIT] = "l3_hits",
	[MLC_L3_MISS] = "l3_misses",
	[MLC_COMPUTE] = "computes",
	[MLC_BYPASS] = "bypasses",
	[MLC_REJECTED_FILL] = "rejected_fills",
	[MLC_STALE_REJECTED] = "stale_rejected",
	[MLC_DECODE_FAILED] = "decode_failures",
	[MLC_TOO_LARGE] = "too_large",
	[MLC_L1_EVICTION] = "l1_evictions",
	[MLC_L2_ERROR] = "redis_errors",
	[MLC_BREAKER_OPENED] = "breaker_opened",
	[MLC_INVALIDATION] = "invalidations",
	[MLC_SETS] = "sets",
	[MLC_HYGIENE_QUEUED] = "hygiene_queued",
	[MLC_HYGIENE_DROPPED] = "hygiene_dropped",
	[MLC_HYGIENE_DONE] = "hygiene_done",
	[MLC_HYGIENE_RETRIES] = "hygiene_retries",
	[MLC_REDIS_UNLINKED] = "redis_unlinked",
	[MLC_FILL_WAIT] = "fill_waits",
	[MLC_FILL_WAIT_TIMEOUT] = "fill_wait_timeouts",
	[MLC_STALE_SERVED] = "stale_served",
	[MLC_XFETCH_EARLY] = "xfetch_early",
	[MLC_RLS_UNCACHED] = "rls_uncached",
	[MLC_LEASE_REJECTED] = "lease_rejected",
};

static int
stats_nrows(void)
{
	return MaxBackends + 1;
}

Size
mlcache_stats_shmem_size(void)
{
	return add_size(add_size(offsetof(MlcacheStatsShared, rows),
							 mul_size(stats_nrows(), sizeof(MlcacheCounterRow))),
					mul_size(COMPUTE_SLOTS, sizeof(ComputeStat)));
}

/* Called with AddinShmemInitLock held. */
void
mlcache_stats_shmem_startup(void)
{
	bool		found;

	stats_shared = ShmemInitStruct("mlcache stats", mlcache_stats_shmem_size(), &found);
	compute_stats = (ComputeStat *) ((char *) stats_shared + offsetof(MlcacheStatsShared, rows) +
									 stats_nrows() * sizeof(MlcacheCounterRow));
	if (!found)
	{
		int			i,
					r,
					c;

		for (i = 0; i < COMPUTE_SLOTS; i++)
		{
			pg_atomic_init_u64(&compute_stats[i].fingerprint, 0);
			pg_atomic_init_u64(&compute_stats[i].calls, 0);
			pg_atomic_init_u64(&compute_stats[i].total_us, 0);
		}

		stats_shared->nrows = stats_nrows();
		stats_shared->reset_time = GetCurrentTimestamp();
		memset(stats_shared->baseline, 0, sizeof(stats_shared->baseline));
		for (r = 0; r < stats_shared->nrows; r++)
		{
			for (c = 0; c < MLC_NCOUNTERS; c++)
				pg_atomic_init_u64(&stats_shared->rows[r].v[c], 0);
			pg_atomic_init_u64(&stats_shared->rows[r].l1_entries, 0);
			pg_atomic_init_u64(&stats_shared->rows[r].l1_bytes, 0);
		}
	}
}

/*
 * Add n to counter c in this backend's own row (one writer: no lock); rows
 * without a BackendId share row 0, added to atomically.
 */
void
mlcache_count_n(MlcacheCounter c, uint64 n)
{
	pg_atomic_uint64 *cell;

	if (stats_shared == NULL)
		return;
	if (MyBackendId == InvalidBackendId || MyBackendId >= stats_shared->nrows)
	{
		pg_atomic_fetch_add_u64(&stats_shared->rows[0].v[c], n);
		return;
	}
	cell = &stats_shared->rows[MyBackendId].v[c];
	pg_atomic_write_u64(cell, pg_atomic_read_u64(cell) + n);
}

/* See mlcache_count_n: no lock. */
void
mlcache_count(MlcacheCounter c)
{
	mlcache_count_n(c, 1);
}

/*
 * The slot of a fingerprint, claiming a free one if create; NULL if none.  A
 * free slot is claimed by compare-and-swap: no lock.
 */
static ComputeStat *
compute_slot(uint64 fingerprint, bool create)
{
	int			i;

	for (i = 0; i < 16; i++)
	{
		ComputeStat *c = &compute_stats[(fingerprint + i) % COMPUTE_SLOTS];
		uint64		f = pg_atomic_read_u64(&c->fingerprint);

		if (f == fingerprint)
			return c;
		if (f == 0 && create)
		{
			uint64		expected = 0;

			if (pg_atomic_compare_exchange_u64(&c->fingerprint, &expected, fingerprint) ||
				expected == fingerprint)
				return c;
		}
	}
	return NULL;
}

/*
 * Record one computation of fingerprint that took us microseconds.  Atomic
 * adds: no lock.
 */
void
mlcache_stats_record_compute(uint64 fingerprint, int64 us)
{
	ComputeStat *c;

	if (compute_stats == NULL || (c = compute_slot(fingerprint, true)) == NULL)
		return;
	pg_atomic_fetch_add_u64(&c->calls, 1);
	pg_atomic_fetch_add_u64(&c->total_us, (uint64) Max(us, 0));
}

/*
 * Average compute time of fingerprint in ms, or -1 if never recorded.
 * Atomic reads: no lock.
 */
double
mlcache_stats_compute_ms(uint64 fingerprint)
{
	ComputeStat *c = compute_stats ? compute_slot(fingerprint, false) : NULL;
	uint64		calls;

	if (c == NULL || (calls = pg_atomic_read_u64(&c->calls)) == 0)
		return -1;
	return (double) pg_atomic_read_u64(&c->total_us) / calls / 1000.0;
}

static bool l1_gauge_registered = false;

/* At exit: this backend's own row, no lock. */
static void
stats_zero_l1_gauges(int code, Datum arg)
{
	mlcache_stats_set_l1(0, 0);
}

/*
 * Publish this backend's L1 size.  Processes without a row of their own
 * (no BackendId) have no L1 worth showing and are skipped.
 * This backend's own row: no lock.
 */
void
mlcache_stats_set_l1(int64 entries, int64 bytes)
{
	MlcacheCounterRow *row;

	if (stats_shared == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId >= stats_shared->nrows)
		return;
	if (!l1_gauge_registered)
	{
		before_shmem_exit(stats_zero_l1_gauges, (Datum) 0);
		l1_gauge_registered = true;
	}
	row = &stats_shared->rows[MyBackendId];
	pg_atomic_write_u64(&row->l1_entries, (uint64) entries);
	pg_atomic_write_u64(&row->l1_bytes, (uint64) bytes);
}

/* L1 entries and bytes summed over all backends.  Atomic reads: no lock. */
void
mlcache_stats_l1_totals(int64 *entries, int64 *bytes)
{
	int			r;

	*entries = 0;
	*bytes = 0;
	for (r = 0; r < stats_shared->nrows; r++)
	{
		*entries += (int64) pg_atomic_read_u64(&stats_shared->rows[r].l1_entries);
		*bytes += (int64) pg_atomic_read_u64(&stats_shared->rows[r].l1_bytes);
	}
}

/*
 * Sum of counter c over all rows (atomic reads).  Caller holds
 * mlcache_shared->lock (any mode) when it pairs the sum with the baseline.
 */
static uint64
counter_sum(MlcacheCounter c)
{
	uint64		sum = 0;
	int			r;

	for (r = 0; r < stats_shared->nrows; r++)
		sum += pg_atomic_read_u64(&stats_shared->rows[r].v[c]);
	return sum;
}

/* Current value of one counter since the last reset.  Takes mlcache_shared->lock shared. */
uint64
mlcache_counter_value(MlcacheCounter c)
{
	uint64		sum = counter_sum(c);
	uint64		base;

	LWLockAcquire(mlcache_shared->lock, LW_SHARED);
	base = stats_shared->baseline[c];
	LWLockRelease(mlcache_shared->lock);
	return sum >= base ? sum - base : 0;
}

PG_FUNCTION_INFO_V1(mlcache_counters);

/*
 * mlcache.counters(): one row (counter, value) per counter, plus stats_reset.
 */
Datum
mlcache_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			c;

	mlcache_require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	for (c = 0; c < MLC_NCOUNTERS; c++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(counter_names[c]);
		values[1] = Int64GetDatum((int64) mlcache_counter_value(c));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* When the counters were last reset.  Takes mlcache_shared->lock shared. */
TimestampTz
mlcache_stats_reset_at(void)
{
	TimestampTz t;

	LWLockAcquire(mlcache_shared->lock, LW_SHARED);
	t = stats_shared->reset_time;
	LWLockRelease(mlcache_shared->lock);
	return t;
}

PG_FUNCTION_INFO_V1(mlcache_stats_reset_time);

Datum
mlcache_stats_reset_time(PG_FUNCTION_ARGS)
{
	mlcache_require_loaded();
	PG_RETURN_TIMESTAMPTZ(mlcache_stats_reset_at());
}

PG_FUNCTION_INFO_V1(mlcache_reset_stats);

/*
 * mlcache.reset_stats(): record the current sums as the new baseline.  Takes
 * mlcache_shared->lock exclusively.
 */
Datum
mlcache_reset_stats(PG_FUNCTION_ARGS)
{
	int			c;

	mlcache_require_loaded();
	LWLockAcquire(mlcache_shared->lock, LW_EXCLUSIVE);
	for (c = 0; c < MLC_NCOUNTERS; c++)
		stats_shared->baseline[c] = counter_sum(c);
	stats_shared->reset_time = GetCurrentTimestamp();
	LWLockRelease(mlcache_shared->lock);
	PG_RETURN_VOID();
}
