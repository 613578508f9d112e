/*
 * wal.c
 *	  Invalidations in the WAL, so that a hot standby can serve cached values
 *	  that are provably fresh relative to what it has replayed (G15).
 *
 * A custom WAL resource manager (RM_EXPERIMENTAL_ID until an id is
 * reserved) with two records:
 *
 *	INVAL {xid, hashes[]}: written by a committing transaction at PRE_COMMIT
 *	  (invalidate.c), before its commit record.  xid is its top-level id
 *	  (assigned for the purpose if it had none); hashes are the 64-bit hashes
 *	  whose low bits pick the generation slots it bumps at commit (keys,
 *	  prefixes, namespaces, views, definitions, the security slot).  Hashes,
 *	  not slot numbers, so that a standby with another
 *	  mlcache.generation_slots maps them onto its own table.
 *	STATE {on, on_since}: written by the primary's mlcache worker when
 *	  mlcache.standby_invalidation changes, when a WAL sender connects, and
 *	  every WAL_HEARTBEAT_MS as a heartbeat.  on_since is the first xid the
 *	  primary has logged every invalidation of.
 *
 * The standby.  Redo of INVAL records {xid, slots} as in doubt in a shared
 * table.  It cannot bump at once (the transaction may still abort), and no
 * resource manager can hook the replay of the commit record.  So in-doubt
 * entries are resolved lazily: at the start of every lookup (and of every
 * definition load), and by redo itself when the table fills up, every entry
 * whose xid is no longer in progress (TransactionIdIsInProgress, which in
 * recovery consults the known-assigned xids the startup process keeps) is
 * resolved: if it committed, its slots are bumped, then it is freed, both
 * under the lock, so exactly once.  Commit redo marks the xid committed in
 * the clog before it removes it from the known-assigned xids, so an xid that
 * is not in progress has its final status.  A reader resolves before it
 * reads any token, so a commit replayed before the read began is reflected
 * in the token, and values cached before it are refused (G1); a value
 * computed from a snapshot without that commit was stored under the old
 * token and is refused likewise (G2).  A reader also stores only if no
 * in-doubt transaction that touches the key's slots is still in progress.
 *
 * Barriers.  Some invalidations a standby cannot know: those of transactions
 * whose INVAL record came before the point where its replay started (a base
 * backup, a restart), those committed while the primary did not log them,
 * and those whose record did not fit the table (and, in a recovery that
 * accepts no reads, hot_standby off or crash recovery, every one: nothing
 * is tracked there, and the end of recovery bumps every slot once).  For
 * these the standby sets
 * a barrier xid: it reads around the cache until every xid before the
 * barrier has ended (its snapshots' xmin has passed it), then bumps every
 * slot once, and caches again.  The standby also reads around the cache
 * until it has replayed a STATE record saying the primary logs (state
 * UNKNOWN at start, OFF when told so).
 *
 * The primary.  Backends log while the shared flag "logging" is set, not by
 * their own copy of the setting: the worker changes the flag, so that the
 * order of flag and STATE record is the one that keeps standbys safe.  On:
 * set the flag, then read the next xid (on_since) and log STATE{on}; a
 * transaction that did not log read the flag before it was set, after its
 * xid was assigned, so its xid precedes on_since and the standby's barrier
 * covers it.  Off: log STATE{off}, then clear the flag; a transaction that
 * does not log writes its commit record after STATE{off}, which the standby
 * replays first.
 *
 * Locks.  wal->lock (LWLock, tranche "mlcache standby") protects entries[],
 * pool[], pool_head, next_seq and barrier.  Held only for memory work and
 * atomic bumps: xid status look-ups (which take PostgreSQL's locks and may
 * read the clog) happen after copying the entries out and releasing it.  It
 * is taken exclusively by redo (startup process) and by resolvers, shared by
 * mlcache_wal_may_store and mlcache_wal_status.  No other mlcache lock is
 * held with it.  Atomics (no lock): logging, nused, state, barrier_set and
 * the counters.  on_since is written by the worker only.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "shmem.h"
#include "wal.h"

#define MLCACHE_RMGR_ID		RM_EXPERIMENTAL_ID
#define XLOG_MLCACHE_INVAL	0x00
#define XLOG_MLCACHE_STATE	0x10

/* A STATE record every this often, also on an idle primary. */
#define WAL_HEARTBEAT_MS	30000

