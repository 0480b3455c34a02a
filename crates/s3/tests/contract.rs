//! One contract for every `ObjectStore`: the local directory and S3 (against the S3-compatible
//! server `make test` starts, `LARDER_TEST_S3_ENDPOINT`, default http://127.0.0.1:9010).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use larder_s3::{LocalDirectory, S3Location, S3Settings, S3Store, s3_client};
use larder_usecases::ObjectStore;

async fn contract(store: &dyn ObjectStore, cache: &std::path::Path) {
    assert_eq!(
        store
            .get("bronze/order/date=2019-01-01/a.parquet")
            .await
            .unwrap(),
        None
    );
    store
        .put("bronze/order/date=2019-01-01/a.parquet", b"one".to_vec())
        .await
        .unwrap();
    store
        .put("bronze/order/date=2019-01-02/b.parquet", b"two".to_vec())
        .await
        .unwrap();
    store
        .put("bronze/status/date=2019-01-01/c.parquet", b"three".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store
            .get("bronze/order/date=2019-01-01/a.parquet")
            .await
            .unwrap()
            .unwrap(),
        b"one"
    );

    // A rewrite replaces the object whole.
    store
        .put("bronze/order/date=2019-01-01/a.parquet", b"uno".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store
            .get("bronze/order/date=2019-01-01/a.parquet")
            .await
            .unwrap()
            .unwrap(),
        b"uno"
    );

    assert_eq!(
        store.list("bronze/order/").await.unwrap(),
        [
            "bronze/order/date=2019-01-01/a.parquet",
            "bronze/order/date=2019-01-02/b.parquet"
        ]
    );
    assert_eq!(store.list("bronze/").await.unwrap().len(), 3);
    assert!(store.list("gold/").await.unwrap().is_empty());

    let copy = store.local_copy("bronze/order/", cache).await.unwrap();
    assert_eq!(
        std::fs::read(copy.join("bronze/order/date=2019-01-02/b.parquet")).unwrap(),
        b"two"
    );

    store
        .delete("bronze/order/date=2019-01-02/b.parquet")
        .await
        .unwrap();
    store
        .delete("bronze/order/date=2019-01-02/b.parquet")
        .await
        .unwrap();
    assert_eq!(store.list("bronze/order/").await.unwrap().len(), 1);

    for bad in ["", "/etc/passwd", "a/../../b", "a//b"] {
        assert!(
            store.put(bad, b"x".to_vec()).await.is_err(),
            "{bad:?} accepted"
        );
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_local_directory_keeps_the_contract() {
    let root = temp("larder-lake");
    contract(&LocalDirectory::new(&root), &temp("larder-cache")).await;
    std::fs::remove_dir_all(root).ok();
}

#[tokio::test]
async fn an_s3_bucket_keeps_the_contract() {
    let settings = S3Settings {
        endpoint: std::env::var("LARDER_TEST_S3_ENDPOINT")
            .unwrap_or_else(|_| "http://127.0.0.1:9010".into()),
        region: "us-east-1".into(),
        path_style: true,
        access_key_id: "test".into(),
        secret_access_key: Some("test".to_owned().into()),
    };
    let client = s3_client(&settings).await;
    let bucket = format!("contract-{}", std::process::id());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let store = S3Store::new(
        client,
        &S3Location {
            bucket,
            key: "lake/".into(),
        },
    );
    contract(&store, &temp("larder-cache")).await;
}
