//! `larder replay` and `larder generate` end to end: generated data and the samples replayed into
//! the real application, interrupted and resumed, through a failing proxy, and from S3.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use larder_cli::{
    generate::{self, GenerateOptions, GenerateSummary},
    replay::{self, Display, ReplayOptions, Report},
};
use larder_domain::Source;
use larder_e2e::{TestApp, samples_dir, temp_dir, test_s3_settings};

fn options(url: &str) -> ReplayOptions {
    ReplayOptions {
        url: url.to_owned(),
        token: None,
        batch_size: 250,
        concurrency: 4,
        rate: None,
        by_event_time: false,
        checkpoint: None,
        resume: false,
        max_attempts: 50,
        s3: test_s3_settings(),
        display: Display::Quiet,
    }
}

fn generated(orders: u64) -> (std::path::PathBuf, GenerateSummary) {
    let dir = temp_dir("larder-generated");
    let summary = generate::run(&GenerateOptions {
        out: dir.clone(),
        orders,
        seed: 7,
    })
    .unwrap();
    (dir, summary)
}

fn accepted(report: &Report, source: Source) -> u64 {
    report
        .sources
        .get(&source)
        .map_or(0, |s| s.accepted + s.duplicate)
}

/// Every distinct event is in the stream once: the store holds exactly the dataset.
async fn assert_store_holds(app: &TestApp, summary: &GenerateSummary) {
    assert_eq!(app.stream_len("events:order").await as u64, summary.orders);
    assert_eq!(
        app.stream_len("events:status").await as u64,
        summary.statuses
    );
    assert_eq!(
        app.stream_len("events:restaurant").await as u64,
        summary.restaurants
    );
    assert_eq!(
        app.stream_len("events:consumer").await as u64,
        summary.consumers
    );
}

