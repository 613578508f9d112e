/*
 * keys.c
 *	  What a cache key is and what it depends on.
 *
 * A key depends on a set of generation counters in shared memory: one for
 * the whole namespace (bumped by clear() and by globs we cannot narrow), one
 * per ":"-terminated prefix of the key, and one for the key itself.  Every
 * counter only grows, so the sum of a key's counters (its "token") changes
 * exactly when one of them is bumped; a cached value stays valid only while
 * the token it was computed under is still the current one.
 *
 * Every key also depends on the cluster-wide security slot, which any
 * change of privileges, role membership or row-level security bumps (see
 * security.c): a value computed under the old privileges is then never
 * served again.
 *
 * Slots are chosen by hashing (database, kind, text): not the namespace
 * (mlcache.key_prefix), which only names values in Redis, so that a writer
 * and a reader with different key_prefix settings still see each other's
 * invalidations.  A collision only makes a bump hit an unrelated key too: a
 * spurious miss, never a stale hit.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "guc.h"
#include "keys.h"
#include "shmem.h"
#include "template.h"

void		(*mlcache_namespace_changed_hook) (void) = NULL;

static char *ns_text = NULL;
static int	ns_len = 0;
static uint64 ns_seed = 0;
static uint64 ns_version = (uint64) -1;
static uint64 db_seed = 0;		/* seeds generation slots: see the header */

/* The seed of this database's generation slots. */
static inline uint64
keys_db_seed(void)
{
	if (db_seed == 0)
	{
		Oid			db = MyDatabaseId;

		db_seed = hash_bytes_extended((const unsigned char *) &db, sizeof(db),
									  UINT64CONST(0x6d6c6361636865)) | 1;
	}
	return db_seed;
}

/*
 * On a server in recovery the namespace gets "standby:<epoch>:" appended: a
 * standby's generations are its own (so are its epoch and its values), and
 * sharing names with its primary or another standby would only make them
 * overwrite each other's values.  See README, "Hot standbys".
 */
static char *
keys_standby_namespace(char *text)
{
	char	   *s = psprintf("%sstandby:%016llx:", text,
							 (unsigned long long) mlcache_shared->epoch);
	char	   *r = MemoryContextStrdup(TopMemoryContext, s);

	pfree(s);
	pfree(text);
	return r;
}

/*
 * The namespace: mlcache.key_prefix, or "mlcache:<system identifier>:<database>:"
 * when that is empty (with ':' and '%' in the name escaped).  The system
 * identifier (pg_control's, set by initdb) keeps two servers that share one
 * Redis and have databases of the same name apart; a standby and a restored
 * backup share it with the server they were copied from.  Cached in
 * TopMemoryContext until the setting changes; a change also empties this
 * backend's L1.  On a standby "standby:<epoch>:" is appended (above).
 */
const char *
mlcache_namespace(int *len)
{
	static bool ns_standby = false;
	bool		standby = RecoveryInProgress();

	if (ns_text == NULL || ns_version != mlcache_prefix_config_version || ns_standby != standby)
	{
		char	   *text;

		if (mlcache_key_prefix != NULL && mlcache_key_prefix[0] != '\0')
			text = MemoryContextStrdup(TopMemoryContext, mlcache_key_prefix);
		else
		{
			char	   *db = get_database_name(MyDatabaseId);
			StringInfoData buf;
			const char *c;

			/*
			 * ':' and '%' in the name are written %3A and %25, so that no
			 * database's namespace is a prefix of another's ("app" and
			 * "app:x") and no pattern of one reaches the other's keys.
			 */
			initStringInfo(&buf);
			appendStringInfo(&buf, "mlcache:" UINT64_FORMAT ":", GetSystemIdentifier());
			for (c = db ? db : "?"; *c; c++)
			{
				if (*c == ':')
					appendStringInfoString(&buf, "%3A");
				else if (*c == '%')
					appendStringInfoString(&buf, "%25");
				else
					appendStringInfoChar(&buf, *c);
			}
			appendStringInfoChar(&buf, ':');
			text = MemoryContextStrdup(TopMemoryContext, buf.data);
			pfree(buf.data);
		}
		if (standby)
			text = keys_standby_namespace(text);
		ns_standby = standby;
		if (ns_text)
			pfree(ns_text);
		ns_text = text;
		ns_len = strlen(text);
		ns_seed = hash_bytes_extended((const unsigned char *) ns_text, ns_len,
									  UINT64CONST(0x6d6c6361636865));
		ns_version = mlcache_prefix_config_version;
		/* L1 is keyed by the caller's key alone: start it afresh. */
		if (mlcache_namespace_changed_hook)
			mlcache_namespace_changed_hook();
	}
	*len = ns_len;
	return ns_text;
}

