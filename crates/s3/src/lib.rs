//! Object-store adapters of larder (the Parquet lake): S3 via aws-sdk-s3 and a local directory.
//!
//! Empty until the lake issue: ingestion, the first milestone, writes only to Redis. The crate
//! exists now so the workspace has its final shape and dependencies already point the right way.
