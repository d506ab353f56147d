//! The `Posts` API service: `POST /services/Posts/myPostCount` answers how
//! many posts the caller has written, counted **as the caller**, so that
//! their own permissions apply (a client could not be trusted to count
//! them itself, and the superuser would see everyone's).
//!
//! Its configuration item `label` (a string, default `"posts"`) names what
//! is counted in the reply; the reply says who it was counted for in the
//! header `x-counted-for`.

use coderunner::service::{ConfigItem, ConfigType, ParamType, Service, ServiceMethod};
use coderunner::{HandlerError, ServiceContext};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The service's name (its URL is `services/Posts/<method>`).
pub(crate) const POSTS_SERVICE: &str = "Posts";

/// The error code of a call without a logged-in caller.
pub(crate) const NOT_LOGGED_IN: i64 = 4010;

/// The service with its method and configuration.
pub(crate) fn service() -> Service {
    Service::new(POSTS_SERVICE)
        .description("The caller's own posts")
        .config(ConfigItem::new("label", ConfigType::String).default_value("posts"))
        .method(
            ServiceMethod::new("myPostCount")
                .returns(ParamType::Object)
                .description("How many posts the caller has written"),
            my_post_count,
        )
}

/// The service's configuration, typed.
#[derive(Debug, Deserialize)]
pub(crate) struct PostsConfig {
    /// What the count is called in the reply.
    pub label: String,
}

/// What `myPostCount` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PostCount {
    /// The caller's posts.
    pub count: u64,
    /// The configured label.
    pub label: String,
}

/// `myPostCount`: the caller's own posts, counted as the caller.
pub(crate) async fn my_post_count(ctx: ServiceContext, (): ()) -> Result<PostCount, HandlerError> {
    let Some(user_id) = ctx.user_id().map(str::to_owned) else {
        return Err(
            HandlerError::new(NOT_LOGGED_IN, "myPostCount needs a logged-in caller")
                .with_status(401),
        );
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
    let config: PostsConfig = ctx.config()?;
    let count = ctx
        .caller()
        .table::<Value>("Post")
        .count(Some(&format!("ownerId = '{user_id}'")))
        .await?;
    ctx.set_header("x-counted-for", user_id);
    Ok(PostCount {
        count,
        label: config.label,
    })
}