/*
 * Reject keys that cannot be cached: empty, too long, or holding control
 * characters (they would make Redis keys and log lines ambiguous).  NULL is
 * checked by the callers, which see the argument.
 */
void
mlcache_check_key(const char *key, int len, const char *what)
{
	int			i;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	if (len > MLCACHE_MAX_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too long", what),
				 errdetail("It is %d bytes long; the limit is %d bytes.", len, MLCACHE_MAX_KEY)));
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) key[i];

		if (c < 0x20 || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", what),
					 errdetail("Byte %d has the value 0x%02x.", i + 1, c)));
	}
}

/*
 * A target's 64-bit hash in the current database: its generation slot is
 * taken from it, and pending invalidations are deduplicated by it.
 */
uint64
mlcache_target_hash(char kind, const char *text, int len)
{
	return hash_bytes_extended((const unsigned char *) text, len, keys_db_seed() + (uint64) kind);
}

/*
 * The generation slot a 64-bit hash picks: its low bits, never slot 0.
 * Standbys map the hashes they replay with it too (wal.c).
 */
uint32
mlcache_slot_of(uint64 hash)
{
	hash &= mlcache_shared->slot_mask;
	return hash == 0 ? 1 : (uint32) hash;
}

uint32
mlcache_target_slot(char kind, const char *text, int len)
{
	return mlcache_slot_of(mlcache_target_hash(kind, text, len));
}

/* Fill in a target of a kind whose slot comes from its text: one hash. */
void
mlcache_target_init(MlcacheTarget *t, char kind, const char *text, int len)
{
	t->kind = kind;
	t->text = text;
	t->len = len;
	t->hash = mlcache_target_hash(kind, text, len);
	t->slot = mlcache_slot_of(t->hash);
}

/*
 * The slot of a materialized view's dirty counter.  It depends on the
 * database and view, not on the namespace: the background worker that
 * refreshes views knows no key prefix.
 */
uint64
mlcache_view_hash(Oid dbid, Oid viewid)
{
	Oid			ids[2] = {dbid, viewid};

	return hash_bytes_extended((const unsigned char *) ids, sizeof(ids),
							   (uint64) MLCACHE_TARGET_VIEW);
}

uint32
mlcache_view_slot(Oid dbid, Oid viewid)
{
	return mlcache_slot_of(mlcache_view_hash(dbid, viewid));
}

/*
 * The cluster-wide security slot: the same in every database, since roles
 * and their memberships are cluster-wide.
 */
uint64
mlcache_security_hash(void)
{
	return hash_bytes_extended((const unsigned char *) "security", 8,
							   (uint64) MLCACHE_TARGET_SECURITY);
}

uint32
mlcache_security_slot(void)
{
	static uint32 slot = 0;

	if (slot == 0)
		slot = mlcache_slot_of(mlcache_security_hash());
	return slot;
}

/* A 64-bit hash of the namespace and key: single-flight locks, tracking. */
uint64
mlcache_key_hash(const MlcacheKey *k)
{
	int			nlen;

	(void) mlcache_namespace(&nlen);
	return hash_bytes_extended((const unsigned char *) k->key, k->keylen, ns_seed ^ 0x5346);
}

/*
 * The Redis name of key under namespace ns: ns + key, or, for keys longer
 * than MLCACHE_MAX_PLAIN_KEY, ns + "#" + sha256(key) in hex.  Palloc'd,
 * NUL-terminated; *rlen receives its length.  Depends on nothing but its
 * arguments, so the background worker can build names too.
 */
