//! The Files service: the app's file storage. Paths are relative to the
//! storage root (`"reports/2024/q1.csv"`; a leading `/` is allowed and
//! ignored); each segment is percent-encoded on its own, and `.`, `..`,
//! empty segments, `\` and NUL are refused before any request.
//!
//! Whether a path may be read, written or deleted is decided by the backend
//! from the client's identity (the file permissions, per directory), as for
//! every other call.

use std::fmt;

use base64::Engine;
use bytes::Bytes;
use futures::Stream;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::Client;
use super::error::SdkError;
use super::transport::{Call, Payload, Service};

/// The largest file [`Files::save`] sends: the backend refuses more
/// (error 6016, "the payload exceeds 2,800,000 bytes").
pub const MAX_SAVE_BYTES: usize = 2_800_000;

/// The URL the backend gave a stored file:
/// `{server}/{appId}/{apiKey}/files/{path}`. It holds the API key it was
/// stored with, so `Debug` shows the path only and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct FileUrl(String);

impl FileUrl {
    /// The whole URL, with the API key it was stored with in it: hand it to
    /// whoever should download the file, but do not log it.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let url = ctx.caller().files().upload("avatars/me.png", vec![0x89, b'P', b'N', b'G'], true).await?;
    /// let link: String = url.as_str().to_owned(); // for the reply, not for a log line
    /// # let _ = link;
    /// # Ok(()) }
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file's path in the storage (what follows `/files/`),
    /// percent-encoded as in the URL; safe to log.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let url = ctx.caller().files().save("notes/today.txt", b"hello", true).await?;
    /// tracing::info!(path = url.path(), "note saved");
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &str {
        self.0
            .split_once("/files/")
            .map_or("", |(_, path)| path.trim_start_matches('/'))
    }
}

impl fmt::Debug for FileUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FileUrl").field(&self.path()).finish()
    }
}

/// One entry of a directory listing ([`Files::list`]).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// The file or directory name, without its directory.
    pub name: String,
    /// Its path from the storage root.
    #[serde(default)]
    pub url: String,
    /// Its absolute URL (holds an API key: not shown by `Debug`).
    #[serde(default)]
    pub public_url: String,
    /// When it was created, ms since the epoch.
    #[serde(default)]
    pub created_on: Option<i64>,
    /// Its size in bytes (0 for a directory).
    #[serde(default)]
    pub size: Option<u64>,
}

impl fmt::Debug for FileInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileInfo")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("created_on", &self.created_on)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What [`Files::list`] lists: a name pattern (`*` any run, `?` one
/// character), subdirectories too, and a page.
///
/// # Example
/// ```
/// use coderunner::sdk::Listing;
/// let listing = Listing::new().pattern("*.csv").recursive(true).page_size(50);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pattern: Option<String>,
    recursive: bool,
    page_size: Option<u32>,
    offset: Option<u32>,
}

impl Listing {
    /// Every entry of the directory, first page (the backend's default size).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Listing;
    /// let everything = Listing::new();
    /// # let _ = everything;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Only names matching `pattern` (`*` any run of characters, `?` one).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Listing;
    /// let csv_only = Listing::new().pattern("*.csv");
    /// # let _ = csv_only;
    /// ```
    pub fn pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// Also the entries of subdirectories, at any depth (`sub=true`).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Listing;
    /// let whole_tree = Listing::new().recursive(true);
    /// # let _ = whole_tree;
    /// ```
    pub fn recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// Entries per page, 1..=100 (checked when the listing is sent:
    /// [`SdkError::InvalidArgument`] outside it).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Listing;
    /// let first_hundred = Listing::new().page_size(100);
    /// # let _ = first_hundred;
    /// ```
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Entries to skip: with [`Listing::page_size`], the next pages.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Listing;
    /// let second_page = Listing::new().page_size(100).offset(100);
    /// # let _ = second_page;
    /// ```
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = Some(offset);
        self
    }
}

