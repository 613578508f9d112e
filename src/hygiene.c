/*
 * hygiene.c
 *	  Redis hygiene: the shared queue of invalidated keys and patterns, and
 *	  the worker's side that removes them from Redis after commit and
 *	  publishes them for other consumers.
 *
 * Committing backends append records to a byte ring in shared memory from
 * their commit callback: a spinlock, a memcpy and SetLatch, nothing that can
 * fail or allocate (G4).  When the ring is full the record is dropped and
 * counted: correctness never depends on Redis being cleaned, since the
 * generation counters already made the values unreachable, and their TTL
 * still bounds how long they take space.
 *
 * The worker (worker.c) calls mlcache_hygiene_work() every iteration: it
 * drains the ring into its own memory, folds duplicates, then UNLINKs keys
 * (a few Lua calls per batch, pipelined) and PUBLISHes the batch's keys and
 * patterns on "<namespace>invalidations", newline-separated, in as few
 * messages as fit.  Patterns are SCANned and what they match UNLINKed in
 * one pass per namespace, at most once per mlcache.scan_interval: patterns
 * wait in the worker for their namespace's next pass.  While Redis is down
 * it keeps the batch and retries with exponential backoff; a batch that
 * outgrows its bound is dropped and counted.
 *
 * Locking (see the table in shmem.c): ring fields are protected by
 * ring->mutex (a spinlock, held only for copies).  worker_latch and
 * worker_pid are written by the worker and read without a lock (a stale
 * value only delays a wake-up).
 */
#include "postgres.h"

#include <signal.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "hygiene.h"
#include "keys.h"
#include "l2_redis.h"
#include "shmem.h"
#include "stats.h"

#define RING_SIZE		(1024 * 1024)
#define RECORD_HEADER	16		/* uint16 text length, namespace length, flags, kind, 3 unused, int64 time */
#define MAX_NS			255		/* longer namespaces are not queued */
#define MAX_BATCH		65536	/* records the worker holds while Redis is down */
#define SCAN_REST_FACTOR 4		/* a namespace's passes are apart at least 4
								 * times as long as the last spent in Redis */
#define SCAN_PAGES_PER_STEP 16	/* SCAN pages (of COUNT 1000) per worker
								 * iteration */
#define PUBLISH_MAX		65536	/* bytes per PUBLISH message (one text may exceed it) */

typedef struct MlcacheRing
{
	slock_t		mutex;
	uint32		head;			/* next byte to write */
	uint32		tail;			/* next byte to read */
	uint32		used;
	uint32		records;
	uint32		waiting;		/* records whose SCAN waits in the worker */
	uint32		held;			/* records the worker has taken but not delivered */
	uint64		scan_restarts;	/* SCAN passes started over on a new connection */
	Latch	   *worker_latch;
	pid_t		worker_pid;
	char		data[RING_SIZE];
} MlcacheRing;

static MlcacheRing *ring = NULL;

typedef struct HygieneItem
{
	char	   *text;			/* Redis name, or SCAN pattern */
	int			textlen;
	char	   *prefix;			/* a pattern's Redis name prefix, unescaped */
	int			prefixlen;
	char	   *channel;		/* shared by the items of one namespace */
	bool		is_pattern;
	bool		scan;			/* SCAN for the pattern (else only PUBLISH) */
	uint64		hash;			/* of text and channel: finds duplicates */
	TimestampTz committed;		/* commit time */
	int64		records;		/* queued records folded into this item */
	bool		in_pass;		/* waiting pattern in its namespace's current SCAN pass */
} HygieneItem;

Size
mlcache_hygiene_shmem_size(void)
{
	return sizeof(MlcacheRing);
}

/* Called with AddinShmemInitLock held. */
void
mlcache_hygiene_shmem_startup(void)
{
	bool		found;

	ring = ShmemInitStruct("mlcache hygiene ring", sizeof(MlcacheRing), &found);
	if (!found)
	{
		SpinLockInit(&ring->mutex);
		ring->head = ring->tail = ring->used = ring->records = ring->waiting = 0;
		ring->held = 0;
		ring->scan_restarts = 0;
		ring->worker_latch = NULL;
		ring->worker_pid = 0;
	}
}

/* Copy into the ring at head, wrapping.  Caller holds ring->mutex. */
static void
hygiene_ring_put(const void *src, uint32 len)
{
	uint32		first = Min(len, RING_SIZE - ring->head);

	memcpy(ring->data + ring->head, src, first);
	memcpy(ring->data, (const char *) src + first, len - first);
	ring->head = (ring->head + len) % RING_SIZE;
}

/* Copy out of the ring at tail, wrapping.  Caller holds ring->mutex. */
static void
hygiene_ring_get(void *dst, uint32 len)
{
	uint32		first = Min(len, RING_SIZE - ring->tail);

	memcpy(dst, ring->data + ring->tail, first);
	memcpy((char *) dst + first, ring->data, len - first);
	ring->tail = (ring->tail + len) % RING_SIZE;
}