typedef struct xl_mlcache_inval
{
	TransactionId xid;			/* top-level, assigned */
	uint32		nhashes;
	uint64		hashes[FLEXIBLE_ARRAY_MEMBER];
} xl_mlcache_inval;

#define SizeOfMlcacheInval	offsetof(xl_mlcache_inval, hashes)

typedef struct xl_mlcache_state
{
	uint32		on;				/* 1: every commit logs its invalidations */
	TransactionId on_since;		/* ... of every xid from this one on */
} xl_mlcache_state;

/* Standby state, from replayed STATE records. */
#define WAL_STATE_UNKNOWN	0
#define WAL_STATE_ON		1
#define WAL_STATE_OFF		2

#define WAL_MAX_INDOUBT		256
#define WAL_POOL_SLOTS		65536	/* slots of all in-doubt entries: 256 kB */

typedef struct WalInDoubt
{
	TransactionId xid;			/* InvalidTransactionId: free */
	uint32		seq;			/* tells a reused entry from the one copied */
	uint32		off;			/* its slots: pool[off .. off + n) */
	uint32		n;
} WalInDoubt;

typedef struct WalShared
{
	LWLock	   *lock;
	/* primary */
	pg_atomic_uint32 logging;
	TransactionId on_since;
	pg_atomic_uint64 written;
	/* standby */
	pg_atomic_uint32 nused;
	pg_atomic_uint32 state;
	pg_atomic_uint32 barrier_set;
	TransactionId barrier;		/* caching waits until xmin reaches it */
	uint32		next_seq;
	uint32		pool_head;
	pg_atomic_uint64 replayed;
	pg_atomic_uint64 committed;
	pg_atomic_uint64 aborted;
	pg_atomic_uint64 overflows;
	WalInDoubt	entries[WAL_MAX_INDOUBT];
	uint32		pool[WAL_POOL_SLOTS];
} WalShared;

static WalShared *wal = NULL;

/* ---- shared memory ---- */

Size
mlcache_wal_shmem_size(void)
{
	return sizeof(WalShared);
}

void
mlcache_wal_shmem_request(void)
{
	RequestNamedLWLockTranche("mlcache standby", 1);
}

/*
 * Called with AddinShmemInitLock held.  A fresh primary logs from the start
 * (logging = 1): a standby of an earlier server life may still believe the
 * primary logs, and only a STATE{off} record may tell it otherwise.
 */
void
mlcache_wal_shmem_startup(void)
{
	bool		found;

	wal = ShmemInitStruct("mlcache standby", sizeof(WalShared), &found);
	if (found)
		return;
	memset(wal, 0, sizeof(WalShared));
	wal->lock = &(GetNamedLWLockTranche("mlcache standby"))->lock;
	pg_atomic_init_u32(&wal->logging, 1);
	wal->on_since = FirstNormalTransactionId;
	pg_atomic_init_u64(&wal->written, 0);
	pg_atomic_init_u32(&wal->nused, 0);
	pg_atomic_init_u32(&wal->state, WAL_STATE_UNKNOWN);
	pg_atomic_init_u32(&wal->barrier_set, 0);
	pg_atomic_init_u64(&wal->replayed, 0);
	pg_atomic_init_u64(&wal->committed, 0);
	pg_atomic_init_u64(&wal->aborted, 0);
	pg_atomic_init_u64(&wal->overflows, 0);
}

/* ---- generation bumps (standby) ---- */