char *
mlcache_redis_name(const char *ns, int nlen, const char *key, int keylen, int *rlen)
{
	char	   *r;

	if (keylen <= MLCACHE_MAX_PLAIN_KEY)
	{
		*rlen = nlen + keylen;
		r = palloc(*rlen + 1);
		memcpy(r, ns, nlen);
		memcpy(r + nlen, key, keylen);
	}
	else
	{
		pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
		uint8		digest[PG_SHA256_DIGEST_LENGTH];
		int			i;

		if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
			pg_cryptohash_update(ctx, (const uint8 *) key, keylen) < 0 ||
			pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
			elog(ERROR, "could not compute SHA-256 of a cache key");
		pg_cryptohash_free(ctx);
		*rlen = nlen + 1 + 2 * PG_SHA256_DIGEST_LENGTH;
		r = palloc(*rlen + 1);
		memcpy(r, ns, nlen);
		r[nlen] = '#';
		for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
			sprintf(r + nlen + 1 + 2 * i, "%02x", digest[i]);
	}
	r[*rlen] = '\0';
	return r;
}

/* Build the key's Redis name in the current namespace. */
static void
key_redis_name(MlcacheKey *k)
{
	int			nlen;
	const char *ns = mlcache_namespace(&nlen);

	k->rkey = mlcache_redis_name(ns, nlen, k->key, k->keylen, &k->rkeylen);
}

/*
 * Fill in the generation slots a validated key depends on.  The Redis name
 * is built lazily by mlcache_key_rkey, since an L1 hit never needs it.
 */
void
mlcache_key_init(MlcacheKey *k, const char *key, int len)
{
	int			i;
	int			depth = 0;

	k->key = key;
	k->keylen = len;
	k->nslots = 0;
	k->slots[k->nslots++] = mlcache_security_slot();
	k->slots[k->nslots++] = mlcache_target_slot(MLCACHE_TARGET_ALL, "", 0);
	for (i = 0; i < len && depth < MLCACHE_MAX_PREFIX_DEPTH; i++)
	{
		if (key[i] == ':')
		{
			k->slots[k->nslots++] = mlcache_target_slot(MLCACHE_TARGET_PREFIX, key, i + 1);
			depth++;
		}
	}
	k->slots[k->nslots++] = mlcache_target_slot(MLCACHE_TARGET_KEY, key, len);
	k->rkey = NULL;
	k->rkeylen = 0;
}

/* The key's Redis name, built on first use. */
const char *
mlcache_key_rkey(MlcacheKey *k)
{
	if (k->rkey == NULL)
		key_redis_name(k);
	return k->rkey;
}

/*
 * The key's token: the sum of its generation counters.  The barrier orders
 * these reads before whatever snapshot the caller takes next (see lookup.c).
 * Atomic reads of the generation table: no lock.
 */
uint64
mlcache_key_token(const MlcacheKey *k)
{
	uint64		sum = 0;
	int			i;

	for (i = 0; i < k->nslots; i++)
		sum += pg_atomic_read_u64(&mlcache_shared->gens[k->slots[i]]);
	pg_memory_barrier();
	return sum;
}

/* Characters that make a pattern a glob (']' only closes a '['). */
static inline bool
glob_meta(char c)
{
	return c == '*' || c == '?' || c == '[' || c == '\\';
}

/* Characters that mlcache_glob_escape escapes. */
static inline bool
glob_escaped(char c)
{
	return glob_meta(c) || c == ']';
}

/*
 * Map a Redis glob to one generation target that covers every key it can
 * match.  A pattern without glob characters is the exact key.  Otherwise the
 * literal text before the first glob character is cut back to its last ":"
 * (and to MLCACHE_MAX_PREFIX_DEPTH levels), and that prefix is the target;
 * with no ":" in it, the whole namespace is.  "a:b:*" is thus exactly the
 * prefix "a:b:", and "a:b*" conservatively the prefix "a:".
 */
MlcacheTarget
mlcache_pattern_target(const char *pattern, int len)
{
	MlcacheTarget t;
	int			lit = 0;
	int			cut = 0;
	int			depth = 0;

	/* One pass: the literal text up to the first glob character. */
	while (lit < len && !glob_meta(pattern[lit]))
	{
		if (pattern[lit] == ':' && depth < MLCACHE_MAX_PREFIX_DEPTH)
		{
			cut = lit + 1;
			depth++;
		}
		lit++;
	}
	if (lit == len)
	{
		mlcache_target_init(&t, MLCACHE_TARGET_KEY, pattern, len);
		return t;
	}
	mlcache_target_init(&t, cut > 0 ? MLCACHE_TARGET_PREFIX : MLCACHE_TARGET_ALL, pattern, cut);
	return t;
}