/*
 * Queue an invalidated target of namespace ns for removal from Redis and for
 * PUBLISH: a key (kind MLCACHE_TARGET_KEY), a prefix (MLCACHE_TARGET_PREFIX),
 * the whole namespace (MLCACHE_TARGET_ALL, text empty) or a ready Redis name
 * (MLCACHE_HYGIENE_RNAME).  The worker builds Redis names and patterns, so
 * that the commit path only copies bytes.  committed is the time of the
 * commit, so that values stored after it are left alone.  Runs in the commit
 * callback: no allocation, no I/O, no ERROR.
 * Takes ring->mutex for the copy only.
 */
void
mlcache_hygiene_enqueue(char kind, const char *ns, int nslen, const char *text,
						int len, bool scan, TimestampTz committed)
{
	uint32		need = RECORD_HEADER + nslen + len;
	unsigned char hdr[RECORD_HEADER];
	bool		queued = false;
	bool		was_empty = false;
	bool		half_full = false;
	Latch	   *latch;

	if (ring == NULL)
		return;
	if (len <= MLCACHE_HYGIENE_MAX_TEXT && nslen <= MAX_NS)
	{
		memset(hdr, 0, RECORD_HEADER);
		hdr[0] = len & 0xff;
		hdr[1] = (len >> 8) & 0xff;
		hdr[2] = (unsigned char) nslen;
		hdr[3] = scan ? 1 : 0;
		hdr[4] = (unsigned char) kind;
		memcpy(hdr + 8, &committed, sizeof(committed));
		SpinLockAcquire(&ring->mutex);
		if (ring->used + need <= RING_SIZE)
		{
			was_empty = (ring->records == 0);
			half_full = (ring->used < RING_SIZE / 2 && ring->used + need >= RING_SIZE / 2);
			hygiene_ring_put(hdr, RECORD_HEADER);
			hygiene_ring_put(ns, nslen);
			hygiene_ring_put(text, len);
			ring->used += need;
			ring->records++;
			queued = true;
		}
		SpinLockRelease(&ring->mutex);
	}
	mlcache_count(queued ? MLC_HYGIENE_QUEUED : MLC_HYGIENE_DROPPED);
	/*
	 * The worker drains everything once woken: wake it for the first record,
	 * and again when the ring is half full, to end its batch delay early.
	 */
	latch = ring->worker_latch;
	if ((was_empty || half_full) && latch != NULL)
		SetLatch(latch);
}

/*
 * The records in the ring, and those whose SCAN waits in the worker for its
 * namespace's next pass (0 and 0 before shared memory is set up); with
 * held, those the worker has taken from the ring and not yet delivered
 * (while Redis fails: its held batch); with used, the ring's bytes in use.
 * Takes ring->mutex.
 */
static void
hygiene_counts(int *records, int *waiting, int *held, uint32 *used)
{
	*records = *waiting = 0;
	if (held)
		*held = 0;
	if (used)
		*used = 0;
	if (ring == NULL)
		return;
	SpinLockAcquire(&ring->mutex);
	*records = ring->records;
	*waiting = ring->waiting;
	if (held)
		*held = ring->held;
	if (used)
		*used = ring->used;
	SpinLockRelease(&ring->mutex);
}

/*
 * Records not yet delivered: in the ring, in the worker's held batch, or
 * waiting for a SCAN pass.
 */
int
mlcache_hygiene_queue_length(void)
{
	int			records,
				waiting,
				held;

	hygiene_counts(&records, &waiting, &held, NULL);
	return records + waiting + held;
}

/*
 * The worker no longer holds a batch (delivered, dropped, or it is gone);
 * with waiting_too, no patterns wait for a pass either.  Takes ring->mutex.
 */
static void
hygiene_clear_held(bool waiting_too)
{
	SpinLockAcquire(&ring->mutex);
	ring->held = 0;
	if (waiting_too)
		ring->waiting = 0;
	SpinLockRelease(&ring->mutex);
}

/* SCAN passes that started over because the Redis connection changed. */
int64
mlcache_hygiene_scan_restarts(void)
{
	int64		n;

	if (ring == NULL)
		return 0;
	SpinLockAcquire(&ring->mutex);
	n = (int64) ring->scan_restarts;
	SpinLockRelease(&ring->mutex);
	return n;
}

static void
hygiene_count_restarts(int n)
{
	SpinLockAcquire(&ring->mutex);
	ring->scan_restarts += n;
	SpinLockRelease(&ring->mutex);
}

/* Records whose SCAN waits in the worker. */
int
mlcache_hygiene_scans_waiting(void)
{
	int			records,
				waiting;

	hygiene_counts(&records, &waiting, NULL, NULL);
	return waiting;
}

/*
 * Is the worker running?  worker_pid is read without a lock (single writer).
 */
bool
mlcache_hygiene_worker_alive(void)
{
	pid_t		pid;

	if (ring == NULL)
		return false;
	pid = ring->worker_pid;
	return pid != 0 && kill(pid, 0) == 0;
}

/*
 * What the records of one namespace share: the namespace, its channel
 * "<namespace>invalidations" with the hash of it, and the namespace escaped
 * for SCAN patterns.  Built in the batch's memory context for the first
 * record of a namespace, and kept with the batch (the items point at the
 * channel), so that a batch held while Redis fails does not grow by a
 * namespace's strings at every drain.  A few namespaces are remembered;
 * more than that (many databases committing at once) only cost a rebuild.
 */