/* Every slot of the table: what a barrier or an overflow costs. */
static void
wal_bump_all(void)
{
	uint32		i;

	for (i = 1; i <= mlcache_shared->slot_mask; i++)
		pg_atomic_fetch_add_u64(&mlcache_shared->gens[i], 1);
}

/* Raise the barrier to horizon (no caching until xmin reaches it).  Lock held exclusively. */
static void
wal_set_barrier(TransactionId horizon)
{
	if (!pg_atomic_read_u32(&wal->barrier_set) || TransactionIdFollows(horizon, wal->barrier))
		wal->barrier = horizon;
	pg_atomic_write_u32(&wal->barrier_set, 1);
}

/*
 * Lift the barrier once every xid before it has ended, as this backend's
 * latest snapshot (RecentXmin) shows: then bump every slot, so that nothing
 * cached before the barrier is served.  Takes wal->lock exclusively.
 */
static void
wal_try_lift_barrier(void)
{
	if (!pg_atomic_read_u32(&wal->barrier_set) ||
		(RecoveryInProgress() && !TransactionIdFollowsOrEquals(RecentXmin, wal->barrier)))
		return;
	LWLockAcquire(wal->lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u32(&wal->barrier_set) &&
		(!RecoveryInProgress() || TransactionIdFollowsOrEquals(RecentXmin, wal->barrier)))
	{
		wal_bump_all();
		pg_atomic_write_u32(&wal->barrier_set, 0);
	}
	LWLockRelease(wal->lock);
}

/* ---- the in-doubt table ---- */

/* Does [off, off + n) overlap a live entry's slots?  Lock held. */
static bool
wal_pool_busy(uint32 off, uint32 n)
{
	int			i;

	for (i = 0; i < WAL_MAX_INDOUBT; i++)
	{
		WalInDoubt *e = &wal->entries[i];

		if (TransactionIdIsValid(e->xid) && e->n > 0 && off < e->off + e->n && e->off < off + n)
			return true;
	}
	return false;
}

/*
 * Record xid's slots as in doubt.  The pool is used as a ring, since
 * entries mostly resolve in the order they came.  Returns false if the
 * table or the pool is full.  Lock held exclusively.
 */
static bool
wal_insert(TransactionId xid, const uint32 *slots, uint32 n)
{
	int			i;
	uint32		off = wal->pool_head;

	if (n > WAL_POOL_SLOTS / 4)
		return false;
	if (off + n > WAL_POOL_SLOTS)
		off = 0;
	if (wal_pool_busy(off, n))
		return false;
	for (i = 0; i < WAL_MAX_INDOUBT; i++)
	{
		WalInDoubt *e = &wal->entries[i];

		if (TransactionIdIsValid(e->xid))
			continue;
		memcpy(&wal->pool[off], slots, n * sizeof(uint32));
		e->off = off;
		e->n = n;
		e->seq = ++wal->next_seq;
		e->xid = xid;
		wal->pool_head = off + n;
		pg_atomic_fetch_add_u32(&wal->nused, 1);
		return true;
	}
	return false;
}

typedef struct WalCopy
{
	int			index;
	uint32		seq;
	TransactionId xid;
	int			outcome;		/* 0: in progress, 1: committed, -1: aborted */
} WalCopy;

/*
 * The final status of xid, or 0 while it is in progress.  In recovery the
 * known-assigned xids decide "in progress".  An xid whose clog is already
 * truncated counts as committed: a needless bump is harmless.
 */
static int
wal_outcome(TransactionId xid)
{
	if (TransactionIdIsInProgress(xid))
		return 0;
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		return 1;
	return TransactionIdDidCommit(xid) ? 1 : -1;
}

/*
 * Resolve every in-doubt entry whose transaction has ended: bump its slots
 * if it committed, then free it.  Exactly once: an entry is freed, with its
 * bumps, under the exclusive lock, and only if it is still the one copied.
 */
