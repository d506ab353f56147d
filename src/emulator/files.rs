//! The file storage (`files/...` routes): upload (multipart), save from
//! base64 (`files/binary/...`), download, listing, `exists`, remove, create
//! a directory, copy, move and rename; with per-directory permissions.
//!
//! Files live in a directory (`files/` next to the SQLite file), or in
//! memory when the database is `:memory:`; either way the store holds at
//! most `files_max_bytes`. A path is a list of plain names: `.`, `..`, empty
//! names, `\` and NUL are refused (6024), so no request reaches outside the
//! storage.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::auth::Requester;
use super::config::{Access, DirectoryConfig, EmulatorConfig, FileOperation};
use super::error::ApiError;
use super::security::level;
use super::{PathParams, Shared, json_object, path_param, query_map};

/// The largest upload (multipart) accepted: 10 MiB (6015 beyond, a guess at
/// the code).
pub(crate) const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The largest `files/binary` save: 2,800,000 bytes decoded (6016, documented).
pub(crate) const MAX_SAVE_BYTES: usize = 2_800_000;
/// The request body limit of the file routes (an upload and its multipart
/// framing; a base64 save).
pub(crate) const BODY_LIMIT: usize = MAX_UPLOAD_BYTES + 64 * 1024;
/// Entries per listing page when none is asked for (a guess).
const DEFAULT_PAGE: usize = 100;

fn not_found(path: &str) -> ApiError {
    ApiError::new(6000, format!("File or directory cannot be found: /{path}"))
        .with_status(StatusCode::NOT_FOUND)
}

fn bad_path(detail: &str) -> ApiError {
    ApiError::new(6024, format!("Invalid file path: {detail}"))
}

fn denied(op: FileOperation) -> ApiError {
    let what = match op {
        FileOperation::Read => "read",
        FileOperation::Write => "write",
        FileOperation::Delete => "delete",
    };
    ApiError::new(
        6006,
        format!("User has no permission to {what} this file or directory"),
    )
}

/// A checked storage path: plain names, never `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StoragePath(Vec<String>);

impl StoragePath {
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        let trimmed = text.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let mut names = Vec::new();
        for name in trimmed.split('/') {
            if name.is_empty() || name == "." || name == ".." {
                return Err(bad_path("empty, `.` and `..` names are not allowed"));
            }
            if name.contains(['\\', '\0']) || name.chars().any(char::is_control) {
                return Err(bad_path("`\\`, NUL and control characters are not allowed"));
            }
            names.push(name.to_owned());
        }
        Ok(Self(names))
    }

    fn key(&self) -> String {
        self.0.join("/")
    }

    fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn name(&self) -> &str {
        self.0.last().map_or("", String::as_str)
    }

    fn parent(&self) -> StoragePath {
        let mut names = self.0.clone();
        names.pop();
        Self(names)
    }

    fn child(&self, name: &str) -> StoragePath {
        let mut names = self.0.clone();
        names.push(name.to_owned());
        Self(names)
    }

    fn starts_with(&self, other: &StoragePath) -> bool {
        self.0.starts_with(&other.0)
    }
}

/// One entry of a listing.
#[derive(Debug, Clone)]
struct Entry {
    path: StoragePath,
    is_dir: bool,
    size: u64,
    created: i64,
}

enum Node {
    File { bytes: Bytes, created: i64 },
    Dir { created: i64 },
}

/// Where the files are.
enum Backend {
    /// A directory on disk.
    Disk(PathBuf),
    /// In memory (database `:memory:`); keys are `a/b/c` paths.
    Memory(Mutex<BTreeMap<String, Node>>),
}

/// The file storage with its permissions.
pub(crate) struct FileStore {
    backend: Backend,
    /// Held by every change, so that the size check and the write that
    /// follows it are one step (the bound holds under concurrent uploads).
    changing: Mutex<()>,
    max_bytes: u64,
    directories: Vec<(StoragePath, DirectoryConfig)>,
}