typedef struct HygieneNsCache
{
	char	   *ns;
	int			nslen;
	char	   *channel;
	uint64		channel_hash;
	char	   *glob;			/* ns escaped for Redis glob matching */
	int			globlen;
} HygieneNsCache;

#define NS_CACHE_SIZE	8
static HygieneNsCache hygiene_nscache[NS_CACHE_SIZE];	/* in hygiene_batch_cxt */
static int	hygiene_nscache_n = 0;
static int	hygiene_nscache_last = 0;	/* the one found last */

/* The cache entry of namespace ns (of nslen bytes), built if new. */
static HygieneNsCache *
hygiene_ns_cache(const char *ns, int nslen)
{
	HygieneNsCache *nc;
	int			i;

	for (i = 0; i < hygiene_nscache_n; i++)
	{
		int			k = (hygiene_nscache_last + i) % hygiene_nscache_n;

		nc = &hygiene_nscache[k];
		if (nc->nslen == nslen && memcmp(nc->ns, ns, nslen) == 0)
		{
			hygiene_nscache_last = k;
			return nc;
		}
	}
	/* New: a free entry, or the one after the last found. */
	if (hygiene_nscache_n < NS_CACHE_SIZE)
		hygiene_nscache_last = hygiene_nscache_n++;
	else
		hygiene_nscache_last = (hygiene_nscache_last + 1) % NS_CACHE_SIZE;
	nc = &hygiene_nscache[hygiene_nscache_last];
	nc->ns = pnstrdup(ns, nslen);
	nc->nslen = nslen;
	nc->channel = psprintf("%sinvalidations", nc->ns);
	nc->channel_hash = hash_bytes_extended((const unsigned char *) nc->channel,
										   strlen(nc->channel), 0);
	nc->glob = palloc(2 * nslen + 1);
	nc->globlen = mlcache_glob_escape_into(nc->glob, ns, nslen);
	return nc;
}

/*
 * The item for one record: its Redis name or SCAN pattern, and its channel,
 * shared with the other items of its namespace (nc).
 */
static void
hygiene_item(HygieneItem *item, char kind, HygieneNsCache *nc,
			const char *text, int len, bool scan, TimestampTz committed)
{
	item->channel = nc->channel;
	item->is_pattern = (kind == MLCACHE_TARGET_PREFIX || kind == MLCACHE_TARGET_ALL);
	item->prefix = NULL;
	item->prefixlen = 0;
	if (kind == MLCACHE_HYGIENE_RNAME)
	{
		item->text = pnstrdup(text, len);
		item->textlen = len;
	}
	else if (kind == MLCACHE_TARGET_KEY)
		item->text = mlcache_redis_name(nc->ns, nc->nslen, text, len, &item->textlen);
	else
	{
		int			plen = kind == MLCACHE_TARGET_ALL ? 0 : len;

		item->text = mlcache_prefix_glob_escaped(nc->glob, nc->globlen, text, plen,
												 &item->textlen);
		item->prefixlen = nc->nslen + plen;
		item->prefix = palloc(item->prefixlen + 1);
		memcpy(item->prefix, nc->ns, nc->nslen);
		memcpy(item->prefix + nc->nslen, text, plen);
		item->prefix[item->prefixlen] = '\0';
	}
	item->scan = scan;
	item->committed = committed;
	item->records = 1;
	item->in_pass = false;
	item->hash = hash_bytes_extended((const unsigned char *) item->text, item->textlen,
									 nc->channel_hash);
}

/*
 * Move queued records into items[nitems..max), allocating in the current
 * memory context.  Records are copied to a local buffer under the spinlock
 * and turned into items after it is released.  Returns the new count.
 * Takes ring->mutex once per record.
 */
static int
hygiene_drain(HygieneItem *items, int nitems, int max)
{
	char		text[MLCACHE_HYGIENE_MAX_TEXT + 1];
	char		ns[MAX_NS + 1];

	for (;;)
	{
		unsigned char hdr[RECORD_HEADER];
		uint32		len,
					nslen;
		TimestampTz committed;

		if (nitems >= max)
			break;
		SpinLockAcquire(&ring->mutex);
		if (ring->records == 0)
		{
			SpinLockRelease(&ring->mutex);
			break;
		}
		hygiene_ring_get(hdr, RECORD_HEADER);
		len = hdr[0] | (hdr[1] << 8);
		nslen = hdr[2];
		hygiene_ring_get(ns, nslen);
		hygiene_ring_get(text, len);
		ring->used -= RECORD_HEADER + nslen + len;
		ring->records--;
		ring->held++;
		SpinLockRelease(&ring->mutex);

		memcpy(&committed, hdr + 8, sizeof(committed));
		hygiene_item(&items[nitems], (char) hdr[4], hygiene_ns_cache(ns, nslen), text, len,
					(hdr[3] & 1) != 0, committed);
		nitems++;
	}
	return nitems;
}

/*
 * Are a and b the same key or pattern of the same namespace?  A pattern in
 * a SCAN pass under way is not the same as a new one: the pass has already
 * gone past keys that the new one's later commit time would remove.
 */
