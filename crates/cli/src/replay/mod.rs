//! `larder replay`: streams the four sources from files or S3 into `POST /v1/events/{source}`
//! in batches, with bounded concurrency, an optional rate limit, retries, a progress display,
//! a resumable checkpoint and a final report.
//!
//! Key decision: a blocking reader thread turns files into batches (bounded channel, so memory
//! stays flat) and async tasks send them; delivery is at-least-once and the server's idempotency
//! makes it exactly-once, so retries and resumes never need to know what the server stored.

mod checkpoint;
pub mod input;
mod report;
mod sender;

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use larder_domain::Source;
use larder_s3::S3Settings;
use tokio::{sync::Semaphore, task::JoinSet};

pub use checkpoint::Progress;
pub use input::{Format, InputFile, classify};
pub use report::{Display, Report, SourceReport};

use input::Line;
use sender::{Outcome, Sender};

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub url: String,
    pub token: Option<String>,
    pub batch_size: usize,
    pub concurrency: usize,
    /// Events per second, all sources together.
    pub rate: Option<f64>,
    /// Merge the sources by event time instead of sending dimensions first.
    pub by_event_time: bool,
    pub checkpoint: Option<PathBuf>,
    pub resume: bool,
    pub max_attempts: u32,
    pub s3: S3Settings,
    pub display: Display,
}

struct Batch {
    input: usize,
    source: Source,
    first: u64,
    lines: Vec<Line>,
}

/// What the reader and the senders share.
struct Shared {
    inputs: Vec<InputFile>,
    bytes_read: Vec<Arc<AtomicU64>>,
    report: Mutex<Report>,
    progress: Mutex<Progress>,
}

/// Dimensions before the facts that refer to them.
fn rank(source: Source) -> u8 {
    match source {
        Source::Restaurant => 0,
        Source::Consumer => 1,
        Source::Order => 2,
        Source::Status => 3,
    }
}

/// Replays `paths`; returns the report (also when events were rejected or undeliverable).
///
/// # Errors
/// When inputs cannot be found or read, or the checkpoint cannot be written.
pub async fn run(options: ReplayOptions, paths: &[String]) -> anyhow::Result<Report> {
    let started = Instant::now();
    let s3 = if paths.iter().any(|p| p.starts_with("s3://")) {
        Some(larder_s3::s3_client(&options.s3).await)
    } else {
        None
    };
    let mut inputs = input::discover(paths, s3.as_ref()).await?;
    inputs.sort_by_key(|i| rank(i.source));
    let progress = match (&options.checkpoint, options.resume) {
        (Some(path), true) if path.exists() => Progress::load(path)?,
        _ => Progress::default(),
    };
    let shared = Arc::new(Shared {
        bytes_read: inputs.iter().map(|_| Arc::new(AtomicU64::new(0))).collect(),
        report: Mutex::new(Report::default()),
        progress: Mutex::new(progress),
        inputs,
    });

    let (batches, mut receiver) =
        tokio::sync::mpsc::channel::<Batch>(options.concurrency.max(1) * 2);
    let reader = {
        let shared = shared.clone();
        let options = options.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || read(&shared, &options, s3.as_ref(), &handle, &batches))
    };
    let display = report::Live::start(&shared.inputs, options.display);
    let sender = Arc::new(Sender::new(
        &options.url,
        options.token.clone(),
        options.max_attempts,
        options.rate,
    ));
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut sending = JoinSet::new();
    let mut last_tick = Instant::now();
    loop {
        let batch = tokio::select! {
            batch = receiver.recv() => batch,
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                tick(&shared, &display, &options, started)?;
                continue;
            }
        };
        let Some(batch) = batch else { break };
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .context("semaphore closed")?;
        let (sender, task_shared) = (sender.clone(), shared.clone());
        sending.spawn(async move {
            let outcome = sender.send(batch.source, &batch.lines).await;
            record(&task_shared, &batch, outcome);
            drop(permit);
        });
        while sending.try_join_next().is_some() {}
        if last_tick.elapsed() >= Duration::from_millis(250) {
            tick(&shared, &display, &options, started)?;
            last_tick = Instant::now();
        }
    }
    while sending.join_next().await.is_some() {}
    let read_result = reader.await.context("reader thread panicked")?;
    tick(&shared, &display, &options, started)?;
    display.finish();
    let mut report = shared
        .report
        .lock()
        .map_err(|_| anyhow::anyhow!("report lock poisoned"))?
        .clone();
    report.elapsed = started.elapsed();
    read_result?;
    Ok(report)
}

fn tick(
    shared: &Shared,
    display: &report::Live,
    options: &ReplayOptions,
    started: Instant,
) -> anyhow::Result<()> {
    if let Some(path) = &options.checkpoint {
        let progress = shared
            .progress
            .lock()
            .map_err(|_| anyhow::anyhow!("progress lock poisoned"))?;
        progress.save(path)?;
    }
    let report = shared
        .report
        .lock()
        .map_err(|_| anyhow::anyhow!("report lock poisoned"))?;
    let bytes: Vec<u64> = shared
        .bytes_read
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    display.update(&shared.inputs, &bytes, &report, started.elapsed());
    Ok(())
}