static void
wal_resolve_entries(void)
{
	WalCopy		copy[WAL_MAX_INDOUBT];
	int			n = 0,
				i,
				done = 0;

	LWLockAcquire(wal->lock, LW_SHARED);
	for (i = 0; i < WAL_MAX_INDOUBT; i++)
		if (TransactionIdIsValid(wal->entries[i].xid))
		{
			copy[n].index = i;
			copy[n].seq = wal->entries[i].seq;
			copy[n].xid = wal->entries[i].xid;
			n++;
		}
	LWLockRelease(wal->lock);
	for (i = 0; i < n; i++)
		if ((copy[i].outcome = wal_outcome(copy[i].xid)) != 0)
			done++;
	if (done == 0)
		return;
	LWLockAcquire(wal->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		WalInDoubt *e = &wal->entries[copy[i].index];
		uint32		j;

		if (copy[i].outcome == 0 || e->seq != copy[i].seq || !TransactionIdIsValid(e->xid))
			continue;
		if (copy[i].outcome > 0)
		{
			for (j = 0; j < e->n; j++)
				pg_atomic_fetch_add_u64(&mlcache_shared->gens[wal->pool[e->off + j]], 1);
			pg_atomic_fetch_add_u64(&wal->committed, 1);
		}
		else
			pg_atomic_fetch_add_u64(&wal->aborted, 1);
		e->xid = InvalidTransactionId;
		pg_atomic_fetch_sub_u32(&wal->nused, 1);
	}
	LWLockRelease(wal->lock);
}

/*
 * Called at the start of every lookup and definition load, before any
 * token is read: apply the commits replayed so far.  Cheap when there is
 * nothing to do (two atomic reads).
 */
void
mlcache_wal_resolve(void)
{
	if (wal == NULL)
		return;
	if (pg_atomic_read_u32(&wal->nused) > 0)
		wal_resolve_entries();
	if (pg_atomic_read_u32(&wal->barrier_set))
		wal_try_lift_barrier();
	/* The bumps above (or another resolver's) before the tokens read next. */
	pg_memory_barrier();
}

/*
 * Why a read on this server may not use the cache now, or NULL.  Only a
 * server in recovery has a reason here.
 */
const char *
mlcache_wal_bypass_reason(void)
{
	uint32		state;

	if (!RecoveryInProgress())
		return NULL;
	if (wal == NULL)
		return "the server is a hot standby";
	state = pg_atomic_read_u32(&wal->state);
	if (state == WAL_STATE_OFF)
		return "the primary does not log its invalidations (mlcache.standby_invalidation is off there)";
	if (state == WAL_STATE_UNKNOWN)
		return "the standby has not yet replayed a record saying that the primary logs its invalidations";
	if (pg_atomic_read_u32(&wal->barrier_set))
		return "the standby waits for transactions whose invalidations it cannot know to end";
	return NULL;
}

/*
 * May a value computed for k be stored?  Not while a transaction that
 * touches one of k's slots is in doubt and still in progress.  Always yes
 * outside recovery.  Takes wal->lock shared to copy the xids out.
 */
bool
mlcache_wal_may_store(const MlcacheKey *k)
{
	TransactionId xids[WAL_MAX_INDOUBT];
	int			n = 0,
				i,
				s;
	uint32		j;

	if (wal == NULL || pg_atomic_read_u32(&wal->nused) == 0 || !RecoveryInProgress())
		return true;
	LWLockAcquire(wal->lock, LW_SHARED);
	for (i = 0; i < WAL_MAX_INDOUBT; i++)
	{
		WalInDoubt *e = &wal->entries[i];
		bool		touches = false;

		if (!TransactionIdIsValid(e->xid))
			continue;
		for (j = 0; j < e->n && !touches; j++)
			for (s = 0; s < k->nslots && !touches; s++)
				touches = (wal->pool[e->off + j] == k->slots[s]);
		if (touches)
			xids[n++] = e->xid;
	}
	LWLockRelease(wal->lock);
	for (i = 0; i < n; i++)
		if (TransactionIdIsInProgress(xids[i]))
			return false;
	return true;
}

