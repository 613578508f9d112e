/*
 * catalog.c
 *	  The API that changes mlcache's catalog tables: define(), undefine(),
 *	  grant_fetch(), revoke_fetch(), set_staleness(), set_warm_query(), the
 *	  watches rows of watch() and unwatch().  (warm()'s queue inserts are in
 *	  warm.c, with the same rules.)
 *
 * No role but the tables' owner (the extension's owner) may write
 * mlcache.definitions, mlcache.watches or mlcache.warm_queue directly: a row
 * of definitions says as whom a query runs, so writing one is running code
 * as another role.  These functions are SECURITY INVOKER C functions
 * because only C sees the real caller (GetUserId()): inside a plpgsql
 * SECURITY DEFINER function the caller is lost.  Each one
 *	1. takes the caller from GetUserId(), never from an argument;
 *	2. checks the right: a definition is changed by its owner, a member of
 *	   the owner or a superuser (has_privs_of_role), like ALTER VIEW; a
 *	   watch by the owner of the table, like CREATE TRIGGER;
 *	3. writes with a fixed, parameterised statement, run as the tables'
 *	   owner with search_path pinned to pg_catalog, pg_temp and the security
 *	   context restricted, so nothing the caller controls (an operator or
 *	   function earlier in its search_path) runs with the owner's rights.
 *
 * A definition's owner is always the role that defined it.  Redefining a
 * name by a member of its owner makes the member the owner; the warm query
 * is then dropped (it was written by the previous owner and would run as
 * the new one), the readers are kept, as grants survive CREATE OR REPLACE
 * VIEW.
 *
 * Every write to definitions also invalidates the definition's slot
 * (mlcache_definition_changed), so that every backend reloads it at commit.
 *
 * On error, transaction or subtransaction abort restores the user id, the
 * security context and the settings changed here (AbortSubTransaction
 * resets both), as it does for SECURITY DEFINER functions.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog_exec.h"
#include "lookup.h"
#include "shmem.h"
#include "warm.h"

/* SQL-callable C functions of other parts, called directly here. */
extern PGDLLEXPORT Datum mlcache_definition_changed(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mlcache_check_definition(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mlcache_register_view(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mlcache_check_templates(PG_FUNCTION_ARGS);

#define CATALOG_MAX_NAME 128

/* What the API needs to know of an existing definition. */
typedef struct CatalogDef
{
	bool		found;
	Oid			owner;
	int			nparams;
	char	   *search_path;
} CatalogDef;

/* Argument i as a C string; 23502 if it is NULL. */
static char *
catalog_text_arg(FunctionCallInfo fcinfo, int i, const char *what)
{
	if (PG_ARGISNULL(i))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/* Lock the row of definition name (FOR UPDATE) and read what d holds. */
static void
catalog_lock_def(const char *name, CatalogDef *d)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	bool		isnull;

	mlcache_catalog_exec("SELECT owner::oid, cardinality(param_types), search_path"
						 " FROM mlcache.definitions WHERE name = $1 FOR UPDATE",
						 1, types, values, NULL);
	d->found = SPI_processed == 1;
	if (!d->found)
		return;
	d->owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	d->nparams = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	d->search_path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
}

static void
catalog_deny_def(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("must be owner of mlcache definition \"%s\"", name)));
}

/* Lock an existing definition the current user may change; raise otherwise. */
static void
catalog_own_def(const char *name, CatalogDef *d)
{
	catalog_lock_def(name, d);
	if (!d->found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("mlcache definition \"%s\" does not exist", name)));
	if (!mlcache_catalog_may_own(d->owner))
		catalog_deny_def(name);
}

static void
catalog_changed(const char *name)
{
	DirectFunctionCall1(mlcache_definition_changed, CStringGetTextDatum(name));
}

/*
 * A parameter's type must have an input function that runs no code of an
 * ordinary role: fetch() converts its arguments (warm(): text) with it as the
 * caller, before switching to the owner, and the caller may be a superuser
 * running a scheduled warm().  A domain's input evaluates its CHECK
 * constraints, which may call any function; a composite's input converts
 * its columns.  Base types (whose input functions are C, made by a
 * superuser), enums, and arrays and ranges of them are accepted.
 */