#[tokio::test]
async fn a_generated_dataset_replays_with_every_event_accepted() {
    let (dir, summary) = generated(2_000);
    let app = TestApp::spawn().await;
    let report = replay::run(options(&app.address), &[dir.display().to_string()])
        .await
        .unwrap();
    assert!(report.success(), "{}", report.render());
    let status = report.sources[&Source::Status];
    assert_eq!(
        (status.accepted, status.duplicate),
        (summary.statuses, summary.status_duplicates)
    );
    assert_eq!(report.sources[&Source::Order].accepted, summary.orders);
    assert_eq!(
        report.sources[&Source::Restaurant].accepted,
        summary.restaurants
    );
    assert_eq!(
        report.sources[&Source::Consumer].accepted,
        summary.consumers
    );
    assert_store_holds(&app, &summary).await;
    // The same seed writes the same bytes.
    let again = temp_dir("larder-generated");
    generate::run(&GenerateOptions {
        out: again.clone(),
        orders: 2_000,
        seed: 7,
    })
    .unwrap();
    for file in [
        "order.json.gz",
        "status.json.gz",
        "restaurant.csv.gz",
        "consumer.csv.gz",
    ] {
        assert_eq!(
            std::fs::read(dir.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file}"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn an_interrupted_replay_resumed_ends_like_an_uninterrupted_one() {
    let (dir, summary) = generated(1_500);
    let paths = [dir.display().to_string()];
    let whole = TestApp::spawn().await;
    let mut serial = options(&whole.address);
    serial.concurrency = 1;
    serial.batch_size = 100;
    assert!(replay::run(serial.clone(), &paths).await.unwrap().success());

    let resumed = TestApp::spawn().await;
    let checkpoint = dir.join("replay.checkpoint");
    let mut interrupted = serial.clone();
    interrupted.url = resumed.address.clone();
    interrupted.checkpoint = Some(checkpoint.clone());
    interrupted.rate = Some(2_000.0);
    let (first_run, first_paths) = (interrupted.clone(), paths.clone());
    let run = tokio::spawn(async move { replay::run(first_run, &first_paths).await });
    // Let it deliver part of the data, then kill it mid-way.
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let saved = std::fs::read_to_string(&checkpoint).unwrap_or_default();
        if saved.contains("order") {
            break;
        }
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert!(
        resumed.stream_len("events:status").await < summary.statuses as usize,
        "the replay finished before it was interrupted"
    );

    interrupted.resume = true;
    interrupted.rate = None;
    let report = replay::run(interrupted, &paths).await.unwrap();
    assert!(report.success(), "{}", report.render());
    assert!(report.total().skipped > 0, "the resume skipped nothing");
    assert_store_holds(&resumed, &summary).await;
    assert_eq!(resumed.dump().await, whole.dump().await);
    whole.cleanup().await;
    resumed.cleanup().await;
}

/// Forwards to `target`, but answers 503 without forwarding every fourth request, and loses the
/// answer (502 after forwarding) of every fourth other one.
async fn flaky_proxy(target: String) -> String {
    let seen = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let server = HttpServer::new(move || {
        let (seen, client, target) = (seen.clone(), client.clone(), target.clone());
        App::new()
            .app_data(web::PayloadConfig::new(64 << 20))
            .default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let (seen, client, target) = (seen.clone(), client.clone(), target.clone());
                async move {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    if n % 4 == 1 {
                        return HttpResponse::ServiceUnavailable()
                            .insert_header(("retry-after", "0"))
                            .finish();
                    }
                    let forwarded = client
                        .post(format!("{target}{}", request.path()))
                        .header(
                            "content-type",
                            request
                                .headers()
                                .get("content-type")
                                .unwrap()
                                .to_str()
                                .unwrap(),
                        )
                        .body(body.to_vec())
                        .send()
                        .await
                        .unwrap();
                    if n % 4 == 3 {
                        return HttpResponse::BadGateway().finish();
                    }
                    let status = forwarded.status().as_u16();
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .content_type("application/json")
                        .body(forwarded.bytes().await.unwrap())
                }
            }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    address
}

#[tokio::test]
async fn a_replay_through_a_failing_server_still_ends_with_exact_counts() {
    let (dir, summary) = generated(800);
    let app = TestApp::spawn().await;
    let proxy = flaky_proxy(app.address.clone()).await;
    let report = replay::run(options(&proxy), &[dir.display().to_string()])
        .await
        .unwrap();
    assert!(report.success(), "{}", report.render());
    assert!(
        report.total().duplicate > summary.status_duplicates,
        "no answer was lost, the test proves nothing"
    );
    // Every duplicate beyond the data's own came from an attempt whose answer was lost, and the
    // report says so.
    assert!(
        report.duplicate_on_resend >= report.total().duplicate - summary.status_duplicates,
        "{}",
        report.render()
    );
    assert_store_holds(&app, &summary).await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_sample_files_replay_with_every_row_accepted() {
    let Some(dir) = samples_dir() else {
        eprintln!("skipped: ../shared/ifood-sample not found (set LARDER_SAMPLES_DIR)");
        return;
    };
    let app = TestApp::spawn().await;
    let mut by_time = options(&app.address);
    by_time.by_event_time = true;
    let report = replay::run(by_time, &[dir.display().to_string()])
        .await
        .unwrap();
    assert!(report.success(), "{}", report.render());
    assert_eq!(accepted(&report, Source::Order), 1_000);
    assert_eq!(accepted(&report, Source::Restaurant), 7_292);
    let status = report.sources[&Source::Status];
    assert_eq!((status.accepted, status.duplicate), (644, 356));
    app.cleanup().await;
}

#[tokio::test]
async fn files_on_s3_replay_like_local_ones() {
    let (dir, summary) = generated(500);
    let settings = test_s3_settings();
    let client = larder_s3::s3_client(&settings).await;
    let bucket = format!("replay-{}", std::process::id());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    for file in [
        "order.json.gz",
        "status.json.gz",
        "restaurant.csv.gz",
        "consumer.csv.gz",
    ] {
        let location = larder_s3::S3Location {
            bucket: bucket.clone(),
            key: format!("raw/{file}"),
        };
        larder_s3::put_object(&client, &location, std::fs::read(dir.join(file)).unwrap())
            .await
            .unwrap();
    }
    let app = TestApp::spawn().await;
    let report = replay::run(options(&app.address), &[format!("s3://{bucket}/raw/")])
        .await
        .unwrap();
    assert!(report.success(), "{}", report.render());
    assert_store_holds(&app, &summary).await;
    app.cleanup().await;
}