static bool
hygiene_item_same(const HygieneItem *a, const HygieneItem *b)
{
	return a->is_pattern == b->is_pattern && a->hash == b->hash &&
		a->in_pass == b->in_pass && a->textlen == b->textlen &&
		memcmp(a->text, b->text, a->textlen) == 0 &&
		(a->channel == b->channel || strcmp(a->channel, b->channel) == 0);
}

/*
 * Collapse a batch: the same key or pattern invalidated by many commits is
 * removed (or SCANned) once, with the latest commit time, and published
 * once; it is SCANned if any of its records asked for it, and it counts
 * their records.  An open-addressed table of item indexes, by hash: linear
 * in the batch, where sorting it cost the worker a tenth of its time under
 * single-row commits.  Keeps the first occurrences' order.  With
 * free_folded, the folded items' text and prefix are pfree'd.  Returns the
 * new length.
 */
static int
hygiene_dedup(HygieneItem *items, int n, bool free_folded)
{
	int			size = 16;
	int		   *slots;
	int			i,
				kept = 0;

	if (n < 2)
		return n;
	while (size < 2 * n)
		size *= 2;
	slots = palloc(sizeof(int) * size);
	memset(slots, -1, sizeof(int) * size);
	for (i = 0; i < n; i++)
	{
		uint32		s = (uint32) (items[i].hash ^ (items[i].hash >> 32)) & (size - 1);

		while (slots[s] >= 0 && !hygiene_item_same(&items[slots[s]], &items[i]))
			s = (s + 1) & (size - 1);
		if (slots[s] < 0)
		{
			/* First of its kind: move it down to the kept prefix. */
			if (kept != i)
				items[kept] = items[i];
			slots[s] = kept++;
			continue;
		}
		items[slots[s]].committed = Max(items[slots[s]].committed, items[i].committed);
		items[slots[s]].scan = items[slots[s]].scan || items[i].scan;
		items[slots[s]].records += items[i].records;
		if (free_folded)
		{
			pfree(items[i].text);
			if (items[i].prefix)
				pfree(items[i].prefix);
		}
	}
	pfree(slots);
	return kept;
}

/* Make c the PUBLISH of msg on channel. */
static void
hygiene_publish_cmd(MlcacheL2Cmd *c, const char *channel, const char *msg)
{
	mlcache_l2_cmd_init(c, 3);
	c->argv[0] = "PUBLISH";
	c->argv[1] = channel;
	c->argv[2] = msg;
}

/*
 * The PUBLISH commands for a batch: per channel, the texts joined by
 * newlines (keys and patterns never contain control characters), at most
 * PUBLISH_MAX bytes per message.  Returns how many commands it added.
 */
static int
hygiene_publishes(HygieneItem *items, int n, MlcacheL2Cmd *cmds)
{
	int			ncmds = 0;
	bool	   *done = palloc0(sizeof(bool) * n);
	int			i,
				j;

	for (i = 0; i < n; i++)
	{
		StringInfoData msg;

		if (done[i])
			continue;
		initStringInfo(&msg);
		for (j = i; j < n; j++)
		{
			if (done[j] || (items[j].channel != items[i].channel &&
							strcmp(items[j].channel, items[i].channel) != 0))
				continue;
			if (msg.len > 0 && msg.len + 1 + items[j].textlen > PUBLISH_MAX)
			{
				hygiene_publish_cmd(&cmds[ncmds++], items[i].channel, msg.data);
				initStringInfo(&msg);
			}
			if (msg.len > 0)
				appendStringInfoChar(&msg, '\n');
			appendBinaryStringInfo(&msg, items[j].text, items[j].textlen);
			done[j] = true;
		}
		hygiene_publish_cmd(&cmds[ncmds++], items[i].channel, msg.data);
	}
	return ncmds;
}

/*
 * SCAN passes.  The patterns of a namespace are cleaned by one SCAN pass,
 * however many there are: MATCH on the glob of their longest common prefix,
 * each key found compared with the prefixes it is under and the latest
 * commit time among them (mlcache_l2_scan_unlink_prefixes).  A pass reads
 * the whole keyspace under that prefix, which over millions of keys costs
 * Redis more than everything else the worker asks of it; so a namespace
 * gets at most one pass per mlcache.scan_interval, counted from the end of
 * its last, and rests at least SCAN_REST_FACTOR times as long as its last
 * pass spent in Redis, so that however large the keyspace, its passes take
 * at most a fifth of the time.  A pass runs SCAN_PAGES_PER_STEP pages per
 * iteration of the worker, which delivers its batches in between, so that
 * a long pass does not leave the ring to fill.  The patterns delivered
 * meanwhile (their PUBLISH has gone out with their batch) wait here, folded
 * by pattern, for the next pass, and their records count as delivered once
 * it has run.  Worker-local; ring->waiting tells the backends how many
 * records wait.
 */
typedef struct HygieneNs
{
	char	   *channel;		/* "<namespace>invalidations", TopMemoryContext */
	TimestampTz next_pass;		/* no new pass of this namespace before this */
	int			nwaiting;		/* its waiting patterns, in the pass or not */
	bool		passing;		/* a pass is under way (its patterns: in_pass) */
	MlcacheL2Cursor cursor;		/* where the pass resumes */
	TimestampTz busy;			/* time the pass has spent in its steps (us) */
	TimestampTz ended;			/* when its last pass ended (0: none yet) */
} HygieneNs;