/* ---- redo ---- */

static void
wal_redo_inval(XLogReaderState *record)
{
	xl_mlcache_inval *xl = (xl_mlcache_inval *) XLogRecGetData(record);
	uint32	   *slots;
	uint32		i;

	pg_atomic_fetch_add_u64(&wal->replayed, 1);
	if (standbyState == STANDBY_DISABLED)
	{
		/*
		 * No hot standby (or crash recovery): nobody reads before recovery
		 * ends, and then the barrier makes mlcache_rmgr_cleanup bump every
		 * slot once, which covers whatever committed meanwhile.
		 */
		TransactionId next = xl->xid;

		TransactionIdAdvance(next);
		LWLockAcquire(wal->lock, LW_EXCLUSIVE);
		wal_set_barrier(next);
		LWLockRelease(wal->lock);
		return;
	}
	slots = palloc(sizeof(uint32) * Max(xl->nhashes, 1));
	for (i = 0; i < xl->nhashes; i++)
		slots[i] = mlcache_slot_of(xl->hashes[i]);
	/*
	 * Make room: entries readers have not resolved yet.  Only once the
	 * known-assigned xids are complete (hot standby snapshot ready): before,
	 * an xid missing from them is not proof that it ended.
	 */
	if (pg_atomic_read_u32(&wal->nused) > WAL_MAX_INDOUBT / 2 &&
		standbyState == STANDBY_SNAPSHOT_READY)
		wal_resolve_entries();
	LWLockAcquire(wal->lock, LW_EXCLUSIVE);
	if (!wal_insert(xl->xid, slots, xl->nhashes))
	{
		/* Bump everything now, and again once xid (and all before) ended. */
		TransactionId next = xl->xid;

		TransactionIdAdvance(next);
		pg_atomic_fetch_add_u64(&wal->overflows, 1);
		wal_bump_all();
		wal_set_barrier(next);
	}
	LWLockRelease(wal->lock);
	pfree(slots);
}

static void
wal_redo_state(XLogReaderState *record)
{
	xl_mlcache_state *xl = (xl_mlcache_state *) XLogRecGetData(record);

	if (!xl->on)
	{
		pg_atomic_write_u32(&wal->state, WAL_STATE_OFF);
		return;
	}
	if (pg_atomic_read_u32(&wal->state) == WAL_STATE_ON)
		return;
	/* From now on every commit is logged; the earlier ones may not be. */
	LWLockAcquire(wal->lock, LW_EXCLUSIVE);
	wal_set_barrier(xl->on_since);
	LWLockRelease(wal->lock);
	pg_atomic_write_u32(&wal->state, WAL_STATE_ON);
}

static void
mlcache_rmgr_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & XLR_RMGR_INFO_MASK;

	if (wal == NULL)
		return;
	switch (info)
	{
		case XLOG_MLCACHE_INVAL:
			wal_redo_inval(record);
			break;
		case XLOG_MLCACHE_STATE:
			wal_redo_state(record);
			break;
		default:
			elog(PANIC, "mlcache_rmgr_redo: unknown op code %u", info);
	}
}

/*
 * Start of redo.  INVAL records of transactions assigned before the replay
 * start point were not replayed here, so no caching until every xid before
 * the next xid of the starting checkpoint has ended, and a STATE{on} record
 * has come.
 */
static void
mlcache_rmgr_startup(void)
{
	if (wal == NULL)
		return;
	pg_atomic_write_u32(&wal->state, WAL_STATE_UNKNOWN);
	LWLockAcquire(wal->lock, LW_EXCLUSIVE);
	wal_set_barrier(XidFromFullTransactionId(ShmemVariableCache->nextXid));
	LWLockRelease(wal->lock);
}