static void
catalog_check_param_type(Oid type, Oid top, int param)
{
	Oid			elem;

	switch (get_typtype(type))
	{
		case TYPTYPE_BASE:
			elem = get_element_type(type);
			if (OidIsValid(elem))
				catalog_check_param_type(elem, top, param);
			return;
		case TYPTYPE_ENUM:
			return;
		case TYPTYPE_RANGE:
			catalog_check_param_type(get_range_subtype(type), top, param);
			return;
		case TYPTYPE_MULTIRANGE:
			catalog_check_param_type(get_range_subtype(get_multirange_range(type)), top, param);
			return;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("parameter $%d of a cache query cannot be of type %s",
							param, format_type_be(top)),
					 errdetail("Arguments are converted to the parameter's type as the caller, and the input of a domain or a composite type can run its owner's code.")));
	}
}

/*
 * The parameter types PostgreSQL infers for query, which must be exactly one
 * statement; every parameter's type must be determined.  Parsed and
 * analysed as the caller, with the caller's search_path (the path the
 * definition records).  Returns the number of parameters.
 */
static int
catalog_param_types(const char *query, Oid **types)
{
	List	   *raw = raw_parser(query, RAW_PARSE_DEFAULT);
	Oid		   *ptypes = NULL;
	int			n = 0;
	int			i;

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cache query must be a single statement")));
	(void) pg_analyze_and_rewrite_varparams(linitial_node(RawStmt, raw), query, &ptypes, &n, NULL);
	for (i = 0; i < n; i++)
		if (ptypes[i] == InvalidOid || ptypes[i] == UNKNOWNOID)
			ereport(ERROR,
					(errcode(ERRCODE_INDETERMINATE_DATATYPE),
					 errmsg("could not determine data type of parameter $%d", i + 1)));
	for (i = 0; i < n; i++)
		catalog_check_param_type(ptypes[i], ptypes[i], i + 1);
	*types = ptypes;
	return n;
}

static ArrayType *
catalog_oid_array(Oid *oids, int n, Oid elemtype)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	if (n == 0)
		return construct_empty_array(elemtype);
	for (i = 0; i < n; i++)
		d[i] = ObjectIdGetDatum(oids[i]);
	return construct_array(d, n, elemtype, sizeof(Oid), true, TYPALIGN_INT);
}

PG_FUNCTION_INFO_V1(mlcache_param_types);

/* mlcache._param_types(query) RETURNS regtype[] */
Datum
mlcache_param_types(PG_FUNCTION_ARGS)
{
	char	   *query = catalog_text_arg(fcinfo, 0, "query");
	Oid		   *types;
	int			n = catalog_param_types(query, &types);

	PG_RETURN_ARRAYTYPE_P(catalog_oid_array(types, n, REGTYPEOID));
}

/* A definition name is 1 to 127 characters, without control characters. */
static void
catalog_check_name(const char *name)
{
	const unsigned char *p;
	bool		ok = name[0] != '\0' && strlen(name) < CATALOG_MAX_NAME;

	for (p = (const unsigned char *) name; ok && *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			ok = false;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid definition name \"%s\"", name),
				 errdetail("A name is 1 to 127 characters long, without control characters.")));
}

/* Is s a setting name: identifiers ([A-Za-z_][A-Za-z0-9_$]*) joined by dots? */
static bool
catalog_setting_name_ok(const char *s)
{
	bool		start = true;

	if (strlen(s) >= NAMEDATALEN * 2)
		return false;
	for (; *s; s++)
	{
		bool		alpha = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_';

		if (start && !alpha)
			return false;
		if (*s == '.')
		{
			start = true;
			continue;
		}
		if (!alpha && !(*s >= '0' && *s <= '9') && *s != '$')
			return false;
		start = false;
	}
	return !start;
}