fn now_ms() -> i64 {
    super::store::now_ms()
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("file storage: {e}"))
}

impl FileStore {
    pub(crate) fn new(config: &EmulatorConfig) -> anyhow::Result<Self> {
        let backend = if config.database == ":memory:" {
            Backend::Memory(Mutex::new(BTreeMap::new()))
        } else {
            let parent = FsPath::new(&config.database)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(FsPath::new("."));
            let root = parent.join("files");
            std::fs::create_dir_all(&root).map_err(|e| {
                anyhow::anyhow!("while creating the file storage {}: {e}", root.display())
            })?;
            Backend::Disk(root)
        };
        let mut directories = Vec::new();
        for d in &config.directories {
            let path = StoragePath::parse(&d.path).map_err(|e| {
                anyhow::anyhow!("emulator.directories path {:?}: {}", d.path, e.message)
            })?;
            directories.push((path, d.clone()));
        }
        // The longest path first: it decides.
        directories.sort_by_key(|(p, _)| std::cmp::Reverse(p.0.len()));
        Ok(Self {
            backend,
            changing: Mutex::new(()),
            max_bytes: config.files_max_bytes,
            directories,
        })
    }

    /// `Ok` when `roles` may do `op` on `path`, else 6006.
    fn check(
        &self,
        path: &StoragePath,
        op: FileOperation,
        roles: &[String],
    ) -> Result<(), ApiError> {
        let Some((_, dir)) = self.directories.iter().find(|(p, _)| path.starts_with(p)) else {
            return Ok(());
        };
        let access = level(&dir.permissions, &op, roles, false)
            .or_else(|| level(&dir.permissions, &op, roles, true))
            .unwrap_or(dir.default);
        match access {
            Access::Grant => Ok(()),
            Access::Deny => Err(denied(op)),
        }
    }

    fn disk(root: &FsPath, path: &StoragePath) -> PathBuf {
        let mut p = root.to_path_buf();
        for name in &path.0 {
            p.push(name);
        }
        p
    }

    fn kind(&self, path: &StoragePath) -> Result<Option<bool>, ApiError> {
        if path.is_root() {
            return Ok(Some(true));
        }
        match &self.backend {
            Backend::Disk(root) => match std::fs::metadata(Self::disk(root, path)) {
                Ok(m) => Ok(Some(m.is_dir())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_error(e)),
            },
            Backend::Memory(map) => Ok(map
                .lock()
                .get(&path.key())
                .map(|n| matches!(n, Node::Dir { .. }))),
        }
    }

    fn used_bytes(&self) -> Result<u64, ApiError> {
        Ok(self
            .entries(&StoragePath(Vec::new()), true)?
            .iter()
            .filter(|e| !e.is_dir)
            .map(|e| e.size)
            .sum())
    }

    fn write(&self, path: &StoragePath, bytes: Bytes, overwrite: bool) -> Result<(), ApiError> {
        let _one = self.changing.lock();
        self.write_unlocked(path, bytes, overwrite)
    }

    fn write_unlocked(
        &self,
        path: &StoragePath,
        bytes: Bytes,
        overwrite: bool,
    ) -> Result<(), ApiError> {
        if path.is_root() {
            return Err(bad_path("the root is not a file"));
        }
        match self.kind(path)? {
            Some(true) => return Err(bad_path("a directory of that name exists")),
            Some(false) if !overwrite => {
                return Err(ApiError::new(
                    6003,
                    format!(
                        "Unable to upload the file: /{} already exists (overwrite is off)",
                        path.key()
                    ),
                ));
            }
            _ => {}
        }
        let old = match self.kind(path)? {
            Some(false) => self.read(path)?.len() as u64,
            _ => 0,
        };
        if self.used_bytes()? - old + bytes.len() as u64 > self.max_bytes {
            return Err(ApiError::new(
                6017,
                format!(
                    "The file storage is full (files_max_bytes = {})",
                    self.max_bytes
                ),
            ));
        }
        self.mkdirs(&path.parent())?;
        match &self.backend {
            Backend::Disk(root) => std::fs::write(Self::disk(root, path), &bytes).map_err(io_error),
            Backend::Memory(map) => {
                let mut map = map.lock();
                let created = match map.get(&path.key()) {
                    Some(Node::File { created, .. }) => *created,
                    _ => now_ms(),
                };
                map.insert(path.key(), Node::File { bytes, created });
                Ok(())
            }
        }
    }