static HygieneNs *scan_ns = NULL;	/* namespaces with waiting patterns or a
									 * recent pass */
static int	scan_nns = 0;
static int	scan_maxns = 0;
static MemoryContext scan_cxt = NULL;	/* the waiting patterns' text and prefix */
static HygieneItem *scan_items = NULL;	/* [MAX_BATCH]; channel is their
										 * HygieneNs's */
static int	scan_nitems = 0;

/* The entry of the namespace whose channel is channel, added if new. */
static HygieneNs *
hygiene_ns(const char *channel)
{
	HygieneNs  *ns;
	int			i;

	for (i = 0; i < scan_nns; i++)
		if (strcmp(scan_ns[i].channel, channel) == 0)
			return &scan_ns[i];
	if (scan_nns == scan_maxns)
	{
		scan_maxns = Max(8, 2 * scan_maxns);
		scan_ns = scan_ns == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(HygieneNs) * scan_maxns)
			: repalloc(scan_ns, sizeof(HygieneNs) * scan_maxns);
	}
	ns = &scan_ns[scan_nns++];
	memset(ns, 0, sizeof(HygieneNs));
	ns->channel = MemoryContextStrdup(TopMemoryContext, channel);
	return ns;
}

/*
 * Count each namespace's waiting patterns, and publish how many records
 * wait.  Takes ring->mutex.
 */
static void
hygiene_scan_recount(void)
{
	int64		n = 0;
	int			i,
				k;

	for (k = 0; k < scan_nns; k++)
		scan_ns[k].nwaiting = 0;
	for (i = 0; i < scan_nitems; i++)
	{
		n += scan_items[i].records;
		for (k = 0; k < scan_nns; k++)
			if (scan_items[i].channel == scan_ns[k].channel)
			{
				scan_ns[k].nwaiting++;
				break;
			}
	}
	SpinLockAcquire(&ring->mutex);
	ring->waiting = (uint32) Min(n, PG_UINT32_MAX);
	SpinLockRelease(&ring->mutex);
}

/*
 * When ns's next pass may start: mlcache.scan_interval after its last ended,
 * and at least SCAN_REST_FACTOR times as long as that pass spent in Redis.
 */
static void
hygiene_scan_plan(HygieneNs *ns)
{
	ns->next_pass = ns->ended;
	if (mlcache_scan_interval > 0)
		ns->next_pass += Max((TimestampTz) mlcache_scan_interval * 1000,
							 SCAN_REST_FACTOR * ns->busy);
}

/* Is a pass under way? */
static bool
hygiene_scan_passing(void)
{
	int			i;

	for (i = 0; i < scan_nns; i++)
		if (scan_ns[i].passing)
			return true;
	return false;
}

/*
 * When the worker next has a pass to start or continue: 0 if none, a time
 * already past while a pass is under way.
 */
static TimestampTz
hygiene_scan_next(void)
{
	TimestampTz next = 0;
	int			i;

	for (i = 0; i < scan_nns; i++)
	{
		TimestampTz t;

		if (scan_ns[i].nwaiting == 0)
			continue;
		t = scan_ns[i].passing ? 1 : scan_ns[i].next_pass;
		if (next == 0 || t < next)
			next = t;
	}
	return next;
}

/*
 * Run ns's pass for a step (SCAN_PAGES_PER_STEP pages), starting it if none
 * is under way and one is due; with force, run passes to their end until
 * nothing of ns waits (a shutdown request stops that between steps).  When
 * a pass ends, its patterns are done (their records are added to *done) and
 * the next one waits.  Returns false if Redis failed (or a forced run
 * stopped): after the backoff the pass resumes where it was, or starts over
 * if its connection was replaced (see MlcacheL2Cursor).
 */
