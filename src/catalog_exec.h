/*
 * catalog_exec.h
 *	  The only way mlcache's catalog tables (definitions, watches,
 *	  warm_queue) are written: fixed statements run as the tables' owner, by
 *	  privilege-checked C functions (catalog.c, warm.c).
 */
#ifndef MLCACHE_CATALOG_EXEC_H
#define MLCACHE_CATALOG_EXEC_H

#include "executor/spi.h"

/*
 * Run one fixed, parameterised statement through SPI (already connected) as
 * the owner of mlcache's catalog tables, with search_path pinned to
 * pg_catalog, pg_temp.  Never pass text that a caller supplied as sql.
 */
extern int	mlcache_catalog_exec(const char *sql, int nargs, Oid *types, Datum *values,
								 const char *nulls);

/* May the current user act as owner of a definition (superuser, or a member)? */
extern bool mlcache_catalog_may_own(Oid owner);

/* May the current user fetch a definition (as its owner, or as a reader)? */
extern bool mlcache_catalog_may_fetch(Oid owner, const Oid *readers, int nreaders);

#endif