    fn mkdirs(&self, path: &StoragePath) -> Result<(), ApiError> {
        for depth in 1..=path.0.len() {
            let dir = StoragePath(path.0[..depth].to_vec());
            if self.kind(&dir)? == Some(false) {
                return Err(bad_path("a file stands where a directory would be"));
            }
        }
        match &self.backend {
            Backend::Disk(root) => {
                std::fs::create_dir_all(Self::disk(root, path)).map_err(io_error)
            }
            Backend::Memory(map) => {
                let mut map = map.lock();
                for depth in 1..=path.0.len() {
                    map.entry(path.0[..depth].join("/"))
                        .or_insert_with(|| Node::Dir { created: now_ms() });
                }
                Ok(())
            }
        }
    }

    fn read(&self, path: &StoragePath) -> Result<Bytes, ApiError> {
        match &self.backend {
            Backend::Disk(root) => match std::fs::read(Self::disk(root, path)) {
                Ok(b) => Ok(Bytes::from(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found(&path.key())),
                Err(e) => Err(io_error(e)),
            },
            Backend::Memory(map) => match map.lock().get(&path.key()) {
                Some(Node::File { bytes, .. }) => Ok(bytes.clone()),
                _ => Err(not_found(&path.key())),
            },
        }
    }

    /// The entries under `dir` (all depths when `recursive`), sorted by path.
    fn entries(&self, dir: &StoragePath, recursive: bool) -> Result<Vec<Entry>, ApiError> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::Disk(root) => {
                let mut stack = vec![dir.clone()];
                while let Some(d) = stack.pop() {
                    let read = match std::fs::read_dir(Self::disk(root, &d)) {
                        Ok(r) => r,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_error(e)),
                    };
                    for item in read {
                        let item = item.map_err(io_error)?;
                        let meta = item.metadata().map_err(io_error)?;
                        let path = d.child(&item.file_name().to_string_lossy());
                        let created = meta
                            .created()
                            .or_else(|_| meta.modified())
                            .ok()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |t| t.as_millis() as i64);
                        if meta.is_dir() && recursive {
                            stack.push(path.clone());
                        }
                        out.push(Entry {
                            path,
                            is_dir: meta.is_dir(),
                            size: if meta.is_dir() { 0 } else { meta.len() },
                            created,
                        });
                    }
                }
            }
            Backend::Memory(map) => {
                for (key, node) in map.lock().iter() {
                    let path = StoragePath(key.split('/').map(str::to_owned).collect());
                    let direct = path.0.len() == dir.0.len() + 1;
                    if path.starts_with(dir) && path.0.len() > dir.0.len() && (recursive || direct)
                    {
                        let (is_dir, size, created) = match node {
                            Node::File { bytes, created } => (false, bytes.len() as u64, *created),
                            Node::Dir { created } => (true, 0, *created),
                        };
                        out.push(Entry {
                            path,
                            is_dir,
                            size,
                            created,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn remove(&self, path: &StoragePath) -> Result<(), ApiError> {
        let _one = self.changing.lock();
        self.remove_unlocked(path)
    }

    fn remove_unlocked(&self, path: &StoragePath) -> Result<(), ApiError> {
        if path.is_root() {
            return Err(bad_path("the root cannot be removed"));
        }
        let Some(is_dir) = self.kind(path)? else {
            return Err(not_found(&path.key()));
        };
        match &self.backend {
            Backend::Disk(root) => {
                let p = Self::disk(root, path);
                if is_dir {
                    std::fs::remove_dir_all(p)
                } else {
                    std::fs::remove_file(p)
                }
                .map_err(io_error)
            }
            Backend::Memory(map) => {
                let key = path.key();
                let prefix = format!("{key}/");
                map.lock()
                    .retain(|k, _| *k != key && !k.starts_with(&prefix));
                Ok(())
            }
        }
    }

    /// Copies `from` (a file or a directory) to `to`; `to` must not exist.
    fn copy(&self, from: &StoragePath, to: &StoragePath) -> Result<(), ApiError> {
        let _one = self.changing.lock();
        self.copy_unlocked(from, to)
    }

    fn copy_unlocked(&self, from: &StoragePath, to: &StoragePath) -> Result<(), ApiError> {
        let Some(is_dir) = self.kind(from)? else {
            return Err(not_found(&from.key()));
        };
        if self.kind(to)?.is_some() {
            return Err(ApiError::new(6003, format!("/{} already exists", to.key())));
        }
        if to.starts_with(from) {
            return Err(bad_path("a directory cannot be copied into itself"));
        }
        if !is_dir {
            return self.write_unlocked(to, self.read(from)?, false);
        }
        self.mkdirs(to)?;
        for entry in self.entries(from, true)? {
            let target = StoragePath(
                to.0.iter()
                    .chain(&entry.path.0[from.0.len()..])
                    .cloned()
                    .collect(),
            );
            if entry.is_dir {
                self.mkdirs(&target)?;
            } else {
                self.write_unlocked(&target, self.read(&entry.path)?, false)?;
            }
        }
        Ok(())
    }

    fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<(), ApiError> {
        let _one = self.changing.lock();
        if from.is_root() {
            return Err(bad_path("the root cannot be moved"));
        }
        match &self.backend {
            Backend::Disk(root) => {
                if self.kind(from)?.is_none() {
                    return Err(not_found(&from.key()));
                }
                if self.kind(to)?.is_some() {
                    return Err(ApiError::new(6003, format!("/{} already exists", to.key())));
                }
                if to.starts_with(from) {
                    return Err(bad_path("a directory cannot be moved into itself"));
                }
                self.mkdirs(&to.parent())?;
                std::fs::rename(Self::disk(root, from), Self::disk(root, to)).map_err(io_error)
            }
            Backend::Memory(_) => {
                self.copy_unlocked(from, to)?;
                self.remove_unlocked(from)
            }
        }
    }
}

/// The file's public URL: `{url}/{app}/{key}/files/{path}` with the key of
/// the request that stored it (as Backendless does).
fn file_url(st: &Shared, key: &str, path: &StoragePath) -> String {
    let encoded: Vec<String> = path
        .0
        .iter()
        .map(|n| percent_encoding::utf8_percent_encode(n, SEGMENT).to_string())
        .collect();
    format!(
        "{}/{}/{}/files/{}",
        st.dispatcher.base_url().trim_end_matches('/'),
        st.config.app_id,
        key,
        encoded.join("/")
    )
}

/// What a path segment must escape.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn bool_query(uri: &Uri, name: &str) -> bool {
    query_map(uri)
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn path_of(p: &std::collections::HashMap<String, String>) -> Result<StoragePath, ApiError> {
    StoragePath::parse(path_param(p, "path"))
}

/// Runs a storage operation off the async threads.
async fn blocking<R: Send + 'static>(
    st: &Shared,
    f: impl FnOnce(&FileStore) -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st.files))
        .await
        .map_err(ApiError::internal)?
}

/// POST files/{path}: a multipart upload (part `file`), or a directory when
/// the path ends with `/` (the JS SDK's `createDirectory`) → `{"fileURL"}`.
pub(crate) async fn upload(
    State(st): State<Shared>,
    caller: Requester,
    axum::extract::Path(p): PathParams,
    uri: Uri,
    multipart: Option<Multipart>,
) -> Result<Json<Value>, ApiError> {
    let path = path_of(&p)?;
    st.files.check(&path, FileOperation::Write, &caller.roles)?;
    if uri.path().ends_with('/') {
        if path.is_root() {
            return Err(bad_path("the root exists"));
        }
        blocking(&st, move |fs| fs.mkdirs(&path)).await?;
        return Ok(Json(Value::Bool(true)));
    }
    let Some(mut multipart) = multipart else {
        return Err(ApiError::parse(
            "an upload is a multipart/form-data body with a part `file` \
             (uploading from a URL is not emulated)",
        ));
    };
    let mut bytes = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::parse(format!("multipart body: {e}")))?
    {
        if bytes.is_none() {
            let data = field.bytes().await.map_err(|e| {
                ApiError::new(
                    6015,
                    format!("the upload could not be read (at most {MAX_UPLOAD_BYTES} bytes): {e}"),
                )
            })?;
            bytes = Some(data);
        }
    }
    let bytes = bytes.ok_or_else(|| ApiError::parse("the multipart body has no file part"))?;
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(ApiError::new(
            6015,
            format!("the file is larger than {MAX_UPLOAD_BYTES} bytes"),
        ));
    }
    let overwrite = bool_query(&uri, "overwrite");
    let key = path_param(&p, "api_key").to_owned();
    let stored = path.clone();
    blocking(&st, move |fs| fs.write(&stored, bytes, overwrite)).await?;
    Ok(Json(json!({ "fileURL": file_url(&st, &key, &path) })))
}

