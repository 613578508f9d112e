/*
 * l3_dirty.c
 *	  The watch trigger's side of L3: which materialized views a watched
 *	  table feeds, and marking them dirty at the commit of a write.
 *
 * A view's dirty counter lives in the generation table (see l3.c for the
 * freshness rule); marking it dirty is an invalidation target
 * (mlcache_inval_views), bumped at commit like any other.  Each backend
 * caches a table's list of views from mlcache.watches until watch(),
 * unwatch() or a dropped table bumps the list's own slot.
 *
 * Shared state: only atomic reads of the generation table (see the locking
 * table in shmem.c); no lock is taken here.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "invalidate.h"
#include "keys.h"
#include "l3_dirty.h"
#include "shmem.h"

typedef struct TableViews
{
	Oid			relid;			/* hash key */
	uint64		gen;			/* watches generation when loaded */
	int			nviews;
	Oid		   *views;			/* in TopMemoryContext */
} TableViews;

static HTAB *table_views = NULL;

/* The name whose definition slot stands for mlcache.watches. */
#define L3DIRTY_WATCHES_NAME "\001watches"

/*
 * The slot that mlcache.watches' changes bump: one per database, whatever
 * the session's mlcache.key_prefix (a per-namespace slot would let a
 * session with another prefix keep an outdated list).
 */
static uint32
l3dirty_watches_slot(void)
{
	static uint32 slot = 0;

	if (slot == 0)
		slot = mlcache_def_slot(L3DIRTY_WATCHES_NAME, strlen(L3DIRTY_WATCHES_NAME));
	return slot;
}

/*
 * Load the views a watched table lists, from mlcache.watches, into tv, in
 * TopMemoryContext.  The caller read the generation it tags the list with
 * before calling: the row is read under a snapshot taken now, after that
 * read, so a list never predates its generation (the statement's snapshot
 * could).
 *
 * In READ COMMITTED the statement's snapshot would usually do, since
 * watch() creates triggers, which takes a lock that conflicts with the
 * writers of the table, and a statement takes its table locks before its
 * snapshot.  A REPEATABLE READ or SERIALIZABLE writer's snapshot, though, is
 * its transaction's, which can predate a watch() that committed before the
 * write: read under it, the list missed the views that watch() added, and
 * the write did not mark them dirty (test/isolation/specs/l3_watch_snapshot).
 */
static void
l3dirty_load_table_views(TableViews *tv)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(tv->relid)};
	SPIPlanPtr	plan;
	bool		isnull;

	tv->nviews = 0;
	tv->views = NULL;
	SPI_connect();
	plan = SPI_prepare("SELECT views::oid[] FROM mlcache.watches WHERE tbl = $1", 1, argtypes);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read mlcache.watches");
	if (SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		Datum	   *elems;
		int			i;

		if (!isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
							  &elems, NULL, &tv->nviews);
			tv->views = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(tv->nviews, 1));
			for (i = 0; i < tv->nviews; i++)
				tv->views[i] = DatumGetObjectId(elems[i]);
		}
	}
	SPI_finish();
}

/*
 * Called by the watch trigger: mark, at commit, every view the table feeds
 * as dirty.  The table's list is cached per backend until watch(),
 * unwatch() or a dropped table changes mlcache.watches.
 * Atomic read of the generation table: no lock.
 */
void
mlcache_l3_mark_dirty(Oid relid)
{
	uint32		wslot = l3dirty_watches_slot();
	uint64		gen;
	TableViews *tv;
	bool		found;
	int			i;

	/* The generation first: the list's snapshot must be taken after it. */
	gen = pg_atomic_read_u64(&mlcache_shared->gens[wslot]);
	pg_memory_barrier();
	if (table_views == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TableViews);
		table_views = hash_create("mlcache table views", 32, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	tv = hash_search(table_views, &relid, HASH_ENTER, &found);
	if (found && (tv->gen != gen || mlcache_inval_slot_pending(wslot)))
	{
		if (tv->views)
			pfree(tv->views);
		found = false;
	}
	if (!found)
	{
		/* Never left half-loaded: an error in the load leaves no entry. */
		tv->nviews = 0;
		tv->views = NULL;
		PG_TRY();
		{
			l3dirty_load_table_views(tv);
		}
		PG_CATCH();
		{
			hash_search(table_views, &relid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
		tv->gen = gen;
	}
	for (i = 0; i < tv->nviews; i++)
		mlcache_inval_views(tv->views[i]);
}

PG_FUNCTION_INFO_V1(mlcache_watches_changed);

/* mlcache._watches_changed(): at commit, reload the cached table->views lists. */
Datum
mlcache_watches_changed(PG_FUNCTION_ARGS)
{
	MlcacheTarget t;

	mlcache_require_loaded();
	t.kind = MLCACHE_TARGET_DEF;
	t.text = L3DIRTY_WATCHES_NAME;
	t.len = strlen(L3DIRTY_WATCHES_NAME);
	t.slot = l3dirty_watches_slot();
	t.hash = 0;
	mlcache_inval_add(&t, false);
	PG_RETURN_VOID();
}
