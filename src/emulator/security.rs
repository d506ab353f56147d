//! Roles and table permissions (spec §6).
//!
//! Evaluation, first level that decides wins, DENY beats GRANT within a level:
//! 1. the caller's custom roles;
//! 2. the owner policy: the owner of a row may find, update and remove it;
//! 3. the caller's system roles;
//! 4. the table's `default`.
//!
//! A directory of the file storage is decided by the same role levels, with
//! no owner policy: custom roles, then system roles, then its `default`.

use std::collections::HashMap;

use super::config::{Access, EmulatorConfig, Operation, RolePermissions, TableConfig};
use super::error::ApiError;

/// The 13 system roles of Backendless; every other role is custom.
pub(super) const SYSTEM_ROLES: &[&str] = &[
    "NotAuthenticatedUser",
    "AuthenticatedUser",
    "SocialUser",
    "FacebookUser",
    "GooglePlusUser",
    "TwitterUser",
    "ASUser",
    "AndroidUser",
    "DotNetUser",
    "IOSUser",
    "JSUser",
    "RestUser",
    "ServerCodeUser",
];

/// Whether `role` is a system role.
pub(super) fn is_system_role(role: &str) -> bool {
    SYSTEM_ROLES.contains(&role)
}

/// One level of the evaluation, for tables and directories alike: what the
/// caller's system roles (`system`) or custom roles have of `op` in
/// `permissions`. [`Access::Deny`] when one denies it, else
/// [`Access::Grant`] when one grants it, else `None` (the level does not
/// decide).
pub(super) fn level<Op: PartialEq>(
    permissions: &[RolePermissions<Op>],
    op: &Op,
    roles: &[String],
    system: bool,
) -> Option<Access> {
    let mut granted = false;
    for p in permissions {
        if is_system_role(&p.role) != system || !roles.contains(&p.role) {
            continue;
        }
        if p.deny.contains(op) {
            return Some(Access::Deny);
        }
        granted |= p.grant.contains(op);
    }
    granted.then_some(Access::Grant)
}

/// The permission tables of the app.
#[derive(Debug, Clone, Default)]
pub(super) struct Permissions {
    tables: HashMap<String, TableConfig>,
}

impl Operation {
    /// The error a denied operation gives.
    pub fn denied(self) -> ApiError {
        match self {
            Operation::Create => ApiError::new(1011, "User has no permission to create entity"),
            Operation::Update => ApiError::new(1012, "User has no permission to update entity"),
            Operation::Find => ApiError::new(1013, "User has no permission to find entity"),
            Operation::Remove => ApiError::new(1014, "User has no permission to delete entity"),
        }
    }
}

impl Permissions {
    /// The permissions of the configured tables.
    pub(super) fn new(config: &EmulatorConfig) -> Self {
        Self {
            tables: config
                .tables
                .iter()
                .map(|t| (t.name.clone(), t.clone()))
                .collect(),
        }
    }

    /// Whether `op` on `table` is allowed for a caller with `roles` and id
    /// `caller`, on a row owned by `row_owner` (`None` for table-wide
    /// operations, where the owner policy does not apply).
    pub(super) fn allows(
        &self,
        table: &str,
        op: Operation,
        roles: &[String],
        caller: Option<&str>,
        row_owner: Option<Option<&str>>,
    ) -> bool {
        let Some(t) = self.tables.get(table) else {
            return true;
        };
        if let Some(access) = level(&t.permissions, &op, roles, false) {
            return access == Access::Grant;
        }
        if let (Some(caller), Some(Some(owner))) = (caller, row_owner) {
            if caller == owner && op != Operation::Create {
                return true;
            }
        }
        if let Some(access) = level(&t.permissions, &op, roles, true) {
            return access == Access::Grant;
        }
        t.default == Access::Grant
    }

    /// `Ok` if allowed, else the operation's error (1011..1014).
    pub(super) fn check(
        &self,
        table: &str,
        op: Operation,
        roles: &[String],
        caller: Option<&str>,
        row_owner: Option<Option<&str>>,
    ) -> Result<(), ApiError> {
        if self.allows(table, op, roles, caller, row_owner) {
            Ok(())
        } else {
            Err(op.denied())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn deny_wins_within_a_level_and_custom_roles_come_first() {
        let p = Permissions::new(&EmulatorConfig::dev());
        let anon = roles(&["NotAuthenticatedUser", "ServerCodeUser"]);
        assert!(!p.allows("Post", Operation::Create, &anon, None, None));
        let admin = roles(&["Admin", "AuthenticatedUser", "RestUser"]);
        assert!(p.allows("Audit_log", Operation::Create, &admin, Some("a"), None));
        assert!(!p.allows("Audit_log", Operation::Remove, &admin, Some("a"), None));
    }

    #[test]
    fn owner_policy_applies_to_rows_only() {
        let p = Permissions::new(&EmulatorConfig::dev());
        let alice = roles(&["AuthenticatedUser", "RestUser"]);
        assert!(p.allows(
            "Post",
            Operation::Remove,
            &alice,
            Some("A"),
            Some(Some("A"))
        ));
        assert!(!p.allows(
            "Post",
            Operation::Remove,
            &alice,
            Some("A"),
            Some(Some("B"))
        ));
        assert!(!p.allows("Post", Operation::Remove, &alice, Some("A"), None));
    }
}