/// PUT files/binary/{path}: the body is the file in base64 → the URL as a
/// JSON string.
pub(crate) async fn save_binary(
    State(st): State<Shared>,
    caller: Requester,
    axum::extract::Path(p): PathParams,
    uri: Uri,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let path = path_of(&p)?;
    st.files.check(&path, FileOperation::Write, &caller.roles)?;
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| ApiError::parse(format!("the body is not base64: {e}")))?;
    if bytes.len() > MAX_SAVE_BYTES {
        return Err(ApiError::new(
            6016,
            format!("The payload exceeds {MAX_SAVE_BYTES} bytes"),
        ));
    }
    let overwrite = bool_query(&uri, "overwrite");
    let key = path_param(&p, "api_key").to_owned();
    let stored = path.clone();
    blocking(&st, move |fs| {
        fs.write(&stored, Bytes::from(bytes), overwrite)
    })
    .await?;
    Ok(Json(Value::String(file_url(&st, &key, &path))))
}

/// GET files/{path}: a file's bytes; a directory's listing (`pattern`,
/// `sub`, `pagesize`, `offset`); `?action=exists` → bool; `?action=count` →
/// how many entries.
pub(crate) async fn get(
    State(st): State<Shared>,
    caller: Requester,
    axum::extract::Path(p): PathParams,
    uri: Uri,
) -> Result<Response, ApiError> {
    let path = p
        .get("path")
        .map_or(Ok(StoragePath(Vec::new())), |_| path_of(&p))?;
    st.files.check(&path, FileOperation::Read, &caller.roles)?;
    let q = query_map(&uri);
    let key = path_param(&p, "api_key").to_owned();
    match q.get("action").map(String::as_str) {
        Some("exists") => {
            let kind = blocking(&st, {
                let path = path.clone();
                move |fs| fs.kind(&path)
            })
            .await?;
            return Ok(Json(Value::Bool(kind.is_some())).into_response());
        }
        Some("count") | None => {}
        Some(other) => return Err(ApiError::parse(format!("unknown action `{other}`"))),
    }
    let kind = blocking(&st, {
        let path = path.clone();
        move |fs| fs.kind(&path)
    })
    .await?;
    match kind {
        None => Err(not_found(&path.key())),
        Some(false) => {
            let bytes = blocking(&st, move |fs| fs.read(&path)).await?;
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/octet-stream")],
                bytes,
            )
                .into_response())
        }
        Some(true) => {
            let recursive = bool_query(&uri, "sub");
            let pattern = q.get("pattern").cloned().unwrap_or_else(|| "*".to_owned());
            let int = |name: &str, default: usize| -> Result<usize, ApiError> {
                match q.get(name) {
                    None => Ok(default),
                    Some(v) => v.parse().map_err(|_| {
                        ApiError::parse(format!(
                            "query parameter `{name}` must be a non-negative integer"
                        ))
                    }),
                }
            };
            let page = int("pagesize", DEFAULT_PAGE)?.clamp(1, 100);
            let offset = int("offset", 0)?;
            let dir = path.clone();
            let entries = blocking(&st, move |fs| fs.entries(&dir, recursive)).await?;
            let matching: Vec<Entry> = entries
                .into_iter()
                .filter(|e| glob(&pattern, e.path.name()))
                .collect();
            if q.get("action").map(String::as_str) == Some("count") {
                return Ok(Json(json!(matching.len())).into_response());
            }
            let items: Vec<Value> = matching
                .iter()
                .skip(offset)
                .take(page)
                .map(|e| {
                    json!({
                        "name": e.path.name(),
                        "url": e.path.key(),
                        "publicUrl": file_url(&st, &key, &e.path),
                        "createdOn": e.created,
                        "size": e.size,
                    })
                })
                .collect();
            Ok(Json(Value::Array(items)).into_response())
        }
    }
}