static bool
hygiene_scan_ns(HygieneNs *ns, bool force, TimestampTz now, int64 *done)
{
	for (;;)
	{
		MlcacheL2Prefix *prefixes;
		int			np = 0,
					lcp = 0,
					kept = 0,
					i;
		int64		got = 0;
		TimestampTz start,
					end;
		MlcacheL2Result res;

		if (!ns->passing)
		{
			if (ns->nwaiting == 0 || (!force && now < ns->next_pass))
				return true;
			for (i = 0; i < scan_nitems; i++)
				if (scan_items[i].channel == ns->channel)
					scan_items[i].in_pass = true;
			ns->passing = true;
			mlcache_l2_cursor_init(&ns->cursor);
			ns->busy = 0;
		}
		prefixes = palloc(sizeof(MlcacheL2Prefix) * scan_nitems);
		for (i = 0; i < scan_nitems; i++)
		{
			HygieneItem *w = &scan_items[i];

			if (w->channel != ns->channel || !w->in_pass)
				continue;
			if (np == 0)
				lcp = w->prefixlen;
			else
			{
				int			c = 0;

				while (c < lcp && c < w->prefixlen && w->prefix[c] == prefixes[0].text[c])
					c++;
				lcp = c;
			}
			prefixes[np].text = w->prefix;
			prefixes[np].len = w->prefixlen;
			prefixes[np].before = w->committed;
			np++;
		}
		if (np == 0)
		{
			/* Cannot happen: a pass keeps its patterns until it ends. */
			pfree(prefixes);
			ns->passing = false;
			continue;
		}
		start = GetCurrentTimestamp();
		res = mlcache_l2_scan_unlink_prefixes(psprintf("%s*", mlcache_glob_escape(prefixes[0].text, lcp)),
											  prefixes, np, &ns->cursor, SCAN_PAGES_PER_STEP, &got);
		end = GetCurrentTimestamp();
		pfree(prefixes);
		ns->busy += end - start;
		if (ns->cursor.restarts > 0)
		{
			/* Another connection: the pass has started over (see MlcacheL2Cursor). */
			hygiene_count_restarts(ns->cursor.restarts);
			ns->cursor.restarts = 0;
		}
		mlcache_count_n(MLC_REDIS_UNLINKED, got);
		/* On failure the cursor stays: the pass resumes, or starts over on a new connection. */
		if (res != L2_OK)
			return false;
		if (strcmp(ns->cursor.pos, "0") != 0)
		{
			if (!force)
				return true;	/* more at the next step */
			if (ShutdownRequestPending)
				return false;	/* a forced run gives way to a shutdown */
			continue;
		}

		/* The pass has ended: its patterns are done. */
		for (i = 0; i < scan_nitems; i++)
		{
			HygieneItem *w = &scan_items[i];

			if (w->channel == ns->channel && w->in_pass)
			{
				*done += w->records;
				pfree(w->text);
				pfree(w->prefix);
				continue;
			}
			scan_items[kept++] = *w;
		}
		scan_nitems = kept;
		ns->passing = false;
		ns->ended = end;
		hygiene_scan_plan(ns);
		hygiene_scan_recount();
		if (!force)
			return true;
	}
}

/*
 * Step every namespace's pass (hygiene_scan_ns), or with force run them all
 * to their end.  Adds the records delivered to *done.  Returns false if
 * Redis failed.
 */
static bool
hygiene_scan_run(bool force, int64 *done)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		ok = true;
	int			k,
				kept = 0;

	for (k = 0; k < scan_nns && ok; k++)
		ok = hygiene_scan_ns(&scan_ns[k], force, now, done);

	/* Forget the namespaces with nothing waiting whose pass is long enough ago. */
	for (k = 0; k < scan_nns; k++)
	{
		if (scan_ns[k].nwaiting == 0 && scan_ns[k].next_pass <= now)
		{
			pfree(scan_ns[k].channel);
			continue;
		}
		scan_ns[kept++] = scan_ns[k];
	}
	scan_nns = kept;
	if (scan_nitems == 0)
		MemoryContextReset(scan_cxt);
	return ok;
}

/*
 * Hold the delivered batch's patterns that are to be SCANned until their
 * namespace's next pass.  When they would not fit, every waiting pass runs
 * first.  Returns false if that failed (Redis); nothing is held then.  Adds
 * the records delivered by such passes to *done.
 */
static bool
hygiene_scan_hold(HygieneItem *items, int n, int64 *done)
{
	MemoryContext old;
	int			nnew = 0,
				i;

	for (i = 0; i < n; i++)
		if (items[i].is_pattern && items[i].scan)
			nnew++;
	if (nnew == 0)
		return true;
	if (scan_nitems + nnew > MAX_BATCH && !hygiene_scan_run(true, done))
		return false;
	old = MemoryContextSwitchTo(scan_cxt);
	for (i = 0; i < n; i++)
	{
		HygieneItem *w;

		if (!items[i].is_pattern || !items[i].scan)
			continue;
		w = &scan_items[scan_nitems++];
		*w = items[i];
		w->text = pstrdup(items[i].text);
		w->prefix = pnstrdup(items[i].prefix, items[i].prefixlen);
		w->channel = hygiene_ns(items[i].channel)->channel;
		w->in_pass = false;
	}
	MemoryContextSwitchTo(old);
	scan_nitems = hygiene_dedup(scan_items, scan_nitems, true);
	hygiene_scan_recount();
	return true;
}

/*
 * Deliver a batch: remove the keys (one EVAL per MLCACHE_L2_KEYS_PER_EVAL,
 * each key compared with its own commit time) and PUBLISH every item, all
 * pipelined; then hand the patterns marked for SCAN to their namespace's
 * next pass (hygiene_scan_hold).  Only values computed before the
 * invalidating commit are removed (mlcache_l2_cmd_unlink_older).  Returns
 * true if all of it went through; adds the records delivered (all but the
 * held patterns') to *done.
 */
