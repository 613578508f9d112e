/*
 * ops.c
 *	  What admins look at from psql: mlcache.stats and mlcache.health().
 *
 * Both only read: counters and gauges from shared memory, the state of the
 * views, and for Redis a bounded PING, INFO and SCAN.  Neither raises an
 * error because a part is down; they report it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "keys.h"
#include "l2_redis.h"
#include "refresher.h"
#include "sentinel.h"
#include "shmem.h"
#include "stats.h"
#include "hygiene.h"
#include "wal.h"

/* SCAN calls (of COUNT 1000) spent counting this database's Redis keys. */
#define KEY_COUNT_STEPS 100

static double
hit_rate(uint64 hits, uint64 misses)
{
	return hits + misses == 0 ? 0.0 : 100.0 * (double) hits / (double) (hits + misses);
}

/* This namespace's Redis keys: a count, exact unless the SCAN was cut. */
static bool
ops_redis_keys(int64 *count, bool *exact)
{
	int			nlen;
	const char *ns = mlcache_namespace(&nlen);
	char	   *match = mlcache_prefix_glob(ns, nlen, "", 0);

	return mlcache_l2_count_keys(match, KEY_COUNT_STEPS, count, exact) == L2_OK;
}

PG_FUNCTION_INFO_V1(mlcache_stats_row);

/* mlcache.stats_row(): the single row behind the mlcache.stats view. */
Datum
mlcache_stats_row(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		v[26];
	bool		n[26] = {false};
	int64		entries,
				bytes,
				keys,
				used,
				refreshes;
	bool		exact;
	int			nviews;
	uint64		l1h, l1m, l2h, l2m, l3h, l3m;

	mlcache_require_loaded();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	l1h = mlcache_counter_value(MLC_L1_HIT);
	l1m = mlcache_counter_value(MLC_L1_MISS);
	l2h = mlcache_counter_value(MLC_L2_HIT);
	l2m = mlcache_counter_value(MLC_L2_MISS);
	l3h = mlcache_counter_value(MLC_L3_HIT);
	l3m = mlcache_counter_value(MLC_L3_MISS);
	mlcache_stats_l1_totals(&entries, &bytes);
	mlcache_refresher_totals(&nviews, &refreshes);

	v[0] = Int64GetDatum(l1h);
	v[1] = Int64GetDatum(l1m);
	v[2] = Float8GetDatum(hit_rate(l1h, l1m));
	v[3] = Int64GetDatum(entries);
	v[4] = Int64GetDatum(bytes);
	v[5] = Int64GetDatum(l2h);
	v[6] = Int64GetDatum(l2m);
	v[7] = Float8GetDatum(hit_rate(l2h, l2m));
	n[8] = n[9] = !ops_redis_keys(&keys, &exact);
	v[8] = Int64GetDatum(keys);
	v[9] = BoolGetDatum(exact);
	n[10] = (mlcache_l2_used_memory(&used) != L2_OK);
	v[10] = Int64GetDatum(used);
	v[11] = Int64GetDatum(l3h);
	v[12] = Int64GetDatum(l3m);
	v[13] = Float8GetDatum(hit_rate(l3h, l3m));
	v[14] = Int32GetDatum(nviews);
	v[15] = Int64GetDatum(refreshes);
	v[16] = Int64GetDatum(mlcache_counter_value(MLC_COMPUTE));
	v[17] = Int64GetDatum(mlcache_counter_value(MLC_BYPASS));
	v[18] = Int64GetDatum(mlcache_counter_value(MLC_REJECTED_FILL));
	v[19] = Int64GetDatum(mlcache_counter_value(MLC_INVALIDATION));
	v[20] = Int64GetDatum(mlcache_hygiene_queue_length());
	v[21] = Int64GetDatum(mlcache_counter_value(MLC_HYGIENE_DROPPED));
	v[22] = Int64GetDatum(mlcache_counter_value(MLC_L2_ERROR));
	v[23] = CStringGetTextDatum(mlcache_l2_breaker_state());
	v[24] = Int64GetDatum(mlcache_counter_value(MLC_BREAKER_OPENED));
	v[25] = TimestampTzGetDatum(mlcache_stats_reset_at());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, n)));
}