/// DELETE files/{path}: a file, or a directory with everything in it.
pub(crate) async fn remove(
    State(st): State<Shared>,
    caller: Requester,
    axum::extract::Path(p): PathParams,
) -> Result<StatusCode, ApiError> {
    let path = path_of(&p)?;
    st.files
        .check(&path, FileOperation::Delete, &caller.roles)?;
    blocking(&st, move |fs| fs.remove(&path)).await?;
    Ok(StatusCode::OK)
}

fn body_path(body: &serde_json::Map<String, Value>, name: &str) -> Result<StoragePath, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) => StoragePath::parse(s),
        _ => Err(ApiError::parse(format!("`{name}` must be a path string"))),
    }
}

/// PUT files/copy {sourcePath, targetPath} → the copy's path.
pub(crate) async fn copy(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let from = body_path(&body, "sourcePath")?;
    let to = body_path(&body, "targetPath")?;
    st.files.check(&from, FileOperation::Read, &caller.roles)?;
    st.files.check(&to, FileOperation::Write, &caller.roles)?;
    let shown = format!("/{}", to.key());
    blocking(&st, move |fs| fs.copy(&from, &to)).await?;
    Ok(Json(Value::String(shown)))
}

/// PUT files/move {sourcePath, targetPath} → the new path.
pub(crate) async fn move_to(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let from = body_path(&body, "sourcePath")?;
    let to = body_path(&body, "targetPath")?;
    relocate(&st, &caller, from, to).await
}