/// The Files service of a [`Client`].
///
/// # Example
/// ```no_run
/// # async fn run(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// let files = ctx.caller();
/// let files = files.files();
/// let url = files.upload("reports/today.txt", b"42 orders".to_vec(), true).await?;
/// assert_eq!(url.path(), "reports/today.txt");
/// let bytes = files.download("reports/today.txt").await?;
/// assert_eq!(&bytes[..], b"42 orders");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    client: &'a Client,
}

impl<'a> Files<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Files { client }
    }

    fn call(&self, method: Method, prefix: &[&str], path: &str) -> Result<Call, SdkError> {
        let segments = segments(path)?;
        let all = ["files"]
            .iter()
            .chain(prefix)
            .map(|s| (*s).to_owned())
            .chain(segments);
        Ok(Call::new(Service::Files, method, all))
    }

    /// Uploads `bytes` as the file `path` and returns its URL
    /// (`POST files/{path}?overwrite=`, a multipart body with one part
    /// `file`). The directory's write permission of this client's identity
    /// applies (6006 when refused); with `overwrite` false an existing file is
    /// 6003; the backend takes at most 10 MB (6015).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let client = ctx.caller();
    /// let url = client.files().upload("reports/today.txt", b"42 orders".to_vec(), false).await?;
    /// assert_eq!(url.path(), "reports/today.txt");
    /// # Ok(()) }
    /// ```
    pub async fn upload(
        &self,
        path: &str,
        bytes: impl Into<Bytes>,
        overwrite: bool,
    ) -> Result<FileUrl, SdkError> {
        let name = file_name(path)?;
        let call = self
            .call(Method::POST, &[], path)?
            .query("overwrite", overwrite)
            .payload(Payload::File {
                name,
                bytes: bytes.into(),
            });
        self.file_url(call).await
    }

    /// Uploads the file `path` from a stream of chunks and returns its URL
    /// (`POST files/{path}?overwrite=`, multipart), sending chunks as they come
    /// without holding the file in memory. A stream can be sent once: the
    /// superuser's re-login retry cannot resend it and ends with an error. The
    /// same permissions and codes as [`Files::upload`] (6006, 6003, 6015).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use bytes::Bytes;
    /// let chunks = futures::stream::iter((0..3).map(|i| Ok::<_, std::io::Error>(Bytes::from(format!("line {i}\n")))));
    /// let url = ctx.server_key().files().upload_stream("exports/lines.txt", chunks, true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_stream<S, E>(
        &self,
        path: &str,
        stream: S,
        overwrite: bool,
    ) -> Result<FileUrl, SdkError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Sync + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let name = file_name(path)?;
        let body = reqwest::Body::wrap_stream(stream);
        let call = self
            .call(Method::POST, &[], path)?
            .query("overwrite", overwrite)
            .payload(Payload::FileStream {
                name,
                body: std::sync::Arc::new(parking_lot::Mutex::new(Some(body))),
            });
        self.file_url(call).await
    }

    /// Saves `bytes` as the file `path` the way the JS SDK's `saveFile`
    /// does and returns its URL (`PUT files/binary/{path}?overwrite=`, the
    /// bytes in base64 as `text/plain`). More than [`MAX_SAVE_BYTES`] is
    /// [`SdkError::InvalidArgument`] before any request (use
    /// [`Files::upload`]); an existing file without `overwrite` is 6003, a
    /// refused write 6006.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let url = ctx.caller().files().save("notes/today.txt", b"call Bob", true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn save(
        &self,
        path: &str,
        bytes: &[u8],
        overwrite: bool,
    ) -> Result<FileUrl, SdkError> {
        file_name(path)?;
        if bytes.len() > MAX_SAVE_BYTES {
            return Err(SdkError::invalid(
                "bytes",
                format!(
                    "{} bytes is more than the {MAX_SAVE_BYTES} a save may hold; use `upload`",
                    bytes.len()
                ),
            ));
        }
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let call = self
            .call(Method::PUT, &["binary"], path)?
            .query("overwrite", overwrite)
            .payload(Payload::Text(text));
        self.file_url(call).await
    }

    async fn file_url(&self, call: Call) -> Result<FileUrl, SdkError> {
        let url = match self.client.send_raw(call).await? {
            Value::String(url) => url,
            Value::Object(mut map) => match map.remove("fileURL") {
                Some(Value::String(url)) => url,
                _ => return Err(decode_error("the reply has no fileURL")),
            },
            _ => return Err(decode_error("the reply is not a file URL")),
        };
        Ok(FileUrl(url))
    }

    /// The bytes of the file `path` (`GET files/{path}`), at most 64 MiB.
    /// The directory's read permission applies (6006 when refused); a missing
    /// file is 6000.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let bytes = ctx.caller().files().download("reports/today.txt").await?;
    /// let text = String::from_utf8_lossy(&bytes);
    /// # let _ = text;
    /// # Ok(()) }
    /// ```
    pub async fn download(&self, path: &str) -> Result<Bytes, SdkError> {
        file_name(path)?;
        self.client
            .send_bytes(self.call(Method::GET, &[], path)?)
            .await
    }

    /// One page of the directory `path` (`""` or `"/"` is the root):
    /// `GET files/{path}?pattern=&sub=&pagesize=&offset=`. The directory's read
    /// permission applies (6006 when refused); a missing directory is 6000.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Listing;
    /// let reports = ctx
    ///     .server_key()
    ///     .files()
    ///     .list("reports", &Listing::new().pattern("*.txt").page_size(100))
    ///     .await?;
    /// for file in &reports {
    ///     tracing::info!(name = %file.name, size = ?file.size, "report");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, path: &str, listing: &Listing) -> Result<Vec<FileInfo>, SdkError> {
        let mut call = self.call(Method::GET, &[], path)?;
        if let Some(pattern) = &listing.pattern {
            call = call.query("pattern", pattern);
        }
        if listing.recursive {
            call = call.query("sub", true);
        }
        if let Some(size) = listing.page_size {
            if !(1..=100).contains(&size) {
                return Err(SdkError::invalid(
                    "page_size",
                    format!("{size} is outside the allowed 1..=100"),
                ));
            }
            call = call.query("pagesize", size);
        }
        if let Some(offset) = listing.offset {
            call = call.query("offset", offset);
        }
        self.client.send(call).await
    }

    /// Whether a file or directory exists at `path`
    /// (`GET files/{path}?action=exists`): a missing one is `false`, not an
    /// error. The directory's read permission applies (6006 when refused).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// if !ctx.caller().files().exists("reports/today.txt").await? {
    ///     // Write it first.
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn exists(&self, path: &str) -> Result<bool, SdkError> {
        file_name(path)?;
        let call = self.call(Method::GET, &[], path)?.query("action", "exists");
        self.client.send(call).await
    }

    /// Removes the file `path` (`DELETE files/{path}`). The directory's delete
    /// permission applies (6006 when refused); a missing file is 6000.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().files().remove("reports/old.txt").await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove(&self, path: &str) -> Result<(), SdkError> {
        file_name(path)?;
        self.client
            .send_raw(self.call(Method::DELETE, &[], path)?)
            .await
            .map(drop)
    }

    /// Removes the directory `path` with everything in it
    /// (`DELETE files/{path}`, as the JS SDK's `removeDirectory`). The delete
    /// permission applies (6006 when refused); a missing directory is 6000.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().files().remove_directory("reports/2023").await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove_directory(&self, path: &str) -> Result<(), SdkError> {
        file_name(path)?;
        self.client
            .send_raw(self.call(Method::DELETE, &[], path)?)
            .await
            .map(drop)
    }

    /// Creates the directory `path` and its parents (`POST files/{path}/`).
    /// The directory's write permission applies (6006 when refused).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().files().create_directory("reports/2026/q1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_directory(&self, path: &str) -> Result<(), SdkError> {
        file_name(path)?;
        let mut call = self.call(Method::POST, &[], path)?;
        call.trailing_slash = true;
        self.client.send_raw(call).await.map(drop)
    }

    /// Copies the file or directory `from` to `to` and returns the copy's
    /// path (`PUT files/copy` with `{sourcePath, targetPath}`). Read on the
    /// source and write on the target apply (6006 when refused); a missing
    /// source is 6000, an existing target 6003.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let copy = ctx.server_key().files().copy("reports/today.txt", "archive/today.txt").await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy(&self, from: &str, to: &str) -> Result<String, SdkError> {
        self.transfer("copy", from, to).await
    }

    /// Moves the file or directory `from` to `to` and returns its new path
    /// (`PUT files/move` with `{sourcePath, targetPath}`). Delete on the source
    /// and write on the target apply (6006 when refused); a missing source is
    /// 6000, an existing target 6003.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let moved = ctx.server_key().files().move_to("inbox/scan.pdf", "done/scan.pdf").await?;
    /// # Ok(()) }
    /// ```
    pub async fn move_to(&self, from: &str, to: &str) -> Result<String, SdkError> {
        self.transfer("move", from, to).await
    }

    async fn transfer(&self, op: &str, from: &str, to: &str) -> Result<String, SdkError> {
        let from = absolute(from)?;
        let to = absolute(to)?;
        let call = Call::new(Service::Files, Method::PUT, ["files", op])
            .body(json!({ "sourcePath": from, "targetPath": to }));
        self.client.send(call).await
    }

    /// Renames the file or directory `path` to `new_name` (a name, not a
    /// path) in its directory and returns its new path (`PUT files/rename` with
    /// `{oldPathName, newName}`). A name with `/`, `\` or NUL is
    /// [`SdkError::InvalidArgument`] before any request; a missing file is
    /// 6000, a taken name 6003.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let renamed = ctx.caller().files().rename("notes/today.txt", "2026-12-02.txt").await?;
    /// # Ok(()) }
    /// ```
    pub async fn rename(&self, path: &str, new_name: &str) -> Result<String, SdkError> {
        let path = absolute(path)?;
        if new_name.is_empty() || new_name.contains(['/', '\\', '\0']) || new_name == ".." {
            return Err(SdkError::invalid(
                "new_name",
                "must be a file name, without `/`, `\\` or NUL",
            ));
        }
        let call = Call::new(Service::Files, Method::PUT, ["files", "rename"])
            .body(json!({ "oldPathName": path, "newName": new_name }));
        self.client.send(call).await
    }
}