/*
 * Write s escaped for Redis glob matching into dst, which has room for
 * 2 * len bytes; returns the bytes written (no terminator).
 */
int
mlcache_glob_escape_into(char *dst, const char *s, int len)
{
	int			n = 0;
	int			i;

	for (i = 0; i < len; i++)
	{
		if (glob_escaped(s[i]))
			dst[n++] = '\\';
		dst[n++] = s[i];
	}
	return n;
}

/*
 * The SCAN pattern matching every Redis name under prefix (which may be
 * empty) in the namespace whose glob-escaped text is nsglob (nsgloblen
 * bytes); its length goes to *len.
 */
char *
mlcache_prefix_glob_escaped(const char *nsglob, int nsgloblen, const char *prefix, int plen,
							int *len)
{
	char	   *r = palloc(nsgloblen + 2 * plen + 2);
	int			n = nsgloblen;

	memcpy(r, nsglob, nsgloblen);
	n += mlcache_glob_escape_into(r + n, prefix, plen);
	r[n++] = '*';
	r[n] = '\0';
	*len = n;
	return r;
}

/*
 * The SCAN pattern matching every Redis name under prefix (which may be
 * empty: the whole namespace) in namespace ns.
 */
char *
mlcache_prefix_glob(const char *ns, int nlen, const char *prefix, int plen)
{
	char	   *nsglob = palloc(2 * nlen + 1);
	int			len;

	return mlcache_prefix_glob_escaped(nsglob, mlcache_glob_escape_into(nsglob, ns, nlen),
									   prefix, plen, &len);
}

/* Escape Redis glob characters so that s matches only itself in SCAN MATCH. */
char *
mlcache_glob_escape(const char *s, int len)
{
	char	   *r = palloc(2 * len + 1);

	r[mlcache_glob_escape_into(r, s, len)] = '\0';
	return r;
}

/*
 * The generation slot of a definition (or of another per-database catalog,
 * such as mlcache.watches) named name.  Definitions belong to the database,
 * not to the key namespace: the slot is hashed with the database's oid, so
 * that sessions using different mlcache.key_prefix settings see the same
 * changes.  A collision only causes a spurious reload.
 */
uint64
mlcache_def_hash(const char *name, int len)
{
	return hash_bytes_extended((const unsigned char *) name, len,
							   ((uint64) MyDatabaseId << 8) | MLCACHE_TARGET_DEF);
}

uint32
mlcache_def_slot(const char *name, int len)
{
	return mlcache_slot_of(mlcache_def_hash(name, len));
}

/* Check a TTL argument: NULL means the GUC default, negative is an error. */
int
mlcache_ttl_arg(FunctionCallInfo fcinfo, int argno, const char *name, int dflt)
{
	int32		ttl;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return dflt;
	ttl = PG_GETARG_INT32(argno);
	if (ttl < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name),
				 errdetail("A TTL of 0 means the value is not kept at that level; a max_stale of 0 never serves a stale value.")));
	return ttl;
}

/* Check and decode the key argument (argument 0). */
void
mlcache_key_arg(FunctionCallInfo fcinfo, MlcacheKey *k)
{
	text	   *t;

	mlcache_require_loaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cache key must not be null")));
	t = PG_GETARG_TEXT_PP(0);
	mlcache_check_key(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), "cache key");
	mlcache_key_init(k, text_to_cstring(t), VARSIZE_ANY_EXHDR(t));
}

/*
 * Append a value substituted into a key, escaped ('%' as "%25", ':' as
 * "%3A"; see template.h, whose escaping it uses).  Used for fetch()'s
 * parameters and by the watch triggers, which must produce the same bytes.
 */
void
mlcache_key_append_value(StringInfo buf, const char *s, int len)
{
	int			n = mlcache_key_escaped_len(s, len);

	if (n == len)
	{
		appendBinaryStringInfo(buf, s, len);
		return;
	}
	enlargeStringInfo(buf, n);
	mlcache_key_escape(s, len, buf->data + buf->len);
	buf->len += n;
	buf->data[buf->len] = '\0';
}
