//! Object-store adapters of larder: the `ObjectStore` port on a local directory and on S3 (any
//! S3-compatible server) via aws-sdk-s3, plus S3 helpers for replay inputs.
//!
//! Key decision: one client constructor for every S3 use, configured from larder's settings with
//! the usual AWS variables as fallback, path-style addressing and checksums only when required,
//! so the same code talks to AWS S3, MinIO, s3s-fs and moto.

mod s3;
mod store;

pub use aws_sdk_s3::Client as S3Client;
pub use s3::{S3Error, S3Location, S3Settings, list_objects, open_object, put_object, s3_client};
pub use store::{LocalDirectory, S3Store, open_store};