/// The segments of a storage path; an error for `.`, `..`, empty segments,
/// `\` and NUL.
fn segments(path: &str) -> Result<Vec<String>, SdkError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    trimmed
        .split('/')
        .map(|s| {
            if s.is_empty() || s == "." || s == ".." || s.contains(['\\', '\0']) {
                Err(SdkError::invalid(
                    "path",
                    format!("`{path}` is not a storage path: no empty, `.` or `..` segments, no `\\` or NUL"),
                ))
            } else {
                Ok(s.to_owned())
            }
        })
        .collect()
}

/// The last segment of a path that names a file or directory (not the root).
fn file_name(path: &str) -> Result<String, SdkError> {
    segments(path)?
        .pop()
        .ok_or_else(|| SdkError::invalid("path", "the path names no file (it is the root)"))
}

/// `/a/b` for `a/b` (copy, move and rename take absolute paths).
fn absolute(path: &str) -> Result<String, SdkError> {
    let segments = segments(path)?;
    if segments.is_empty() {
        return Err(SdkError::invalid(
            "path",
            "the path names no file (it is the root)",
        ));
    }
    Ok(format!("/{}", segments.join("/")))
}

fn decode_error(message: &str) -> SdkError {
    SdkError::Decode {
        service: Service::Files.as_str(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_and_split() {
        assert_eq!(segments("/a/b.txt").unwrap(), ["a", "b.txt"]);
        assert_eq!(segments("").unwrap(), Vec::<String>::new());
        for bad in ["a/../b", "./a", "a//b", "a\\b", "a\0"] {
            assert!(segments(bad).is_err(), "{bad:?}");
        }
        assert!(file_name("/").is_err());
        assert_eq!(absolute("x/y").unwrap(), "/x/y");
    }

    #[test]
    fn a_file_url_debug_hides_the_key() {
        let url = FileUrl("http://h/app/SECRET-KEY/files/a/b.txt".into());
        assert_eq!(url.path(), "a/b.txt");
        assert!(!format!("{url:?}").contains("SECRET-KEY"));
    }
}
