/*
 * security.c
 *	  Privilege changes invalidate every cached value (G13).
 *
 * A cached value carries the role it was computed as, and is served only to
 * that role (or, for a definition, to the roles its owner granted it to).
 * That is sound only while the role's privileges stay what they were when
 * the value was computed.  PostgreSQL checks privileges again on every
 * execution of a cached plan; mlcache must be no weaker.  So every statement
 * that can change what some role may see adds the cluster-wide security slot
 * (keys.c) to the transaction's pending invalidations: at commit it is
 * bumped, every key's token moves, and the next read of every key computes
 * (and fails with 42501 if it must).  A rolled-back statement bumps nothing.
 *
 * Privilege changes are rare next to reads; a cold cache after a GRANT is
 * the price of never serving a value past a REVOKE.  The statements:
 *	- GRANT and REVOKE on objects, and of role membership;
 *	- ALTER ROLE (superuser, BYPASSRLS, INHERIT ...) and DROP ROLE;
 *	- REASSIGN OWNED, DROP OWNED, ALTER ... OWNER TO;
 *	- CREATE, ALTER and DROP POLICY;
 *	- ALTER TABLE ... ENABLE/DISABLE/FORCE/NO FORCE ROW LEVEL SECURITY,
 *	  ALTER TABLE ... OWNER TO and ALTER TABLE/VIEW ... SET/RESET (...)
 *	  (a view's security_invoker decides whose privileges its tables are
 *	  read with);
 *	- SECURITY LABEL;
 *	- ALTER FUNCTION (SECURITY DEFINER/INVOKER changes whose privileges a
 *	  query's function runs with).
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "invalidate.h"
#include "keys.h"
#include "security.h"
#include "shmem.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Does an ALTER TABLE change row-level security or ownership? */
static bool
security_alter_table(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_EnableRowSecurity:
			case AT_DisableRowSecurity:
			case AT_ForceRowSecurity:
			case AT_NoForceRowSecurity:
			case AT_ChangeOwner:
			case AT_SetRelOptions:	/* a view's security_invoker, security_barrier */
			case AT_ResetRelOptions:
			case AT_ReplaceRelOptions:
				return true;
			default:
				break;
		}
	}
	return false;
}

/* Can this utility statement change what some role may read? */
static bool
security_relevant(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_GrantStmt:
		case T_GrantRoleStmt:
		case T_AlterRoleStmt:
		case T_DropRoleStmt:
		case T_ReassignOwnedStmt:
		case T_DropOwnedStmt:
		case T_AlterOwnerStmt:
		case T_CreatePolicyStmt:
		case T_AlterPolicyStmt:
		case T_AlterFunctionStmt:
		case T_SecLabelStmt:
			return true;
		case T_DropStmt:
			return ((DropStmt *) stmt)->removeType == OBJECT_POLICY;
		case T_AlterTableStmt:
			return security_alter_table((AlterTableStmt *) stmt);
		default:
			return false;
	}
}

/*
 * Add the security slot to the pending invalidations before the statement
 * runs: if it fails, the (sub)transaction's abort drops the target again.
 */
static void
security_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (mlcache_shared != NULL && security_relevant(pstmt->utilityStmt))
		mlcache_security_changed();
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/* Invalidate every cached value of the cluster when this transaction commits. */
void
mlcache_security_changed(void)
{
	MlcacheTarget t;

	t.kind = MLCACHE_TARGET_SECURITY;
	t.text = "";
	t.len = 0;
	t.slot = mlcache_security_slot();
	t.hash = mlcache_security_hash();	/* what standbys replay (wal.c) */
	mlcache_inval_add(&t, false);
}

void
mlcache_security_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = security_process_utility;
}
