/*
 * invalidate.c
 *	  The invalidation path: pending targets, and the commit that applies them.
 *
 * invalidate(), invalidate_pattern(), clear() and (later) the watch triggers
 * add targets to a per-transaction pending set in TopTransactionContext.
 * Nothing happens to any cache before COMMIT.  Each entry records the
 * subtransaction nesting level that added it: a subtransaction abort drops
 * its entries, a subtransaction commit hands them to its parent, and a
 * top-level abort drops everything.
 *
 * At XACT_EVENT_COMMIT, which runs after ProcArrayEndTransaction made the
 * commit visible to new snapshots and before COMMIT returns to the client,
 * every pending slot's generation counter is bumped with an atomic add.
 * That callback does no I/O, allocates nothing and cannot fail (G4).  Redis
 * is cleaned up afterwards by the background worker; correctness never
 * depends on it.
 *
 * For hot standbys (wal.c), at XACT_EVENT_PRE_COMMIT, before the commit
 * record, a transaction with pending targets writes one WAL record with
 * the 64-bit hashes their slots come from, under its top-level xid (assigned
 * here if it had none).  From then on the set is closed: a target added
 * later (by another extension's PRE_COMMIT callback, say) would be bumped
 * here but never reach a standby, so it is refused with an error, which
 * aborts the transaction while that is still possible.
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "hygiene.h"
#include "invalidate.h"
#include "keys.h"
#include "shmem.h"
#include "stats.h"
#include "wal.h"

typedef struct PendingTarget
{
	char		kind;
	uint32		slot;
	int			level;			/* subtransaction nesting level that added it */
	uint64		hash;			/* of (kind, text), for deduplication */
	char	   *text;			/* key or prefix */
	int			len;
	const char *ns;				/* the namespace it was added in */
	int			nslen;
	char	   *rname;			/* for keys too long to queue: the Redis name */
	int			rnamelen;
	bool		scan;			/* SCAN Redis for the pattern after commit */
} PendingTarget;

typedef struct PendingHashEntry
{
	uint64		hash;
	int			index;			/* into pend[] */
} PendingHashEntry;

typedef struct PendingSlotEntry
{
	uint32		slot;
	int			count;
} PendingSlotEntry;

/*
 * All in TopTransactionContext; reset at transaction end.  Most transactions
 * add a handful of targets, searched linearly; the hash tables are built
 * only when there are more than INVAL_LINEAR_MAX.
 */
#define INVAL_LINEAR_MAX 8

static PendingTarget *pend = NULL;
static int	npend = 0;
static int	maxpend = 0;
static HTAB *pend_by_hash = NULL;
static HTAB *pend_slots = NULL;
static char *pend_ns = NULL;	/* a copy of the namespace, per transaction */
static const char *pend_ns_src = NULL;
static bool pend_closed = false;	/* logged for standbys: no more targets */

static void
inval_reset(void)
{
	pend = NULL;
	npend = 0;
	maxpend = 0;
	pend_by_hash = NULL;
	pend_slots = NULL;
	pend_ns = NULL;
	pend_ns_src = NULL;
	pend_closed = false;
}