/*
 * End of redo (promotion, or the end of crash recovery): the server commits
 * on its own from now on, and bumps at commit as any primary does.  Lift
 * the barrier, bumping every slot if the standby was not caching, since
 * what it cached before then may be outdated.  In-doubt entries left are
 * resolved by readers (an xid that never committed has aborted now).
 */
static void
mlcache_rmgr_cleanup(void)
{
	if (wal == NULL)
		return;
	LWLockAcquire(wal->lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u32(&wal->barrier_set) ||
		pg_atomic_read_u32(&wal->state) != WAL_STATE_ON)
		wal_bump_all();
	pg_atomic_write_u32(&wal->barrier_set, 0);
	LWLockRelease(wal->lock);
}

static void
mlcache_rmgr_desc(StringInfo buf, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & XLR_RMGR_INFO_MASK;

	if (info == XLOG_MLCACHE_INVAL)
	{
		xl_mlcache_inval *xl = (xl_mlcache_inval *) XLogRecGetData(record);

		appendStringInfo(buf, "xid %u; %u slot hashes", xl->xid, xl->nhashes);
	}
	else if (info == XLOG_MLCACHE_STATE)
	{
		xl_mlcache_state *xl = (xl_mlcache_state *) XLogRecGetData(record);

		appendStringInfo(buf, "standby_invalidation %s; logged since xid %u",
						 xl->on ? "on" : "off", xl->on_since);
	}
}

static const char *
mlcache_rmgr_identify(uint8 info)
{
	switch (info & XLR_RMGR_INFO_MASK)
	{
		case XLOG_MLCACHE_INVAL:
			return "INVAL";
		case XLOG_MLCACHE_STATE:
			return "STATE";
	}
	return NULL;
}

static RmgrData mlcache_rmgr = {
	.rm_name = "mlcache",
	.rm_redo = mlcache_rmgr_redo,
	.rm_desc = mlcache_rmgr_desc,
	.rm_identify = mlcache_rmgr_identify,
	.rm_startup = mlcache_rmgr_startup,
	.rm_cleanup = mlcache_rmgr_cleanup,
};

/* Register the resource manager; called from _PG_init while preloading. */
void
mlcache_wal_register(void)
{
	RegisterCustomRmgr(MLCACHE_RMGR_ID, &mlcache_rmgr);
}

/* ---- primary ---- */

/* Should a committing transaction here consider logging its invalidations? */
bool
mlcache_wal_wanted(void)
{
	return wal != NULL && XLogStandbyInfoActive() && !RecoveryInProgress();
}

/*
 * Log a committing transaction's slot hashes, if the primary logs (see the
 * file header).  xid must be assigned before this is called: the flag is
 * read after it.  Returns whether a record was written.
 */
bool
mlcache_wal_log_invalidations(TransactionId xid, const uint64 *hashes, int n)
{
	xl_mlcache_inval hdr;

	pg_memory_barrier();
	if (!pg_atomic_read_u32(&wal->logging))
		return false;
	hdr.xid = xid;
	hdr.nhashes = (uint32) n;
	XLogBeginInsert();
	XLogRegisterData((char *) &hdr, SizeOfMlcacheInval);
	XLogRegisterData((char *) hashes, sizeof(uint64) * n);
	(void) XLogInsert(MLCACHE_RMGR_ID, XLOG_MLCACHE_INVAL);
	pg_atomic_fetch_add_u64(&wal->written, 1);
	return true;
}

static void
wal_log_state(bool on, bool heartbeat)
{
	xl_mlcache_state xl;
	XLogRecPtr	lsn;

	xl.on = on ? 1 : 0;
	xl.on_since = wal->on_since;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	if (heartbeat)
		XLogSetRecordFlags(XLOG_MARK_UNIMPORTANT);
	lsn = XLogInsert(MLCACHE_RMGR_ID, XLOG_MLCACHE_STATE);
	/* No commit follows to flush it, and WAL senders send only flushed WAL. */
	XLogFlush(lsn);
}

