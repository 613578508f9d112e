/*
 * lookup.h
 *	  The read path (L1 -> L2 -> compute) and set().
 */
#ifndef MLCACHE_LOOKUP_H
#define MLCACHE_LOOKUP_H

#include "utils/jsonb.h"

#include "keys.h"

/*
 * Where a value comes from on a miss, and who may read it.  get() computes
 * its query as the caller; fetch() computes a definition as its owner and
 * may also answer from a materialized view (L3).
 */
typedef struct MlcacheSource
{
	uint64		fingerprint;	/* what the value means (query, definition) */
	Oid			roleid;			/* role whose privileges computed it */
	Jsonb	   *(*compute) (void *arg, int64 *compute_us);
	Jsonb	   *(*l3) (void *arg);	/* NULL, or a fresh L3 answer or NULL */
	void	   *arg;
	int			max_stale;		/* s a value may be served stale (opt-in, G8) */
	double		beta;			/* XFetch early recomputation; 0: off */
	int			nvary;			/* settings whose values join the key (vary_on) */
	const char *const *vary;	/* their names */
} MlcacheSource;

/* The settings that shape a result's text; they join every fingerprint. */
#define MLCACHE_NRESULT_SETTINGS 7
extern const char *const mlcache_result_settings[MLCACHE_NRESULT_SETTINGS];
extern Datum mlcache_result_settings_values(void);

extern Jsonb *mlcache_lookup_read(MlcacheKey *k, const MlcacheSource *src,
								  int l1_ttl, int l2_ttl);
extern uint64 mlcache_fingerprint(const char *kind, const char *text);
extern void mlcache_lookup_init(void);

#endif