/* Push "key": value pairs into a jsonb object being built. */
static void
jb_key(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

static void
jb_str(JsonbParseState **st, const char *key, const char *val)
{
	JsonbValue	v;

	jb_key(st, key);
	if (val == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) val;
		v.val.string.len = strlen(val);
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
jb_num(JsonbParseState **st, const char *key, double val)
{
	JsonbValue	v;

	jb_key(st, key);
	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(val)));
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
jb_bool(JsonbParseState **st, const char *key, bool val)
{
	JsonbValue	v;

	jb_key(st, key);
	v.type = jbvBool;
	v.val.boolean = val;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* "key": "host:port" (the jsonb being built keeps the string: palloc'd) */
static void
jb_addr(JsonbParseState **st, const char *key, const MlcacheRedisAddr *a)
{
	jb_str(st, key, psprintf(strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port));
}

static void
jb_time(JsonbParseState **st, const char *key, TimestampTz t)
{
	jb_str(st, key, t == 0 ? NULL : pstrdup(timestamptz_to_str(t)));
}

/*
 * The "sentinel" part of health()'s l2: the sentinels listed, the master
 * they named last, when it was named and when it last changed; null when
 * mlcache.redis_sentinels is empty.
 */
static void
health_sentinel(JsonbParseState **st)
{
	MlcacheSentinelState s;

	jb_key(st, "sentinel");
	if (!mlcache_sentinel_configured())
	{
		JsonbValue	v;

		v.type = jbvNull;
		pushJsonbValue(st, WJB_VALUE, &v);
		return;
	}
	mlcache_sentinel_state(&s);
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	jb_str(st, "sentinels", mlcache_redis_sentinels);
	jb_str(st, "master_name", mlcache_redis_master_name);
	if (s.known)
	{
		jb_addr(st, "master", &s.master);
		jb_addr(st, "named_by", &s.answered_by);
	}
	else
	{
		jb_str(st, "master", NULL);
		jb_str(st, "named_by", NULL);
	}
	jb_bool(st, "master_confirmed", s.known && s.valid);
	jb_time(st, "master_named_at", s.resolved_at);
	jb_time(st, "master_changed_at", s.changed_at);
	jb_num(st, "master_changes", (double) s.changes);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* The "l2" part of health(): status, round trip, breaker and Sentinel. */
static void
health_l2(JsonbParseState **st, bool *ok)
{
	double		rtt = 0;
	MlcacheL2Result res = mlcache_l2_ping(&rtt);

	jb_key(st, "l2");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	jb_str(st, "status", res == L2_OK ? "ok" : res == L2_SKIPPED ? "skipped" : "down");
	if (res == L2_OK)
		jb_num(st, "rtt_ms", rtt);
	else
		jb_str(st, "rtt_ms", NULL);
	jb_str(st, "breaker", mlcache_l2_breaker_state());
	jb_num(st, "errors", (double) mlcache_counter_value(MLC_L2_ERROR));
	health_sentinel(st);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
	*ok = (res == L2_OK);
}

/*
 * The "standby" part of health(): invalidations in the WAL (wal.c).  On a
 * primary: whether transactions log them, and a warning when a physical
 * replication slot is unused while they do, since a standby that lacks the
 * library stops at the first such record (FATAL) and so disconnects; the
 * primary cannot see a standby's libraries, so this is only a hint.  On a
 * standby: whether it caches, and its in-doubt transactions.
 */
static void
health_standby(JsonbParseState **st)
{
	MlcacheWalStatus ws;

	mlcache_wal_resolve();		/* report the state a read would see */
	mlcache_wal_status(&ws);
	jb_key(st, "standby");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	jb_str(st, "role", ws.in_recovery ? "standby" : "primary");
	jb_bool(st, "standby_invalidation", mlcache_standby_invalidation);
	if (!ws.in_recovery)
	{
		jb_bool(st, "logging", ws.logging);
		jb_num(st, "records_written", (double) ws.records_written);
		jb_num(st, "wal_senders", ws.walsenders);
		jb_num(st, "inactive_physical_slots", ws.inactive_slots);
		jb_str(st, "warning", ws.logging && ws.inactive_slots > 0
			   ? "a physical replication slot is not in use: a standby without mlcache in shared_preload_libraries stops at the first mlcache WAL record"
			   : NULL);
	}
	else
	{
		jb_str(st, "primary_logs", ws.state);
		jb_bool(st, "caching", strcmp(ws.state, "on") == 0 && !ws.waiting);
		jb_bool(st, "waiting", ws.waiting);
		jb_num(st, "in_doubt", ws.in_doubt);
		jb_num(st, "records_replayed", (double) ws.records_replayed);
		jb_num(st, "resolved_committed", (double) ws.resolved_committed);
		jb_num(st, "resolved_aborted", (double) ws.resolved_aborted);
		jb_num(st, "overflows", (double) ws.overflows);
	}
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

PG_FUNCTION_INFO_V1(mlcache_health);

/*
 * mlcache._health(), wrapped by the SQL function mlcache.health() which adds
 * each view's freshness: one jsonb report: overall status ("ok" or "degraded"),
 * then l1, l2, l3, the worker, pending invalidations and standby
 * invalidation.  A part that is
 * down is reported, never raised.
 */
Datum
mlcache_health(PG_FUNCTION_ARGS)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	int64		entries,
				bytes,
				refreshes;
	int			nviews;
	bool		l2_ok;
	bool		worker_ok;

	mlcache_require_loaded();
	mlcache_stats_l1_totals(&entries, &bytes);
	mlcache_refresher_totals(&nviews, &refreshes);
	worker_ok = mlcache_hygiene_worker_alive();

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	jb_key(&st, "l1");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	jb_str(&st, "status", mlcache_enabled ? "ok" : "disabled");
	jb_num(&st, "entries", (double) entries);
	jb_num(&st, "bytes", (double) bytes);
	jb_num(&st, "max_bytes_per_backend", (double) mlcache_l1_max_memory * 1024);
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	health_l2(&st, &l2_ok);
	jb_key(&st, "l3");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	jb_num(&st, "view_count", nviews);
	jb_num(&st, "refreshes", (double) refreshes);
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	jb_key(&st, "worker");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	jb_bool(&st, "alive", worker_ok);
	jb_num(&st, "scans_waiting", mlcache_hygiene_scans_waiting());
	jb_num(&st, "scan_restarts", (double) mlcache_hygiene_scan_restarts());
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	jb_num(&st, "invalidations_pending", mlcache_hygiene_queue_length());
	health_standby(&st);
	jb_str(&st, "status", (l2_ok && worker_ok) ? "ok" : "degraded");
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

PG_FUNCTION_INFO_V1(mlcache_clean_orphans);

/*
 * mlcache.clean_orphans(): remove from Redis the keys under this database's
 * prefix that no read can use: values of an older server life (another
 * epoch) and foreign values.  Returns how many, or NULL if Redis could not
 * be reached.
 *
 * Only this namespace is scanned, and the default one names this server
 * (its system identifier), so another server's keys are never touched.  A
 * hot standby shares its primary's identifier and appends
 * "standby:<epoch>:" (keys.c): those names under this namespace are a
 * standby's current values, with another epoch, and are skipped.
 */
Datum
mlcache_clean_orphans(PG_FUNCTION_ARGS)
{
	int			nlen;
	const char *ns;
	int64		removed = 0;

	mlcache_require_loaded();
	ns = mlcache_namespace(&nlen);
	if (mlcache_l2_clean_orphans(mlcache_prefix_glob(ns, nlen, "", 0),
								 mlcache_shared->epoch, psprintf("%.*sstandby:", nlen, ns),
								 &removed) != L2_OK)
		PG_RETURN_NULL();
	ereport(LOG, (errmsg("mlcache removed %lld orphaned Redis keys", (long long) removed)));
	PG_RETURN_INT64(removed);
}
