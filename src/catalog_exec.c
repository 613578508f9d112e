/*
 * catalog_exec.c
 *	  Writing mlcache's catalog tables as their owner: the one primitive
 *	  catalog.c (the privilege-checked API) and warm.c (the warming queue)
 *	  write them with, and the ownership check they share.
 *
 * The statements run with the tables' owner's rights, search_path pinned to
 * pg_catalog, pg_temp and the security context restricted, so nothing the
 * caller controls runs with the owner's rights (see catalog.c).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog_exec.h"

/* The owner of mlcache's catalog tables (the role that created the extension). */
static Oid
catalog_exec_owner(void)
{
	Oid			nsp = get_namespace_oid("mlcache", false);
	Oid			relid = get_relname_relid("definitions", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "mlcache.definitions does not exist");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Run one fixed, parameterised statement through SPI (already connected) as
 * the owner of mlcache's catalog tables, with search_path pinned to
 * pg_catalog, pg_temp and the security context restricted.
 */
int
mlcache_catalog_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	Oid			save_user;
	int			save_sec;
	int			nest;
	int			rc;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(catalog_exec_owner(),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_user, save_sec);
	if (rc < 0)
		elog(ERROR, "could not write mlcache's catalog: %s", SPI_result_code_string(rc));
	return rc;
}

/* May the current user act as owner of a definition (superuser, or a member)? */
bool
mlcache_catalog_may_own(Oid owner)
{
	/* has_privs_of_role() is true for superusers. */
	return has_privs_of_role(GetUserId(), owner);
}

/*
 * May the current user fetch a definition: the rights of its owner, or of a
 * role the owner granted FETCH to (fetch() and the warm queue ask alike).
 */
bool
mlcache_catalog_may_fetch(Oid owner, const Oid *readers, int nreaders)
{
	Oid			user = GetUserId();
	int			i;

	if (has_privs_of_role(user, owner))
		return true;
	for (i = 0; i < nreaders; i++)
		if (has_privs_of_role(user, readers[i]))
			return true;
	return false;
}
