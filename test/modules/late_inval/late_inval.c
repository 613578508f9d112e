/*
 * late_inval.c
 *	  Test-only library: calls mlcache.invalidate(late_inval.key) from a
 *	  PRE_COMMIT transaction callback that runs after mlcache's own.
 *
 * Commit callbacks run in the reverse order of registration, so preloaded
 * before mlcache (shared_preload_libraries = 'late_inval,mlcache') this
 * callback runs after mlcache's PRE_COMMIT callback has written the
 * transaction's invalidations to the WAL for hot standbys.  An invalidation
 * added then would never reach a standby, and mlcache must refuse it
 * (SQLSTATE 25001).  test/late_inval.sh drives it; nothing else uses it.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static char *late_key = NULL;

static void
late_inval_callback(XactEvent event, void *arg)
{
	Oid			argtypes[1] = {TEXTOID};
	Oid			fn;

	if (event != XACT_EVENT_PRE_COMMIT || late_key == NULL || late_key[0] == '\0')
		return;
	fn = LookupFuncName(list_make2(makeString("mlcache"), makeString("invalidate")),
						1, argtypes, false);
	(void) OidFunctionCall1(fn, CStringGetTextDatum(late_key));
}

void
_PG_init(void)
{
	DefineCustomStringVariable("late_inval.key",
							   "Key that mlcache.invalidate() is called with at PRE_COMMIT (test only).",
							   NULL, &late_key, "", PGC_USERSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("late_inval");
	RegisterXactCallback(late_inval_callback, NULL);
}
