//! Handlers of the `Post` table: the support thread's story.
//!
//! `beforeCreate` validates the title. `afterCreate` writes two rows: one to
//! `Latest_post` **as the caller** (so the caller owns it and their
//! permissions apply: no password needed, the context carries their token),
//! related to the post in the same transaction, and one to `Audit_log` **as
//! the superuser** (only `Admin` may write there; the superuser is logged in
//! once for the whole process), related to the user.

use coderunner::sdk::{Children, Saved, UnitOfWork};
use coderunner::{After, Before, Context, HandlerError, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest title accepted, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 200;
/// The error code a client sees when a title is rejected.
pub(crate) const INVALID_TITLE: i64 = 4001;

/// A row of `Post`, as far as these handlers care; other columns pass
/// through untouched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Post {
    /// The title; required.
    #[serde(default)]
    pub title: Option<String>,
    /// Every other column.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A row of `Latest_post`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LatestPost {
    /// The objectId of the post.
    #[serde(rename = "postId")]
    pub post_id: String,
    /// Its title.
    pub title: String,
}

/// A row of `Audit_log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuditEntry {
    /// What happened: `post.created`, `user.login`.
    pub action: String,
    /// The post concerned, if any.
    #[serde(rename = "postId", default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
    /// The user who did it.
    #[serde(rename = "userId", default)]
    pub user_id: Option<String>,
}

/// `beforeCreate` on `Post`: a title is required, trimmed, at most 200
/// characters; the stored title is the trimmed one.
pub(crate) async fn before_create(
    _ctx: Context,
    mut post: Post,
) -> Result<Before<Post>, HandlerError> {
    let title = post.title.as_deref().map(str::trim).unwrap_or_default();
    if title.is_empty() {
        return Err(HandlerError::new(INVALID_TITLE, "A post needs a title").with_status(400));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        let message = format!("A title has at most {MAX_TITLE_CHARS} characters");
        return Err(HandlerError::new(INVALID_TITLE, message).with_status(400));
    }
    post.title = Some(title.to_owned());
    Ok(Before::Continue(post))
}

/// `afterCreate` on `Post`: record the post in `Latest_post` as the caller,
/// the row and its `post` relation in one transaction (both or neither), and
/// in `Audit_log` as the superuser.
pub(crate) async fn after_create(
    ctx: Context,
    _post: Post,
    created: Outcome<Saved<Post>>,
) -> Result<After<Saved<Post>>, HandlerError> {
    let Some(saved) = created.into_result() else {
        // The create failed; there is nothing to record.
        return Ok(After::Keep);
    };
    let latest = LatestPost {
        post_id: saved.object_id.clone(),
        title: saved.data.title.clone().unwrap_or_default(),
    };
    let mut uow = UnitOfWork::new();
    let row = uow.create("Latest_post", &latest)?;
    uow.set_relation(
        "Latest_post",
        &row,
        "post",
        Children::ids([saved.object_id.as_str()]),
    );
    ctx.caller().data().transaction(&uow).await?;

    let audit = AuditEntry {
        action: "post.created".to_owned(),
        post_id: Some(saved.object_id.clone()),
        user_id: ctx.user_id().map(str::to_owned),
    };
    write_audit(&ctx, &audit).await?;
    Ok(After::Keep)
}

/// Writes `entry` to `Audit_log` as the superuser, related to its user
/// (the `user` relation) in the same transaction.
pub(crate) async fn write_audit(ctx: &Context, entry: &AuditEntry) -> Result<(), HandlerError> {
    let mut uow = UnitOfWork::new();
    let row = uow.create("Audit_log", entry)?;
    if let Some(user_id) = &entry.user_id {
        uow.set_relation("Audit_log", &row, "user", Children::ids([user_id]));
    }
    ctx.superuser().data().transaction(&uow).await?;
    Ok(())
}