/* vary_on: names of settings, none null; NULL means none.  Stored as given. */
static Datum
catalog_vary_on(FunctionCallInfo fcinfo, int i)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				k;

	if (PG_ARGISNULL(i))
		return PointerGetDatum(construct_empty_array(TEXTOID));
	arr = PG_GETARG_ARRAYTYPE_P(i);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("vary_on must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (k = 0; k < n; k++)
	{
		char	   *s;

		if (nulls[k])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("vary_on must not contain null")));
		s = TextDatumGetCString(elems[k]);
		if (!catalog_setting_name_ok(s))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid setting name \"%s\" in vary_on", s),
					 errhint("Name settings as SHOW does, e.g. TimeZone or app.tenant_id.")));
	}
	return PointerGetDatum(arr);
}

/*
 * The checks define() makes before writing: the query and key template
 * (mlcache._check_definition) and the L3 view (mlcache._check_l3), all as
 * the caller.
 */
static void
catalog_check_define(FunctionCallInfo fcinfo, const char *query, const char *key,
					 Oid *types, int n)
{
	DirectFunctionCall3(mlcache_check_definition, CStringGetTextDatum(query),
						PointerGetDatum(catalog_oid_array(types, n, OIDOID)),
						CStringGetTextDatum(key));
	if (!PG_ARGISNULL(5))
	{
		Oid			argtypes[4] = {REGCLASSOID, TEXTARRAYOID, TEXTOID, INT4OID};
		Datum		values[4];
		char		nulls[5] = "    ";

		values[0] = PG_GETARG_DATUM(5);
		values[1] = PG_ARGISNULL(6) ? (Datum) 0 : PG_GETARG_DATUM(6);
		nulls[1] = PG_ARGISNULL(6) ? 'n' : ' ';
		values[2] = PG_ARGISNULL(7) ? CStringGetTextDatum("value") : PG_GETARG_DATUM(7);
		values[3] = Int32GetDatum(n);
		if (SPI_execute_with_args("SELECT mlcache._check_l3($1, $2, $3, $4)", 4, argtypes, values,
								  nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not check the L3 view");
	}
	else if (!PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l3_columns given without l3_view")));
}

/* Insert or replace the definition; false if another owner's row is in the way. */
static bool
catalog_write_define(FunctionCallInfo fcinfo, const char *name, Oid *types, int n,
					 const char *search_path, Datum vary_on)
{
	Oid			argtypes[12] = {TEXTOID, TEXTOID, TEXTOID, REGTYPEARRAYOID, INT4OID, INT4OID,
	REGCLASSOID, TEXTARRAYOID, TEXTOID, REGROLEOID, TEXTOID, TEXTARRAYOID};
	Datum		v[12];
	char		nulls[13] = "            ";
	int			i;

	v[0] = CStringGetTextDatum(name);
	v[1] = PG_GETARG_DATUM(1);
	v[2] = PG_GETARG_DATUM(2);
	v[3] = PointerGetDatum(catalog_oid_array(types, n, REGTYPEOID));
	for (i = 3; i <= 6; i++)
	{
		v[i + 1] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i + 1] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	/* l3_value: only with a view, 'value' unless given. */
	v[8] = PG_ARGISNULL(7) ? CStringGetTextDatum("value") : PG_GETARG_DATUM(7);
	nulls[8] = PG_ARGISNULL(5) ? 'n' : ' ';
	v[9] = ObjectIdGetDatum(GetUserId());
	v[10] = CStringGetTextDatum(search_path);
	v[11] = vary_on;
	mlcache_catalog_exec("INSERT INTO mlcache.definitions AS d"
						 " (name, query, key_template, param_types, l1_ttl, l2_ttl, l3_view, l3_columns,"
						 "  l3_value, owner, search_path, vary_on)"
						 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
						 " ON CONFLICT ON CONSTRAINT definitions_pkey DO UPDATE"
						 " SET query = excluded.query, key_template = excluded.key_template,"
						 "     param_types = excluded.param_types, l1_ttl = excluded.l1_ttl,"
						 "     l2_ttl = excluded.l2_ttl, l3_view = excluded.l3_view,"
						 "     l3_columns = excluded.l3_columns, l3_value = excluded.l3_value,"
						 "     warm_query = CASE WHEN d.owner = excluded.owner THEN d.warm_query END,"
						 "     owner = excluded.owner, search_path = excluded.search_path,"
						 "     vary_on = excluded.vary_on, created_at = now()"
						 " WHERE pg_has_role(excluded.owner, d.owner, 'USAGE')",
						 12, argtypes, v, nulls);
	return SPI_processed == 1;
}

PG_FUNCTION_INFO_V1(mlcache_define);

/*
 * mlcache.define(name, query, key, l1_ttl, l2_ttl, l3_view, l3_columns,
 * l3_value, vary_on): register or replace a definition owned by the caller.
 */
Datum
mlcache_define(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *query;
	char	   *key;
	Oid		   *types;
	int			n;
	Datum		vary_on;
	char	   *search_path;
	CatalogDef	d;

	mlcache_require_loaded();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("definition name, query and key must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	key = text_to_cstring(PG_GETARG_TEXT_PP(2));
	catalog_check_name(name);
	if ((!PG_ARGISNULL(3) && PG_GETARG_INT32(3) < 0) || (!PG_ARGISNULL(4) && PG_GETARG_INT32(4) < 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("TTLs must not be negative")));
	vary_on = catalog_vary_on(fcinfo, 8);
	search_path = pstrdup(GetConfigOption("search_path", false, false));

	SPI_connect();
	catalog_lock_def(name, &d);
	if (d.found && !mlcache_catalog_may_own(d.owner))
		catalog_deny_def(name);
	n = catalog_param_types(query, &types);
	catalog_check_define(fcinfo, query, key, types, n);
	if (!catalog_write_define(fcinfo, name, types, n, search_path, vary_on))
		catalog_deny_def(name); /* created by another role meanwhile */
	SPI_finish();

	if (!PG_ARGISNULL(5))
		DirectFunctionCall1(mlcache_register_view, PG_GETARG_DATUM(5));
	catalog_changed(name);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_undefine);

/* mlcache.undefine(name) */
Datum
mlcache_undefine(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	CatalogDef	d;

	mlcache_require_loaded();
	name = catalog_text_arg(fcinfo, 0, "definition name");
	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	catalog_own_def(name, &d);
	mlcache_catalog_exec("DELETE FROM mlcache.definitions WHERE name = $1", 1, types, values, NULL);
	SPI_finish();
	catalog_changed(name);
	PG_RETURN_VOID();
}

/* grant_fetch() and revoke_fetch(): add or remove role among the readers. */
static void
catalog_set_readers(FunctionCallInfo fcinfo, bool add)
{
	char	   *name;
	Oid			types[3] = {TEXTOID, REGROLEOID, BOOLOID};
	Datum		values[3];
	CatalogDef	d;

	mlcache_require_loaded();
	name = catalog_text_arg(fcinfo, 0, "definition name");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role must not be null")));
	values[0] = CStringGetTextDatum(name);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = BoolGetDatum(add);
	SPI_connect();
	catalog_own_def(name, &d);
	mlcache_catalog_exec("UPDATE mlcache.definitions"
						 " SET readers = CASE WHEN $3 THEN ARRAY(SELECT DISTINCT r FROM unnest(readers || $2) r)"
						 "                    ELSE array_remove(readers, $2) END"
						 " WHERE name = $1", 3, types, values, NULL);
	SPI_finish();
	catalog_changed(name);
}

PG_FUNCTION_INFO_V1(mlcache_grant_fetch);

/* mlcache.grant_fetch(name, role) */
Datum
mlcache_grant_fetch(PG_FUNCTION_ARGS)
{
	catalog_set_readers(fcinfo, true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_revoke_fetch);

/* mlcache.revoke_fetch(name, role) */
Datum
mlcache_revoke_fetch(PG_FUNCTION_ARGS)
{
	catalog_set_readers(fcinfo, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_set_staleness);

/* mlcache.set_staleness(name, max_stale, beta) */
Datum
mlcache_set_staleness(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[3] = {TEXTOID, INT4OID, FLOAT8OID};
	Datum		values[3];
	CatalogDef	d;

	mlcache_require_loaded();
	name = catalog_text_arg(fcinfo, 0, "definition name");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_GETARG_INT32(1) < 0 ||
		isnan(PG_GETARG_FLOAT8(2)) || PG_GETARG_FLOAT8(2) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_stale and beta must be zero or positive")));
	values[0] = CStringGetTextDatum(name);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	SPI_connect();
	catalog_own_def(name, &d);
	mlcache_catalog_exec("UPDATE mlcache.definitions SET max_stale = $2, beta = $3 WHERE name = $1",
						 3, types, values, NULL);
	SPI_finish();
	catalog_changed(name);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_set_warm_query);

/*
 * mlcache.set_warm_query(name, query): the query whose rows are the
 * parameter sets warm() fills (NULL: none).  It must prepare, as the
 * definition's owner with its search_path, as a read-only SELECT with one
 * column per parameter; it will run that way.
 */
Datum
mlcache_set_warm_query(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[3] = "  ";
	CatalogDef	d;

	mlcache_require_loaded();
	name = catalog_text_arg(fcinfo, 0, "definition name");
	values[0] = CStringGetTextDatum(name);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	SPI_connect();
	catalog_own_def(name, &d);
	if (!PG_ARGISNULL(1))
		mlcache_warm_check_query(name, d.owner, d.search_path,
								 text_to_cstring(PG_GETARG_TEXT_PP(1)), d.nparams);
	mlcache_catalog_exec("UPDATE mlcache.definitions SET warm_query = $2 WHERE name = $1",
						 2, types, values, nulls);
	SPI_finish();
	catalog_changed(name);
	PG_RETURN_VOID();
}

/* Only the owner of a table (or a member of its owner) watches it. */
static void
catalog_own_table(Oid relid)
{
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
}

PG_FUNCTION_INFO_V1(mlcache_catalog_watch);

/*
 * mlcache._catalog_watch(tbl, keys, views): record a watch (watch() has
 * created its triggers).  The caller must own the table; keys must fit its
 * columns and views must be materialized views.
 */
Datum
mlcache_catalog_watch(PG_FUNCTION_ARGS)
{
	Oid			types[3] = {REGCLASSOID, TEXTARRAYOID, REGCLASSARRAYOID};
	Datum		values[3];
	Datum	   *views;
	int			n,
				i;

	mlcache_require_loaded();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, key templates and views must not be null")));
	catalog_own_table(PG_GETARG_OID(0));
	DirectFunctionCall2(mlcache_check_templates, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1));
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &views, NULL, &n);
	for (i = 0; i < n; i++)
		if (get_rel_relkind(DatumGetObjectId(views[i])) != RELKIND_MATVIEW)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a materialized view",
							DatumGetCString(DirectFunctionCall1(regclassout, views[i])))));
	for (i = 0; i < 3; i++)
		values[i] = PG_GETARG_DATUM(i);
	SPI_connect();
	mlcache_catalog_exec("INSERT INTO mlcache.watches (tbl, keys, views) VALUES ($1, $2, $3)",
						 3, types, values, NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(mlcache_catalog_unwatch);

/*
 * mlcache._catalog_unwatch(tbl): forget the watch of a table the caller
 * owns; true if there was one.
 */
Datum
mlcache_catalog_unwatch(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1];
	bool		found;

	mlcache_require_loaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be null")));
	catalog_own_table(PG_GETARG_OID(0));
	values[0] = PG_GETARG_DATUM(0);
	SPI_connect();
	mlcache_catalog_exec("DELETE FROM mlcache.watches WHERE tbl = $1", 1, types, values, NULL);
	found = SPI_processed > 0;
	SPI_finish();
	PG_RETURN_BOOL(found);
}