static HTAB *
inval_hash_create(const char *name, Size keysize, Size entrysize)
{
	HASHCTL		ctl;

	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = TopTransactionContext;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Index pend[i] in both lookup tables. */
static void
inval_index(int i)
{
	bool		found;
	PendingHashEntry *he = hash_search(pend_by_hash, &pend[i].hash, HASH_ENTER, &found);
	PendingSlotEntry *se;

	if (!found)
		he->index = i;
	se = hash_search(pend_slots, &pend[i].slot, HASH_ENTER, &found);
	se->count = found ? se->count + 1 : 1;
}

/* (Re)build both lookup tables from pend[], or drop them for a small set. */
static void
inval_reindex(void)
{
	int			i;

	if (pend_by_hash != NULL)
	{
		hash_destroy(pend_by_hash);
		hash_destroy(pend_slots);
		pend_by_hash = NULL;
		pend_slots = NULL;
	}
	if (npend <= INVAL_LINEAR_MAX)
		return;
	pend_by_hash = inval_hash_create("mlcache pending", sizeof(uint64), sizeof(PendingHashEntry));
	pend_slots = inval_hash_create("mlcache pending slots", sizeof(uint32), sizeof(PendingSlotEntry));
	for (i = 0; i < npend; i++)
		inval_index(i);
}

/*
 * Record where p's clean-up goes: the namespace ns (copied once per
 * transaction), and for a key too long for the worker's queue its Redis
 * name, built here.  The worker builds every other Redis name and pattern
 * itself, off the commit path.
 */
static void
inval_hygiene(PendingTarget *p, const char *ns, int nlen)
{
	if (pend_ns == NULL || pend_ns_src != ns)
	{
		pend_ns = MemoryContextStrdup(TopTransactionContext, ns);
		pend_ns_src = ns;
	}
	p->ns = pend_ns;
	p->nslen = nlen;
	p->rname = NULL;
	p->rnamelen = 0;
	if (p->kind == MLCACHE_TARGET_KEY && p->len > MLCACHE_HYGIENE_MAX_TEXT)
		p->rname = mlcache_redis_name(ns, nlen, p->text, p->len, &p->rnamelen);
}

/* The same target in the same namespace (a SET of mlcache.key_prefix may come between). */
static bool
inval_same(const PendingTarget *p, uint64 hash, const MlcacheTarget *t,
		   const char *ns, int nslen)
{
	return p->hash == hash && p->kind == t->kind && p->len == t->len &&
		memcmp(p->text, t->text, t->len) == 0 &&
		p->nslen == nslen && memcmp(p->ns, ns, nslen) == 0;
}

/*
 * The pending entry of this target, or NULL.  Any pending entry covers a new
 * one.
 */
static PendingTarget *
inval_find_pending(uint64 hash, const MlcacheTarget *t, const char *ns, int nslen)
{
	PendingHashEntry *he;
	int			i;

	if (pend_by_hash == NULL)
	{
		for (i = 0; i < npend; i++)
			if (inval_same(&pend[i], hash, t, ns, nslen))
				return &pend[i];
		return NULL;
	}
	he = hash_search(pend_by_hash, &hash, HASH_FIND, NULL);
	if (he != NULL && inval_same(&pend[he->index], hash, t, ns, nslen))
		return &pend[he->index];
	return NULL;
}

/*
 * The 64-bit hash t's slot is taken from, which standbys replay (wal.c).
 * Pending targets are also deduplicated by it (with their text: see
 * inval_same).  A caller that set a hash that does not give its slot is a
 * bug: a standby would bump the wrong counter.
 */
static uint64
inval_slot_hash(const MlcacheTarget *t)
{
	uint64		hash = t->hash;

	if (hash == 0)
		hash = t->kind == MLCACHE_TARGET_DEF ? mlcache_def_hash(t->text, t->len)
			: mlcache_target_hash(t->kind, t->text, t->len);
	if (mlcache_slot_of(hash) != t->slot)
		elog(ERROR, "mlcache: the hash of invalidation target kind '%c' does not give its slot",
			 t->kind);
	return hash;
}

/*
 * Add a target to the current transaction.  scan asks the worker to SCAN
 * Redis for a prefix or namespace target after commit (explicit
 * invalidate_pattern() and clear()); without it such values are left to their
 * TTL, since watch triggers invalidate prefixes far too often for a SCAN of
 * the keyspace each time.  Returns false if an identical target was already
 * pending (a SCAN asked for now still happens).
 */
bool
mlcache_inval_add(const MlcacheTarget *t, bool scan)
{
	MemoryContext old;
	uint64		hash;
	PendingTarget *p;
	int			nslen;
	const char *ns = mlcache_namespace(&nslen);

	if (pend_closed)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot add an mlcache invalidation after the transaction's invalidations were logged for standbys"),
				 errdetail("The transaction is committing: its invalidations were written to the WAL at PRE_COMMIT, and one added now would never reach a hot standby."),
				 errhint("Invalidate before COMMIT, not from a commit callback.")));
	hash = inval_slot_hash(t);
	if ((p = inval_find_pending(hash, t, ns, nslen)) != NULL)
	{
		/* A watch trigger's prefix, then invalidate_pattern: still SCAN. */
		p->scan = p->scan || scan;
		return false;
	}

	old = MemoryContextSwitchTo(TopTransactionContext);
	if (npend == maxpend)
	{
		maxpend = maxpend ? maxpend * 2 : 16;
		pend = pend ? repalloc(pend, sizeof(PendingTarget) * maxpend)
			: palloc(sizeof(PendingTarget) * maxpend);
	}
	p = &pend[npend];
	p->kind = t->kind;
	p->slot = t->slot;
	p->level = GetCurrentTransactionNestLevel();
	p->hash = hash;
	p->text = pnstrdup(t->text, t->len);
	p->len = t->len;
	p->scan = scan;
	inval_hygiene(p, ns, nslen);
	MemoryContextSwitchTo(old);
	npend++;
	if (pend_by_hash != NULL)
		inval_index(npend - 1);
	else if (npend > INVAL_LINEAR_MAX)
		inval_reindex();
	return true;
}