/* How many WAL senders are connected (a hint, read without their locks). */
static int
wal_walsenders(void)
{
	int			i,
				n = 0;

	if (WalSndCtl == NULL)
		return 0;
	for (i = 0; i < max_wal_senders; i++)
		if (WalSndCtl->walsnds[i].pid != 0)
			n++;
	return n;
}

/*
 * One step of the primary's worker: follow mlcache.standby_invalidation
 * (in the order the file header explains) and announce the state to
 * standbys when it changes, when a WAL sender connects, and as a heartbeat.
 */
void
mlcache_wal_worker_tick(void)
{
	static TimestampTz last = 0;
	static int	last_senders = 0;
	TimestampTz now = GetCurrentTimestamp();
	int			senders = wal_walsenders();
	bool		on;

	if (wal == NULL || RecoveryInProgress() || !XLogStandbyInfoActive())
		return;
	on = pg_atomic_read_u32(&wal->logging) != 0;
	if (mlcache_standby_invalidation && !on)
	{
		pg_atomic_write_u32(&wal->logging, 1);
		pg_memory_barrier();
		wal->on_since = XidFromFullTransactionId(ReadNextFullTransactionId());
		wal_log_state(true, false);
		ereport(LOG, (errmsg("mlcache now logs invalidations for hot standbys")));
	}
	else if (!mlcache_standby_invalidation && on)
	{
		wal_log_state(false, false);
		pg_memory_barrier();
		pg_atomic_write_u32(&wal->logging, 0);
		ereport(LOG, (errmsg("mlcache no longer logs invalidations; hot standbys read around the cache")));
	}
	else if (last == 0 || senders > last_senders ||
			 now - last >= (TimestampTz) WAL_HEARTBEAT_MS * 1000)
		wal_log_state(on, last != 0 && senders <= last_senders);
	else
	{
		last_senders = senders;
		return;
	}
	last = now;
	last_senders = senders;
}

/* ---- health() ---- */

/* Physical replication slots that no WAL sender uses. */
static int
wal_inactive_slots(void)
{
	int			i,
				n = 0;

	if (ReplicationSlotCtl == NULL)
		return 0;
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (i = 0; i < max_replication_slots; i++)
	{
		ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];

		SpinLockAcquire(&s->mutex);
		if (s->in_use && !OidIsValid(s->data.database) && s->active_pid == 0)
			n++;
		SpinLockRelease(&s->mutex);
	}
	LWLockRelease(ReplicationSlotControlLock);
	return n;
}

/* Fill st for health().  Takes wal->lock shared (count) and the slot locks. */
void
mlcache_wal_status(MlcacheWalStatus *st)
{
	uint32		state;

	memset(st, 0, sizeof(*st));
	st->in_recovery = RecoveryInProgress();
	if (wal == NULL)
		return;
	st->logging = pg_atomic_read_u32(&wal->logging) != 0 && XLogStandbyInfoActive();
	st->records_written = pg_atomic_read_u64(&wal->written);
	if (!st->in_recovery)
	{
		st->walsenders = wal_walsenders();
		st->inactive_slots = wal_inactive_slots();
	}
	state = pg_atomic_read_u32(&wal->state);
	st->state = state == WAL_STATE_ON ? "on" : state == WAL_STATE_OFF ? "off" : "unknown";
	st->waiting = pg_atomic_read_u32(&wal->barrier_set) != 0;
	st->in_doubt = (int) pg_atomic_read_u32(&wal->nused);
	st->records_replayed = pg_atomic_read_u64(&wal->replayed);
	st->resolved_committed = pg_atomic_read_u64(&wal->committed);
	st->resolved_aborted = pg_atomic_read_u64(&wal->aborted);
	st->overflows = pg_atomic_read_u64(&wal->overflows);
}
