//! Handlers of the `Post` table.

use coderunner::{Before, Context, HandlerError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The error code a client sees when a title is rejected.
pub const INVALID_TITLE: i64 = 4001;

/// A row of `Post`, as far as these handlers care; other columns pass
/// through untouched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Post {
    /// The title; required.
    #[serde(default)]
    pub title: Option<String>,
    /// Every other column, system fields included.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `beforeCreate` on `Post`: a title is required, trimmed, at most 200
/// characters; the stored title is the trimmed one.
pub async fn before_create(_ctx: Context, mut post: Post) -> Result<Before<Post>, HandlerError> {
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
