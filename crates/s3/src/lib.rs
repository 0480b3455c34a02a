//! Object-store adapters of larder: S3 (any S3-compatible server) via aws-sdk-s3.
//!
//! Key decision: one client constructor for every S3 use, configured from larder's settings with
//! the usual AWS variables as fallback, path-style addressing and checksums only when required,
//! so the same code talks to AWS S3, MinIO, s3s-fs and moto.

mod s3;

pub use aws_sdk_s3::Client as S3Client;
pub use s3::{S3Error, S3Location, S3Settings, list_objects, open_object, put_object, s3_client};
