/*
 * keys.h
 *	  Cache keys: validation, the Redis key, the generation slots a key
 *	  depends on, values rendered into keys, and the key and TTL arguments
 *	  the SQL functions share.
 */
#ifndef MLCACHE_KEYS_H
#define MLCACHE_KEYS_H

#include "fmgr.h"
#include "lib/stringinfo.h"

/* Keys longer than this are stored in Redis under a SHA-256 of the key. */
#define MLCACHE_MAX_PLAIN_KEY	200
/* Keys longer than this are refused. */
#define MLCACHE_MAX_KEY			65536
/* Prefix levels (":"-separated) tracked per key; deeper prefixes are cut. */
#define MLCACHE_MAX_PREFIX_DEPTH 16
/* Security slot + namespace slot + prefix slots + the key's own slot. */
#define MLCACHE_MAX_DEPS		(MLCACHE_MAX_PREFIX_DEPTH + 3)

/* Kinds of invalidation target, each hashed into its own slot space. */
#define MLCACHE_TARGET_KEY		'K'
#define MLCACHE_TARGET_PREFIX	'P'
#define MLCACHE_TARGET_ALL		'N'
#define MLCACHE_TARGET_DEF		'D'	/* a definition changed (no Redis key) */
#define MLCACHE_TARGET_VIEW		'V'	/* a materialized view became dirty */
#define MLCACHE_TARGET_SECURITY	'S'	/* privileges changed (cluster-wide) */

typedef struct MlcacheKey
{
	const char *key;			/* the caller's key */
	int			keylen;
	char	   *rkey;			/* key in Redis (see mlcache_key_rkey) */
	int			rkeylen;
	int			nslots;
	uint32		slots[MLCACHE_MAX_DEPS];	/* generation slots it depends on */
} MlcacheKey;

/* An invalidation target derived from a key or a pattern. */
typedef struct MlcacheTarget
{
	char		kind;			/* MLCACHE_TARGET_* */
	const char *text;			/* key or prefix (not NUL-terminated) */
	int			len;
	uint32		slot;
	uint64		hash;			/* the hash slot is taken from (mlcache_slot_of),
								 * or 0: mlcache_target_hash (or, for a
								 * definition, mlcache_def_hash) of the text */
} MlcacheTarget;

extern void mlcache_check_key(const char *key, int len, const char *what);
extern void mlcache_key_init(MlcacheKey *k, const char *key, int len);
extern const char *mlcache_key_rkey(MlcacheKey *k);
extern uint64 mlcache_key_token(const MlcacheKey *k);
extern uint64 mlcache_key_hash(const MlcacheKey *k);
extern uint64 mlcache_target_hash(char kind, const char *text, int len);
extern uint32 mlcache_target_slot(char kind, const char *text, int len);
extern void mlcache_target_init(MlcacheTarget *t, char kind, const char *text, int len);
extern uint32 mlcache_slot_of(uint64 hash);
extern uint64 mlcache_view_hash(Oid dbid, Oid viewid);
extern uint32 mlcache_view_slot(Oid dbid, Oid viewid);
extern uint64 mlcache_security_hash(void);
extern uint32 mlcache_security_slot(void);
extern MlcacheTarget mlcache_pattern_target(const char *pattern, int len);
extern const char *mlcache_namespace(int *len);
extern char *mlcache_glob_escape(const char *s, int len);
extern int	mlcache_glob_escape_into(char *dst, const char *s, int len);
extern char *mlcache_redis_name(const char *ns, int nlen, const char *key, int keylen, int *rlen);
extern char *mlcache_prefix_glob(const char *ns, int nlen, const char *prefix, int plen);
extern char *mlcache_prefix_glob_escaped(const char *nsglob, int nsgloblen, const char *prefix,
										 int plen, int *len);
extern uint64 mlcache_def_hash(const char *name, int len);
extern uint32 mlcache_def_slot(const char *name, int len);
extern void mlcache_key_append_value(StringInfo buf, const char *s, int len);

/* Argument checks shared by the SQL entry points. */
extern void mlcache_key_arg(FunctionCallInfo fcinfo, MlcacheKey *k);
extern int	mlcache_ttl_arg(FunctionCallInfo fcinfo, int argno, const char *name, int dflt);

/*
 * Called when the session's key namespace changes (set by l1.c, whose cache
 * is keyed by the caller's key alone); NULL: nothing to do.
 */
extern void (*mlcache_namespace_changed_hook) (void);

#endif