static bool
hygiene_deliver(HygieneItem *items, int n, int64 *done)
{
	/* At most one EVAL and one PUBLISH per item. */
	MlcacheL2Cmd *cmds = palloc0(sizeof(MlcacheL2Cmd) * 2 * n);
	const char **keys = palloc(sizeof(char *) * n);
	const char **befores = palloc(sizeof(char *) * n);	/* keys' commit times, as text */
	int			nkeys = 0,
				ncmds = 0,
				neval,
				i;
	int64		removed = 0;

	for (i = 0; i < n; i++)
	{
		if (items[i].is_pattern)
			continue;
		keys[nkeys] = items[i].text;
		befores[nkeys] = palloc(MAXINT8LEN + 1);
		pg_lltoa((int64) items[i].committed, (char *) befores[nkeys]);
		nkeys++;
	}
	for (i = 0; i < nkeys; i += MLCACHE_L2_KEYS_PER_EVAL)
		mlcache_l2_cmd_unlink_older(&cmds[ncmds++], keys + i, befores + i,
									Min(nkeys - i, MLCACHE_L2_KEYS_PER_EVAL));
	neval = ncmds;
	ncmds += hygiene_publishes(items, n, cmds + ncmds);
	if (mlcache_l2_pipeline(cmds, ncmds) != L2_OK)
		return false;
	for (i = 0; i < neval; i++)
		removed += cmds[i].result;
	mlcache_count_n(MLC_REDIS_UNLINKED, removed);
	if (!hygiene_scan_hold(items, n, done))
		return false;
	for (i = 0; i < n; i++)
		if (!items[i].is_pattern || !items[i].scan)
			*done += items[i].records;
	return true;
}

/*
 * A LOG line summing up the invalidations delivered to Redis, at most once a
 * minute however many batches there were.
 */
static void
hygiene_log_summary(int delivered)
{
	static int64 since_last = 0;
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();

	since_last += delivered;
	if (last != 0 && now - last < 60 * USECS_PER_SEC)
		return;
	ereport(LOG,
			(errmsg("mlcache delivered %lld invalidations to Redis%s",
					(long long) since_last, last == 0 ? "" : " in the last minute")));
	since_last = 0;
	last = now;
}

/* The worker's batch, kept across iterations while Redis fails. */
static MemoryContext hygiene_batch_cxt = NULL;
static HygieneItem *hygiene_items = NULL;
static int	hygiene_nitems = 0;
static long hygiene_backoff_ms = 0;
static TimestampTz hygiene_retry_at = 0;	/* while backing off: no delivery before this */

/* The batch is delivered or dropped: free it, and the namespaces it used. */
static void
hygiene_batch_reset(void)
{
	hygiene_nitems = 0;
	MemoryContextReset(hygiene_batch_cxt);
	hygiene_nscache_n = 0;
	hygiene_nscache_last = 0;
	hygiene_clear_held(false);
}

/* The records of the held batch. */
static int64
hygiene_batch_records(void)
{
	int64		n = 0;
	int			i;

	for (i = 0; i < hygiene_nitems; i++)
		n += hygiene_items[i].records;
	return n;
}

/*
 * At the worker's exit.  What it held undelivered and the patterns waiting
 * for a pass are given up, left to the TTLs, and counted as dropped.
 * worker_latch and worker_pid have one writer, no lock.
 */
static void
hygiene_clear_pid(int code, Datum arg)
{
	int64		lost;
	int			i;

	if (ring == NULL || ring->worker_pid != MyProcPid)
		return;
	lost = hygiene_items != NULL ? hygiene_batch_records() : 0;
	for (i = 0; i < scan_nitems; i++)
		lost += scan_items[i].records;
	if (lost > 0)
		mlcache_count_n(MLC_HYGIENE_DROPPED, lost);
	hygiene_clear_held(true);
	ring->worker_latch = NULL;
	ring->worker_pid = 0;
}

/*
 * The worker takes the queue: commits wake it through its latch, and its
 * batch and waiting patterns live in TopMemoryContext.  Called once, by the
 * worker.  worker_latch and worker_pid have one writer (this worker): no
 * lock.
 */
void
mlcache_hygiene_attach(void)
{
	ring->worker_latch = MyLatch;
	ring->worker_pid = MyProcPid;
	on_shmem_exit(hygiene_clear_pid, (Datum) 0);
	/* A previous worker's batch and waiting patterns went with it. */
	hygiene_clear_held(true);

	/*
	 * A batch of the default delay fits in the kept first block, so that
	 * resetting the context after each batch gives no memory back to the
	 * kernel only to fault it in again for the next.
	 */
	hygiene_batch_cxt = AllocSetContextCreate(TopMemoryContext, "mlcache worker batch",
											  MLCACHE_WORKER_KEPT_BLOCK, MLCACHE_WORKER_KEPT_BLOCK,
											  ALLOCSET_DEFAULT_MAXSIZE);
	hygiene_items = MemoryContextAlloc(TopMemoryContext, sizeof(HygieneItem) * MAX_BATCH);
	scan_cxt = AllocSetContextCreate(TopMemoryContext, "mlcache worker SCAN patterns",
									 ALLOCSET_DEFAULT_SIZES);
	scan_items = MemoryContextAlloc(TopMemoryContext, sizeof(HygieneItem) * MAX_BATCH);
}

/* Milliseconds from now until t; 0 if it has passed. */
static long
hygiene_ms_until(TimestampTz t)
{
	long		secs;
	int			usecs;

	TimestampDifference(GetCurrentTimestamp(), t, &secs, &usecs);
	return secs * 1000L + usecs / 1000;
}

/*
 * How long the worker may sleep: until the retry time while backing off,
 * else until the next waiting SCAN pass is due, at most a second.
 */
