//! Handlers of user events.

use coderunner::{After, Context, HandlerError, Outcome, Password};
use serde_json::Value;

use super::posts::{AuditEntry, write_audit};

/// `afterLogin`: record the login in `Audit_log` as the superuser, related
/// to the user.
///
/// The arguments are `(login, password)`, the password as a [`Password`]
/// that never shows in logs; this handler needs neither.
pub(crate) async fn after_login(
    ctx: Context,
    _credentials: (String, Password),
    logged_in: Outcome<Value>,
) -> Result<After<Value>, HandlerError> {
    let Some(user) = logged_in.into_result() else {
        return Ok(After::Keep);
    };
    let user_id = user["objectId"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| ctx.user_id().map(str::to_owned));
    let audit = AuditEntry {
        action: "user.login".to_owned(),
        post_id: None,
        user_id,
    };
    write_audit(&ctx, &audit).await?;
    Ok(After::Keep)
}