/// PUT files/rename {oldPathName, newName} → the new path.
pub(crate) async fn rename(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let from = body_path(&body, "oldPathName")?;
    let name = match body.get("newName") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(ApiError::parse("`newName` must be a string")),
    };
    let renamed = StoragePath::parse(&name)?;
    if renamed.0.len() != 1 {
        return Err(bad_path("`newName` is a name, not a path"));
    }
    let to = from.parent().child(&name);
    relocate(&st, &caller, from, to).await
}

async fn relocate(
    st: &Shared,
    caller: &Requester,
    from: StoragePath,
    to: StoragePath,
) -> Result<Json<Value>, ApiError> {
    st.files
        .check(&from, FileOperation::Delete, &caller.roles)?;
    st.files.check(&to, FileOperation::Write, &caller.roles)?;
    let shown = format!("/{}", to.key());
    blocking(st, move |fs| fs.rename(&from, &to)).await?;
    Ok(Json(Value::String(shown)))
}

/// Whether `name` matches `pattern` (`*` any run, `?` one character).
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_storage() {
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "a/./b",
            "a//b",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(StoragePath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(StoragePath::parse("/a/b.txt/").unwrap().key(), "a/b.txt");
    }

    #[test]
    fn glob_patterns() {
        assert!(glob("*.txt", "a.txt"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("*.txt", "a.csv"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYc"));
    }

    #[test]
    fn the_memory_store_is_bounded() {
        let config = EmulatorConfig {
            files_max_bytes: 10,
            ..EmulatorConfig::default()
        };
        let fs = FileStore::new(&config).unwrap();
        let p = StoragePath::parse("a/b").unwrap();
        fs.write(&p, Bytes::from_static(b"12345678"), false)
            .unwrap();
        let err = fs
            .write(
                &StoragePath::parse("c").unwrap(),
                Bytes::from_static(b"123"),
                false,
            )
            .unwrap_err();
        assert_eq!(err.code, 6017);
        // Overwriting counts the new size only.
        fs.write(&p, Bytes::from_static(b"1234567890"), true)
            .unwrap();
    }
}

#[cfg(test)]
mod route_tests {
    use axum::http::Method;
    use serde_json::json;

    use super::super::test_call as call;
    use super::super::{Emulator, EmulatorConfig};
    use super::*;

    #[tokio::test]
    async fn files_live_next_to_the_database_file_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmulatorConfig {
            database: dir.path().join("emu.db").to_string_lossy().into_owned(),
            ..EmulatorConfig::dev()
        };
        let emu = Emulator::new(config.clone()).unwrap();
        let root = "/dev-app/dev-cloudcode-key/files";
        // A directory by `POST files/{path}/` (no multipart body), then a save.
        let (status, _) = call(&emu, Method::POST, &format!("{root}/docs/sub/"), None, "").await;
        assert_eq!(status, StatusCode::OK);
        let (status, url) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-cloudcode-key/files/binary/docs/sub/a.txt",
            None,
            "aGVsbG8=",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(
            url.as_str()
                .unwrap()
                .ends_with("/dev-app/dev-cloudcode-key/files/docs/sub/a.txt")
        );
        assert_eq!(
            std::fs::read(dir.path().join("files/docs/sub/a.txt")).unwrap(),
            b"hello"
        );
        drop(emu);
        let emu = Emulator::new(config).unwrap();
        let (_, listing) = call(
            &emu,
            Method::GET,
            &format!("{root}/docs?sub=true"),
            None,
            "",
        )
        .await;
        let names: Vec<&str> = listing
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["url"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["docs/sub", "docs/sub/a.txt"]);
        let (_, exists) = call(
            &emu,
            Method::GET,
            &format!("{root}/docs/sub/a.txt?action=exists"),
            None,
            "",
        )
        .await;
        assert_eq!(exists, json!(true));
        // Moves and removals stay inside the storage.
        let (status, moved) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-cloudcode-key/files/move",
            None,
            r#"{"sourcePath": "/docs/sub/a.txt", "targetPath": "/docs/b.txt"}"#,
        )
        .await;
        assert_eq!((status, moved), (StatusCode::OK, json!("/docs/b.txt")));
        let (status, err) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-cloudcode-key/files/move",
            None,
            r#"{"sourcePath": "/docs/b.txt", "targetPath": "/../outside.txt"}"#,
        )
        .await;
        assert_eq!(
            (status, err["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(6024))
        );
        assert!(!dir.path().join("outside.txt").exists());
        let (status, _) = call(&emu, Method::DELETE, &format!("{root}/docs"), None, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!dir.path().join("files/docs").exists());
        let (status, err) = call(&emu, Method::DELETE, &format!("{root}/docs"), None, "").await;
        assert_eq!(
            (status, err["code"].clone()),
            (StatusCode::NOT_FOUND, json!(6000))
        );
    }
}
