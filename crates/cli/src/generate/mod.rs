//! `larder generate`: iFood-shaped data at any scale, deterministic for a seed. Writes
//! `order.json.gz` and `status.json.gz` (NDJSON) and `restaurant.csv.gz`, `consumer.csv.gz`
//! (CSV with a header) with the original schemas, each sorted by event time.
//!
//! Key decision: every record draws from its own random stream (`Rng::for_item(seed, kind, i)`),
//! so chunks are made and compressed on all cores in parallel and still come out identical.

mod records;
mod rng;
mod vocabulary;

use std::{
    collections::BTreeMap,
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use flate2::{Compression, write::GzEncoder};

pub use records::Scale;
use records::{Statuses, consumer_line, order_line, restaurant_line, status_line};

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub orders: u64,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    pub orders: u64,
    /// Distinct status events; `status.json.gz` holds `status_duplicates` more rows.
    pub statuses: u64,
    pub status_duplicates: u64,
    pub restaurants: u64,
    pub consumers: u64,
    pub elapsed: Duration,
}

/// The original volume: ≈3.6 M orders from 2018-12 to 2019-01.
pub const DEFAULT_ORDERS: u64 = 3_600_000;

const CHUNK: usize = 20_000;

/// Writes the four files into `options.out`.
///
/// # Errors
/// When the directory or a file cannot be written.
pub fn run(options: &GenerateOptions) -> anyhow::Result<GenerateSummary> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let scale = Scale::new(options.orders, options.seed);

    let restaurants = scale.restaurants as usize;
    write_gz(
        &options.out.join("restaurant.csv.gz"),
        records::RESTAURANT_HEADER,
        restaurants.div_ceil(CHUNK),
        |chunk, out| {
            for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(restaurants) {
                restaurant_line(&scale, i as u64, out);
            }
        },
    )?;
    let consumers = scale.consumers as usize;
    write_gz(
        &options.out.join("consumer.csv.gz"),
        records::CONSUMER_HEADER,
        consumers.div_ceil(CHUNK),
        |chunk, out| {
            for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(consumers) {
                consumer_line(&scale, i as u64, out);
            }
        },
    )?;
    let times = scale.order_times();
    write_gz(
        &options.out.join("order.json.gz"),
        "",
        times.len().div_ceil(CHUNK),
        |chunk, out| {
            let first = chunk * CHUNK;
            for (i, at) in times.iter().enumerate().skip(first).take(CHUNK) {
                order_line(&scale, i as u64, *at, out);
            }
        },
    )?;
    let statuses = Statuses::new(&scale, &times);
    write_gz(
        &options.out.join("status.json.gz"),
        "",
        statuses.distinct().div_ceil(CHUNK),
        |chunk, out| {
            for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(statuses.distinct()) {
                status_line(&scale, &statuses, i, out);
            }
        },
    )?;
    Ok(GenerateSummary {
        orders: times.len() as u64,
        statuses: statuses.distinct() as u64,
        status_duplicates: statuses.duplicates() as u64,
        restaurants: scale.restaurants,
        consumers: scale.consumers,
        elapsed: started.elapsed(),
    })
}

/// Makes `chunks` chunks of text on every core, gzips each as its own gzip member, and writes
/// them in order (a multi-member gzip file is a valid gzip file).
fn write_gz(
    path: &Path,
    header: &str,
    chunks: usize,
    make: impl Fn(usize, &mut String) + Sync,
) -> anyhow::Result<()> {
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    if !header.is_empty() {
        file.write_all(&gzip(header.as_bytes())?)?;
    }
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let next = AtomicUsize::new(0);
    let (done, compressed) = mpsc::sync_channel::<(usize, anyhow::Result<Vec<u8>>)>(workers * 2);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let (done, next, make) = (done.clone(), &next, &make);
            scope.spawn(move || {
                loop {
                    let chunk = next.fetch_add(1, Ordering::Relaxed);
                    if chunk >= chunks {
                        break;
                    }
                    let mut text = String::with_capacity(CHUNK * 512);
                    make(chunk, &mut text);
                    if done.send((chunk, gzip(text.as_bytes()))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        let mut pending = BTreeMap::new();
        let mut written = 0;
        for (chunk, bytes) in compressed {
            pending.insert(chunk, bytes?);
            while let Some(bytes) = pending.remove(&written) {
                file.write_all(&bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                written += 1;
            }
        }
        Ok(())
    })?;
    file.sync_all()?;
    Ok(())
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 5), Compression::fast());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}