long
mlcache_hygiene_timeout(void)
{
	TimestampTz until;

	/* A retry time that has passed is no reason to wake (nothing may wait). */
	if (hygiene_retry_at != 0 && hygiene_retry_at > GetCurrentTimestamp())
		return Max(hygiene_ms_until(hygiene_retry_at), 1L);
	until = hygiene_scan_next();
	if (until == 0)
		return 1000L;
	return Min(Max(hygiene_ms_until(until), 1L), 1000L);
}

/*
 * The configuration was reloaded.  mlcache.redis_retry_interval may have
 * changed: retry now, back off afresh.  mlcache.scan_interval may have: the
 * namespaces between passes wait by the new one.
 */
void
mlcache_hygiene_reloaded(void)
{
	int			i;

	if (hygiene_retry_at != 0)
	{
		hygiene_backoff_ms = 0;
		hygiene_retry_at = GetCurrentTimestamp();
	}
	for (i = 0; i < scan_nns; i++)
		if (!scan_ns[i].passing && scan_ns[i].ended != 0)
			hygiene_scan_plan(&scan_ns[i]);
}

/*
 * A delivery or a pass failed: back off exponentially.  A full batch is
 * dropped (left to the TTLs) rather than held longer.
 */
static void
hygiene_failed(void)
{
	mlcache_count(MLC_HYGIENE_RETRIES);
	hygiene_backoff_ms = Min(Max(hygiene_backoff_ms * 2, (long) mlcache_redis_retry_interval),
							 10L * mlcache_redis_retry_interval);
	hygiene_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), hygiene_backoff_ms);
	if (hygiene_nitems >= MAX_BATCH)
	{
		mlcache_count_n(MLC_HYGIENE_DROPPED, hygiene_batch_records());
		hygiene_batch_reset();
	}
}

/*
 * Let the commits of mlcache.hygiene_delay gather into one batch: fewer and
 * larger Redis calls, and a key invalidated again meanwhile is removed and
 * published once.  Ends early at a shutdown request, a reload, or a ring
 * half full.  A latch set meanwhile for something else is set again.
 */
static void
hygiene_gather(void)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), mlcache_hygiene_delay);
	bool		woken = false;

	while (!ShutdownRequestPending && !ConfigReloadPending)
	{
		int			records,
					waiting;
		uint32		used;
		long		ms;

		hygiene_counts(&records, &waiting, NULL, &used);
		if (used >= RING_SIZE / 2)
			break;
		ms = hygiene_ms_until(until);
		if (ms <= 0)
			break;
		if (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					  ms, PG_WAIT_EXTENSION) & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			woken = true;
		}
	}
	if (woken)
		SetLatch(MyLatch);
}

/*
 * One iteration of the worker's hygiene: drain the queue into the held
 * batch and deliver it, then run the SCAN passes that are due, or back
 * off.  loop_cxt is the worker's context, reset every iteration; owner is
 * set before the drain (see worker.c).
 */
void
mlcache_hygiene_work(MemoryContext loop_cxt, ResourceOwner owner)
{
	TimestampTz next_pass;
	int64		done = 0;
	bool		ok = true;
	int			records,
				waiting;

	/*
	 * Let commits gather for mlcache.hygiene_delay, unless a SCAN pass is
	 * under way: its steps run one per iteration, and what commits during a
	 * step makes the next batch by itself.
	 */
	hygiene_counts(&records, &waiting, NULL, NULL);
	if (hygiene_nitems == 0 && records > 0 && !hygiene_scan_passing())
		hygiene_gather();

	MemoryContextSwitchTo(hygiene_batch_cxt);
	CurrentResourceOwner = owner;
	hygiene_nitems = hygiene_drain(hygiene_items, hygiene_nitems, MAX_BATCH);
	MemoryContextSwitchTo(loop_cxt);
	/*
	 * Every queued record is done once its item is; duplicates too.  Their
	 * text is freed, so that a batch held while Redis fails grows only with
	 * distinct keys.
	 */
	hygiene_nitems = hygiene_dedup(hygiene_items, hygiene_nitems, true);
	next_pass = hygiene_scan_next();
	if (hygiene_nitems == 0 && (next_pass == 0 || GetCurrentTimestamp() < next_pass))
		return;

	/*
	 * Backing off: commits still wake us, and their records join the held
	 * batch (folding duplicates, keeping the ring from filling), but the
	 * next delivery waits for the retry time unless the batch is full.
	 */
	if (hygiene_retry_at != 0 && hygiene_nitems < MAX_BATCH &&
		GetCurrentTimestamp() < hygiene_retry_at)
		return;
	if (hygiene_nitems > 0)
	{
		ok = hygiene_deliver(hygiene_items, hygiene_nitems, &done);
		if (ok)
		{
			hygiene_batch_reset();
			SetLatch(MyLatch);	/* more may have arrived meanwhile */
		}
	}
	if (ok)
		ok = hygiene_scan_run(false, &done);
	if (done > 0)
	{
		mlcache_count_n(MLC_HYGIENE_DONE, done);
		hygiene_log_summary(done);
	}
	if (!ok)
	{
		hygiene_failed();
		return;
	}
	hygiene_backoff_ms = 0;
	hygiene_retry_at = 0;
}