fn record(shared: &Shared, batch: &Batch, outcome: Outcome) {
    let name = &shared.inputs[batch.input].name;
    if let Ok(mut report) = shared.report.lock() {
        report.record(batch.source, name, batch.lines.len() as u64, &outcome);
    }
    // Undeliverable batches do not advance the checkpoint: a resume sends them again.
    if matches!(outcome, Outcome::Delivered { .. })
        && let Ok(mut progress) = shared.progress.lock()
    {
        progress.finish(name, batch.first, batch.lines.len() as u64);
    }
}

/// The reader thread: files → batches, in source order or merged by event time.
fn read(
    shared: &Shared,
    options: &ReplayOptions,
    s3: Option<&larder_s3::S3Client>,
    runtime: &tokio::runtime::Handle,
    batches: &tokio::sync::mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let mut streams = Vec::new();
    for (index, input) in shared.inputs.iter().enumerate() {
        let skip = shared
            .progress
            .lock()
            .map(|p| p.done(&input.name))
            .unwrap_or(0);
        if let Ok(mut report) = shared.report.lock() {
            report.skip(input.source, skip);
        }
        let open = || -> anyhow::Result<_> {
            let reader = input::open(input, s3, runtime, shared.bytes_read[index].clone())?;
            Ok(input::lines(input, reader).skip(skip as usize).peekable())
        };
        if options.by_event_time {
            streams.push((index, skip, open()?));
        } else {
            let mut buffer = Buffer::new(index, input.source, skip, options.batch_size);
            for line in open()? {
                buffer.push(
                    line.with_context(|| format!("reading {}", input.name))?,
                    shared,
                    batches,
                )?;
            }
            buffer.flush(shared, batches)?;
        }
    }
    if !options.by_event_time {
        return Ok(());
    }
    // Merge: always take the stream whose next event is oldest.
    let mut buffers: Vec<Buffer> = streams
        .iter()
        .map(|(index, skip, _)| {
            Buffer::new(
                *index,
                shared.inputs[*index].source,
                *skip,
                options.batch_size,
            )
        })
        .collect();
    let mut heads: Vec<Option<i64>> = vec![None; streams.len()];
    loop {
        let mut best: Option<(usize, i64)> = None;
        for (slot, (index, _, stream)) in streams.iter_mut().enumerate() {
            let Some(Ok(line)) = stream.peek() else {
                continue;
            };
            let time = *heads[slot].get_or_insert_with(|| {
                input::event_time(shared.inputs[*index].source, &line.text).unwrap_or(i64::MIN)
            });
            if best.is_none_or(|(_, t)| time < t) {
                best = Some((slot, time));
            }
        }
        let Some((slot, _)) = best else { break };
        let (index, _, stream) = &mut streams[slot];
        let line = stream
            .next()
            .context("stream ended")?
            .with_context(|| format!("reading {}", shared.inputs[*index].name))?;
        heads[slot] = None;
        buffers[slot].push(line, shared, batches)?;
    }
    // A stream that failed to read surfaces its error here.
    for (index, _, stream) in &mut streams {
        if let Some(Err(e)) = stream.next() {
            return Err(e.context(format!("reading {}", shared.inputs[*index].name)));
        }
    }
    for buffer in &mut buffers {
        buffer.flush(shared, batches)?;
    }
    Ok(())
}

/// Collects one input's lines into batches.
struct Buffer {
    input: usize,
    source: Source,
    next: u64,
    size: usize,
    lines: Vec<Line>,
}

impl Buffer {
    fn new(input: usize, source: Source, first: u64, size: usize) -> Self {
        Self {
            input,
            source,
            next: first,
            size: size.max(1),
            lines: Vec::with_capacity(size.max(1)),
        }
    }

    fn push(
        &mut self,
        line: Line,
        shared: &Shared,
        batches: &tokio::sync::mpsc::Sender<Batch>,
    ) -> anyhow::Result<()> {
        self.lines.push(line);
        if self.lines.len() >= self.size {
            self.flush(shared, batches)?;
        }
        Ok(())
    }

    fn flush(
        &mut self,
        shared: &Shared,
        batches: &tokio::sync::mpsc::Sender<Batch>,
    ) -> anyhow::Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let lines = std::mem::replace(&mut self.lines, Vec::with_capacity(self.size));
        let first = self.next;
        self.next += lines.len() as u64;
        if let Ok(mut report) = shared.report.lock() {
            report.read(self.source, lines.len() as u64);
        }
        batches
            .blocking_send(Batch {
                input: self.input,
                source: self.source,
                first,
                lines,
            })
            .map_err(|_| anyhow::anyhow!("the senders stopped"))
    }
}
