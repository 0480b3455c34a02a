//! Redis without the ingest script (a restart, `SCRIPT FLUSH`, a new larder version) while
//! batches arrive: one request loads it while the calls of the others run on either side of the
//! load. The calls that ran keep their answers, only those that failed are sent again, and every
//! event is answered `accepted` once. Alone in its test binary because it empties Redis' script
//! cache.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use larder_e2e::{TestApp, restaurant_event};
use serde_json::Value;

#[tokio::test]
async fn batches_racing_the_scripts_reload_answer_each_event_accepted_once() {
    let app = TestApp::spawn().await;
    let url = app.url("/v1/events/restaurant");
    // Eight batches of 1,000 events (five script calls each) at once. Resending a whole batch
    // after the load answered one round in four with 200 events `duplicate` (measured with
    // `larder replay` on a fresh Redis); six rounds make that all but certain to show.
    for round in 0..6 {
        app.flush_scripts().await;
        let mut posts = tokio::task::JoinSet::new();
        for batch in 0..8 {
            let events: Vec<Value> = (0..1_000)
                .map(|i| restaurant_event(&format!("r{round}-{batch}-{i}"), 10.0))
                .collect();
            let url = url.clone();
            posts.spawn(async move {
                let response = reqwest::Client::new()
                    .post(url)
                    .json(&events)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.unwrap()
            });
        }
        while let Some(answer) = posts.join_next().await {
            let answer = answer.unwrap();
            assert_eq!(
                (&answer["accepted"], &answer["duplicate"]),
                (&Value::from(1_000), &Value::from(0)),
                "round {round}"
            );
        }
    }
    app.cleanup().await;
}
