//! [`ObjectStore`] on a local directory and on S3, chosen by the lake root (`data/lake` or
//! `s3://bucket/prefix`).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use aws_sdk_s3::{Client, primitives::ByteStream};
use larder_usecases::{ObjectStore, StoreError};

use crate::{S3Location, S3Settings, list_objects, s3_client};

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// Keys are relative paths: no leading `/`, no `..`, so no key leaves the store's root.
fn checked(key: &str) -> Result<&str, StoreError> {
    if key.is_empty()
        || key.starts_with('/')
        || key.split('/').any(|part| part == ".." || part.is_empty())
    {
        return Err(StoreError::Failed(format!("invalid object key {key:?}")));
    }
    Ok(key)
}

/// Objects as files under a root directory.
pub struct LocalDirectory {
    root: PathBuf,
}

impl LocalDirectory {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

#[async_trait]
impl ObjectStore for LocalDirectory {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.root.join(checked(key)?);
        let temporary = path.with_extension("partial");
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Write aside, flush to disk, then rename: a crash leaves the old object or the new
            // one, never half of one.
            let file = std::fs::File::create(&temporary)?;
            std::io::Write::write_all(&mut &file, &bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            if let Some(parent) = path.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(unavailable)?
        .map_err(unavailable)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match tokio::fs::read(self.root.join(checked(key)?)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            // Every key starting with the prefix lies under its last directory.
            let start = match prefix.rsplit_once('/') {
                Some((dir, _)) if !dir.split('/').any(|part| part == "..") => root.join(dir),
                _ => root.clone(),
            };
            let mut pending = vec![start];
            while let Some(dir) = pending.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(unavailable(e)),
                };
                for entry in entries {
                    let path = entry.map_err(unavailable)?.path();
                    if path.is_dir() {
                        pending.push(path);
                    } else if path.extension().is_some_and(|e| e == "partial") {
                        continue;
                    } else if let Ok(relative) = path.strip_prefix(&root) {
                        let key = relative.to_string_lossy().replace('\\', "/");
                        if key.starts_with(&prefix) {
                            keys.push(key);
                        }
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(unavailable)?
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.root.join(checked(key)?)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(unavailable(e)),
            _ => Ok(()),
        }
    }

    async fn local_copy(&self, _prefix: &str, _cache: &Path) -> Result<PathBuf, StoreError> {
        Ok(self.root.clone())
    }
}

/// Objects in an S3 bucket under a key prefix.
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    pub fn new(client: Client, location: &S3Location) -> Self {
        let prefix = location.key.trim_end_matches('/');
        Self {
            client,
            bucket: location.bucket.clone(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    fn location(&self, key: &str) -> S3Location {
        S3Location {
            bucket: self.bucket.clone(),
            key: format!("{}{key}", self.prefix),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let location = self.location(checked(key)?);
        // A single PUT is atomic in S3: the object appears whole or not at all.
        self.client
            .put_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let location = self.location(checked(key)?);
        match self
            .client
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
        {
            Ok(object) => Ok(Some(
                object.body.collect().await.map_err(unavailable)?.to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(e) => Err(unavailable(aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let location = self.location(prefix);
        let keys = list_objects(&self.client, &location)
            .await
            .map_err(unavailable)?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let location = self.location(checked(key)?);
        self.client
            .delete_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn local_copy(&self, prefix: &str, cache: &Path) -> Result<PathBuf, StoreError> {
        // Objects are immutable once named (a rewrite carries identical rows), so a cached copy
        // of a key is never stale; it only outlives the object (merged by compaction), and is
        // removed once the new objects are copied.
        let local = LocalDirectory::new(cache);
        let keys = self.list(prefix).await?;
        for key in &keys {
            let path = cache.join(key);
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                continue;
            }
            let bytes = self
                .get(key)
                .await?
                .ok_or_else(|| unavailable(format!("{key} vanished")))?;
            local.put(key, bytes).await?;
        }
        let keys: std::collections::HashSet<&String> = keys.iter().collect();
        for cached in local.list(prefix).await? {
            if !keys.contains(&cached) {
                local.delete(&cached).await?;
            }
        }
        Ok(cache.to_path_buf())
    }
}

/// The store for a lake root: `s3://bucket/prefix` or a directory.
///
/// # Errors
/// When an `s3://` root cannot be parsed.
pub async fn open_store(root: &str, s3: &S3Settings) -> Result<Arc<dyn ObjectStore>, StoreError> {
    if root.starts_with("s3://") {
        let location = S3Location::parse(root).map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(Arc::new(S3Store::new(s3_client(s3).await, &location)))
    } else {
        Ok(Arc::new(LocalDirectory::new(root)))
    }
}