/*
 * Does the current transaction have a pending invalidation that covers k?
 * Such a key must be read around the cache (read-your-writes, G9).
 */
bool
mlcache_inval_touches(const MlcacheKey *k)
{
	int			i;

	if (npend == 0)
		return false;
	for (i = 0; i < k->nslots; i++)
	{
		if (pend_slots != NULL)
		{
			if (hash_search(pend_slots, &k->slots[i], HASH_FIND, NULL) != NULL)
				return true;
		}
		else
		{
			int			j;

			for (j = 0; j < npend; j++)
				if (pend[j].slot == k->slots[i])
					return true;
		}
	}
	return false;
}

/* Is this slot pending in the current transaction? */
bool
mlcache_inval_slot_pending(uint32 slot)
{
	MlcacheKey	k;

	k.nslots = 1;
	k.slots[0] = slot;
	return mlcache_inval_touches(&k);
}

int
mlcache_inval_pending_count(void)
{
	return npend;
}

/*
 * The commit: bump every pending slot.  No allocation, no I/O, no ERROR.
 * Duplicate slots (hash collisions) are bumped twice, which is harmless.
 * Bumps the generation counters with atomic adds and queues hygiene
 * (ring->mutex): no LWLock on the commit path.
 */
static void
inval_apply(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < npend; i++)
		pg_atomic_fetch_add_u64(&mlcache_shared->gens[pend[i].slot], 1);
	mlcache_count_n(MLC_INVALIDATION, npend);
	for (i = 0; i < npend; i++)
	{
		PendingTarget *p = &pend[i];

		if (p->rname != NULL)
			mlcache_hygiene_enqueue(MLCACHE_HYGIENE_RNAME, p->ns, p->nslen,
									p->rname, p->rnamelen, p->scan, now);
		else if (p->kind == MLCACHE_TARGET_KEY || p->kind == MLCACHE_TARGET_PREFIX ||
				 p->kind == MLCACHE_TARGET_ALL)
			mlcache_hygiene_enqueue(p->kind, p->ns, p->nslen,
									p->text, p->len, p->scan, now);
	}
}

/*
 * PREPARE TRANSACTION with pending invalidations or sets (lookup.c) is
 * refused: both take effect at COMMIT.
 */
void
mlcache_inval_refuse_prepare(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot prepare a transaction that has pending mlcache invalidations or sets"),
			 errdetail("Cache invalidations take effect at COMMIT, which PREPARE TRANSACTION would separate from the commit of its data."),
			 errhint("Run the statements that invalidate cached keys in a transaction that is committed directly.")));
}

/*
 * PRE_COMMIT: write the WAL record standbys replay (see the file header),
 * then close the set.  Nothing to do without pending targets, on a standby
 * or below wal_level replica.
 */
static void
inval_log_for_standbys(void)
{
	uint64	   *hashes;
	TransactionId xid;
	int			i;

	if (!mlcache_wal_wanted())
		return;
	pend_closed = true;
	if (npend == 0)
		return;
	/* Assigned before wal.c reads whether the primary logs: see there. */
	xid = GetTopTransactionId();
	hashes = palloc(sizeof(uint64) * npend);
	for (i = 0; i < npend; i++)
		hashes[i] = pend[i].hash;
	(void) mlcache_wal_log_invalidations(xid, hashes, npend);
	pfree(hashes);
}

