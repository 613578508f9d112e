/*
 * l1.c
 *	  The per-backend cache (L1).
 *
 * A dynahash table keyed by a 64-bit hash of the key, with the full key kept
 * in the entry (a hash collision is a miss that then overwrites), and an LRU
 * list.  Memory is accounted with GetMemoryChunkSpace, so the cap counts what
 * the allocator really holds, and entries are evicted from the cold end until
 * a new one fits.  All memory lives in a context of its own under
 * TopMemoryContext.
 *
 * L1 knows nothing of freshness: lookup.c compares an entry's stamp with the
 * current generation token before it serves anything.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "lib/ilist.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "l1.h"
#include "stats.h"

typedef struct L1Entry
{
	uint64		hkey;			/* hash key: must be first */
	char	   *key;
	int			keylen;
	Jsonb	   *value;
	MlcacheStamp stamp;
	Size		mem;			/* bytes charged to the cap */
	dlist_node	lru;			/* head is most recently used */
} L1Entry;

static MemoryContext l1_context = NULL;
static HTAB *l1_table = NULL;
static dlist_head l1_lru = DLIST_STATIC_INIT(l1_lru);
static Size l1_bytes = 0;
static int64 l1_entries = 0;

static void
l1_init(void)
{
	HASHCTL		ctl;

	if (l1_table != NULL)
		return;
	l1_context = AllocSetContextCreate(TopMemoryContext, "mlcache L1",
									   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(L1Entry);
	ctl.hcxt = l1_context;
	l1_table = hash_create("mlcache L1", 1024, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static uint64
l1_hash(const MlcacheKey *k)
{
	return hash_bytes_extended((const unsigned char *) k->key, k->keylen, 0x4c31);
}

static void
l1_drop(L1Entry *e)
{
	dlist_delete(&e->lru);
	l1_bytes -= e->mem;
	l1_entries--;
	mlcache_stats_set_l1(l1_entries, (int64) l1_bytes);
	pfree(e->key);
	pfree(e->value);
	hash_search(l1_table, &e->hkey, HASH_REMOVE, NULL);
}

/*
 * Look a key up.  Returns the cached value (still owned by L1: copy it before
 * anything may evict) and fills *stamp, or NULL on a miss.  Expired entries
 * are dropped here.
 */
Jsonb *
mlcache_l1_get(const MlcacheKey *k, MlcacheStamp *stamp)
{
	uint64		h;
	L1Entry    *e;

	if (l1_table == NULL)
		return NULL;
	h = l1_hash(k);
	e = hash_search(l1_table, &h, HASH_FIND, NULL);
	if (e == NULL)
		return NULL;
	if (e->keylen != k->keylen || memcmp(e->key, k->key, k->keylen) != 0)
		return NULL;
	if (e->stamp.expires_at <= GetCurrentTimestamp())
	{
		l1_drop(e);
		return NULL;
	}
	dlist_move_head(&l1_lru, &e->lru);
	*stamp = e->stamp;
	return e->value;
}

/* Evict from the cold end until need more bytes fit under the cap. */
static bool
l1_make_room(Size need, Size cap)
{
	if (need > cap)
		return false;
	while (l1_bytes + need > cap && !dlist_is_empty(&l1_lru))
	{
		L1Entry    *victim = dlist_tail_element(L1Entry, lru, &l1_lru);

		l1_drop(victim);
		mlcache_count(MLC_L1_EVICTION);
	}
	return true;
}

/*
 * Store a copy of value under k.  A value that alone exceeds the cap is not
 * kept (and any older entry for the key is dropped).
 */
void
mlcache_l1_put(const MlcacheKey *k, Jsonb *value, const MlcacheStamp *stamp)
{
	Size		cap = (Size) mlcache_l1_max_memory * 1024;
	Size		need;
	char	   *key;
	Jsonb	   *copy;
	uint64		h;
	bool		found;
	L1Entry    *e;

	l1_init();
	mlcache_l1_remove(k);
	key = MemoryContextAlloc(l1_context, k->keylen + 1);
	copy = MemoryContextAlloc(l1_context, VARSIZE(value));
	need = GetMemoryChunkSpace(key) + GetMemoryChunkSpace(copy) + sizeof(L1Entry);
	if (!l1_make_room(need, cap))
	{
		pfree(key);
		pfree(copy);
		return;
	}
	memcpy(key, k->key, k->keylen);
	key[k->keylen] = '\0';
	memcpy(copy, value, VARSIZE(value));

	h = l1_hash(k);
	e = hash_search(l1_table, &h, HASH_ENTER, &found);
	Assert(!found);
	e->key = key;
	e->keylen = k->keylen;
	e->value = copy;
	e->stamp = *stamp;
	e->mem = need;
	dlist_push_head(&l1_lru, &e->lru);
	l1_bytes += need;
	l1_entries++;
	mlcache_stats_set_l1(l1_entries, (int64) l1_bytes);
}

/* Drop whatever entry occupies k's hash slot. */
void
mlcache_l1_remove(const MlcacheKey *k)
{
	uint64		h;
	L1Entry    *e;

	if (l1_table == NULL)
		return;
	h = l1_hash(k);
	e = hash_search(l1_table, &h, HASH_FIND, NULL);
	if (e != NULL)
		l1_drop(e);
}

/* Forget everything; the memory goes back with the context. */
void
mlcache_l1_clear(void)
{
	if (l1_table == NULL)
		return;
	MemoryContextDelete(l1_context);
	l1_context = NULL;
	l1_table = NULL;
	dlist_init(&l1_lru);
	l1_bytes = 0;
	l1_entries = 0;
	mlcache_stats_set_l1(0, 0);
}

void
mlcache_l1_usage(int64 *entries, int64 *bytes)
{
	*entries = l1_entries;
	*bytes = (int64) l1_bytes;
}

/*
 * Clear L1 whenever the session's key namespace changes (keys.c calls the
 * hook): entries are keyed by the caller's key alone.  Called from _PG_init.
 */
void
mlcache_l1_init(void)
{
	mlcache_namespace_changed_hook = mlcache_l1_clear;
}
