use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::{
    Client,
    config::{Credentials, RequestChecksumCalculation, ResponseChecksumValidation},
    primitives::ByteStream,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::io::AsyncRead;

/// The `[s3]` settings. Empty values fall back to the usual AWS variables (`AWS_ENDPOINT_URL`,
/// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, profiles).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// e.g. `http://127.0.0.1:9000` for MinIO; empty for AWS.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub region: String,
    /// `http://host/bucket/key` addressing, which local servers need.
    #[serde(default)]
    pub path_style: bool,
    #[serde(default)]
    pub access_key_id: String,
    #[serde(default)]
    pub secret_access_key: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("not an s3:// URL: {0}")]
    BadUrl(String),
    #[error("s3://{bucket}/{key}: {message}")]
    Request {
        bucket: String,
        key: String,
        message: String,
    },
}

/// A bucket and a key (or key prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket/key`.
    ///
    /// # Errors
    /// [`S3Error::BadUrl`] when the text is not of that form.
    pub fn parse(url: &str) -> Result<Self, S3Error> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| S3Error::BadUrl(url.to_owned()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3Error::BadUrl(url.to_owned()));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    fn error(&self, error: impl std::fmt::Display) -> S3Error {
        S3Error::Request {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            message: error.to_string(),
        }
    }
}

/// Builds a client from `settings`, falling back to the AWS environment for what is unset.
pub async fn s3_client(settings: &S3Settings) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if !settings.region.is_empty() {
        loader = loader.region(Region::new(settings.region.clone()));
    }
    if !settings.endpoint.is_empty() {
        loader = loader.endpoint_url(&settings.endpoint);
    }
    if let (false, Some(secret)) = (
        settings.access_key_id.is_empty(),
        &settings.secret_access_key,
    ) {
        let credentials = Credentials::new(
            &settings.access_key_id,
            secret.expose_secret(),
            None,
            None,
            "larder-settings",
        );
        loader = loader.credentials_provider(credentials);
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(settings.path_style)
        // Many S3-compatible servers reject the CRC trailers newer SDKs send by default.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if shared.region().is_none() {
        config = config.region(Region::new("us-east-1"));
    }
    Client::from_conf(config.build())
}

/// Streams one object.
///
/// # Errors
/// [`S3Error::Request`] when the object cannot be fetched.
pub async fn open_object(
    client: &Client,
    location: &S3Location,
) -> Result<impl AsyncRead + Send + Unpin + use<>, S3Error> {
    let object = client
        .get_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
        .map_err(|e| location.error(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(object.body.into_async_read())
}

/// Writes one object.
///
/// # Errors
/// [`S3Error::Request`] when the write fails.
pub async fn put_object(
    client: &Client,
    location: &S3Location,
    body: Vec<u8>,
) -> Result<(), S3Error> {
    client
        .put_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| location.error(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// Every key under `location.key` (a prefix), in key order.
///
/// # Errors
/// [`S3Error::Request`] when listing fails.
pub async fn list_objects(client: &Client, location: &S3Location) -> Result<Vec<String>, S3Error> {
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(&location.bucket)
        .prefix(&location.key)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| location.error(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys.sort();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_key() {
        let location = S3Location::parse("s3://lake/raw/order.json.gz").unwrap();
        assert_eq!(
            (location.bucket.as_str(), location.key.as_str()),
            ("lake", "raw/order.json.gz")
        );
        assert_eq!(S3Location::parse("s3://lake").unwrap().key, "");
        assert!(S3Location::parse("http://lake/x").is_err());
        assert!(S3Location::parse("s3:///x").is_err());
    }
}
