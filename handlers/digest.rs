//! The hourly digest timer and the `postStats` custom event.
//!
//! The timer counts the posts and writes one `Digest` row **as the
//! superuser**: a timer has no caller, and the count must see every post.
//! The custom event answers how many posts the caller has written, **as the
//! caller**, so that their own permissions apply.

use coderunner::timer::{Frequency, Schedule};
use coderunner::{Context, HandlerError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The timer's name.
pub(crate) const DIGEST_TIMER: &str = "hourlyDigest";
/// The custom event's name.
pub(crate) const POST_STATS_EVENT: &str = "postStats";

/// Every hour on the hour, from 2026-01-01T00:00:00Z.
pub(crate) fn hourly() -> Schedule {
    Schedule::new(1_767_225_600_000, Frequency::Custom { every_secs: 3600 })
}

/// A row of `Digest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DigestRow {
    /// How many posts exist.
    pub posts: u64,
}

/// The hourly digest: one `Digest` row with the number of posts.
pub(crate) async fn hourly_digest(ctx: Context) -> Result<(), HandlerError> {
    let posts = ctx.superuser().table::<Value>("Post").count(None).await?;
    ctx.superuser()
        .table("Digest")
        .create(&DigestRow { posts })
        .await?;
    tracing::info!(posts, "digest written");
    Ok(())
}

/// What `postStats` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PostStats {
    /// The caller's posts.
    pub mine: u64,
}

/// `postStats`: how many posts the caller owns.
pub(crate) async fn post_stats(ctx: Context, _args: Value) -> Result<PostStats, HandlerError> {
    let Some(user_id) = ctx.user_id().map(str::to_owned) else {
        return Err(HandlerError::new(4010, "postStats needs a logged-in caller").with_status(401));
    };
    // The id goes into a where clause: it must be an id, not SQL.
    if !user_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(HandlerError::new(
            4011,
            "the caller's id is not a Backendless id",
        ));
    }
    let mine = ctx
        .caller()
        .table::<Value>("Post")
        .count(Some(&format!("ownerId = '{user_id}'")))
        .await?;
    Ok(PostStats { mine })
}