/*
 * Apply the pending invalidations at COMMIT, forget them at the end of any
 * transaction.  lookup.c has callbacks of its own for the pending sets (see
 * there for why their order is safe).
 */
static void
inval_xact_callback(XactEvent event, void *arg)
{
	if (mlcache_shared == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			inval_log_for_standbys();
			break;
		case XACT_EVENT_COMMIT:
			if (npend > 0)
				inval_apply();
			inval_reset();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			inval_reset();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (npend > 0)
				mlcache_inval_refuse_prepare();
			break;
		default:
			break;
	}
}

/* Drop what an aborted subtransaction added; hand a committed one's up. */
static void
inval_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i,
				kept = 0;

	if (npend == 0)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < npend; i++)
			if (pend[i].level >= level)
				pend[i].level = level - 1;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		for (i = 0; i < npend; i++)
			if (pend[i].level < level)
				pend[kept++] = pend[i];
		if (kept != npend)
		{
			npend = kept;
			inval_reindex();
		}
	}
}

void
mlcache_inval_init(void)
{
	RegisterXactCallback(inval_xact_callback, NULL);
	RegisterSubXactCallback(inval_subxact_callback, NULL);
}

/*
 * Mark, at commit, the dirty counter of view viewid of this database
 * (InvalidOid: all its views; see l3.c).  invalidate(), invalidate_pattern(),
 * clear() and DDL on watched tables mark all of them, since the data they
 * stand for may feed any view: one counter, no list of views to read.
 */
void
mlcache_inval_views(Oid viewid)
{
	MlcacheTarget t;

	t.kind = MLCACHE_TARGET_VIEW;
	t.text = OidIsValid(viewid) ? psprintf("%u/%u", MyDatabaseId, viewid)
		: psprintf("%u/*", MyDatabaseId);
	t.len = strlen(t.text);
	t.hash = mlcache_view_hash(MyDatabaseId, viewid);
	t.slot = mlcache_slot_of(t.hash);
	mlcache_inval_add(&t, false);
}

static text *
inval_key_arg(FunctionCallInfo fcinfo, const char *what)
{
	text	   *t;

	mlcache_require_loaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	t = PG_GETARG_TEXT_PP(0);
	mlcache_check_key(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), what);
	return t;
}

PG_FUNCTION_INFO_V1(mlcache_invalidate);

/*
 * mlcache.invalidate(key): invalidate one key, literally (glob
 * characters in it have no special meaning), at commit.
 */
Datum
mlcache_invalidate(PG_FUNCTION_ARGS)
{
	text	   *key = inval_key_arg(fcinfo, "cache key");
	MlcacheTarget t;

	mlcache_target_init(&t, MLCACHE_TARGET_KEY, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
	mlcache_inval_add(&t, false);
	/* The data behind the key may feed a materialized view (L3). */
	mlcache_inval_views(InvalidOid);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_invalidate_pattern);

/*
 * mlcache.invalidate_pattern(pattern): invalidate, at commit,
 * every key the Redis glob can match.  Locally this is one generation bump
 * (see mlcache_pattern_target); Redis is SCANned by the worker afterwards.
 * Returns 1 if a new invalidation was registered, 0 if the same one was
 * already pending in this transaction.
 */
Datum
mlcache_invalidate_pattern(PG_FUNCTION_ARGS)
{
	text	   *pat = inval_key_arg(fcinfo, "pattern");
	char	   *p = text_to_cstring(pat);
	int			len = strlen(p);
	MlcacheTarget t = mlcache_pattern_target(p, len);
	bool		added;

	added = mlcache_inval_add(&t, true);
	mlcache_inval_views(InvalidOid);
	PG_RETURN_INT64(added ? 1 : 0);
}

PG_FUNCTION_INFO_V1(mlcache_clear);

/* mlcache.clear(): invalidate the whole namespace at commit, in O(1). */
Datum
mlcache_clear(PG_FUNCTION_ARGS)
{
	MlcacheTarget t;

	mlcache_require_loaded();
	mlcache_target_init(&t, MLCACHE_TARGET_ALL, "", 0);
	mlcache_inval_add(&t, true);
	mlcache_inval_views(InvalidOid);
	PG_RETURN_VOID();
}
