//! Counting what happened, showing it live (a progress bar per source on a terminal, periodic
//! log lines otherwise) and the final report.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use larder_domain::Source;

use super::{input::InputFile, sender::Outcome};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Bars on a terminal, log lines otherwise.
    Auto,
    Bars,
    Log,
    Quiet,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// Events read from the inputs (and batched for sending) in this run.
    pub read: u64,
    /// Events skipped because a resumed checkpoint says they were delivered.
    pub skipped: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub undeliverable: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub sources: BTreeMap<Source, SourceReport>,
    /// Rejection reason → (count, a few examples `file:line message`).
    pub rejections: BTreeMap<String, (u64, Vec<String>)>,
    /// Why batches could not be delivered, with counts.
    pub failures: BTreeMap<String, u64>,
    /// Duplicates answered to batches sent again after a failed attempt (a timeout, a 5xx such as
    /// a full backlog's, a lost connection): most are events that attempt stored before it failed
    /// (the rest duplicate rows of the inputs).
    pub duplicate_on_resend: u64,
    pub elapsed: Duration,
}

const EXAMPLES: usize = 3;

impl Report {
    pub(super) fn read(&mut self, source: Source, events: u64) {
        self.sources.entry(source).or_default().read += events;
    }

    pub(super) fn skip(&mut self, source: Source, events: u64) {
        self.sources.entry(source).or_default().skipped += events;
    }

    pub(super) fn record(&mut self, source: Source, input: &str, events: u64, outcome: &Outcome) {
        let counts = self.sources.entry(source).or_default();
        match outcome {
            Outcome::Delivered {
                accepted,
                duplicate,
                rejected,
                resent,
            } => {
                counts.accepted += accepted;
                counts.duplicate += duplicate;
                if *resent {
                    self.duplicate_on_resend += duplicate;
                }
                counts.rejected += rejected.len() as u64;
                for rejection in rejected {
                    let (count, examples) = self
                        .rejections
                        .entry(format!("{source} {}", rejection.reason))
                        .or_default();
                    *count += 1;
                    if examples.len() < EXAMPLES {
                        examples.push(format!("{input}:{} {}", rejection.line, rejection.message));
                    }
                }
            }
            Outcome::Undeliverable { reason } => {
                counts.undeliverable += events;
                *self.failures.entry(reason.clone()).or_default() += events;
            }
        }
    }

    pub fn total(&self) -> SourceReport {
        self.sources
            .values()
            .fold(SourceReport::default(), |a, b| SourceReport {
                read: a.read + b.read,
                skipped: a.skipped + b.skipped,
                accepted: a.accepted + b.accepted,
                duplicate: a.duplicate + b.duplicate,
                rejected: a.rejected + b.rejected,
                undeliverable: a.undeliverable + b.undeliverable,
            })
    }

    /// Every event read was delivered and none was rejected.
    pub fn success(&self) -> bool {
        let total = self.total();
        total.rejected == 0
            && total.undeliverable == 0
            && total.accepted + total.duplicate == total.read
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "source", "read", "accepted", "duplicate", "rejected", "skipped", "undelivered"
        );
        let rows = self
            .sources
            .iter()
            .map(|(s, r)| (s.as_str(), *r))
            .chain([("total", self.total())]);
        for (name, r) in rows {
            let _ = writeln!(
                out,
                "{name:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
                r.read, r.accepted, r.duplicate, r.rejected, r.skipped, r.undeliverable
            );
        }
        for (reason, (count, examples)) in &self.rejections {
            let _ = writeln!(out, "rejected {count} × {reason}");
            for example in examples {
                let _ = writeln!(out, "    e.g. {example}");
            }
        }
        for (reason, count) in &self.failures {
            let _ = writeln!(out, "undeliverable {count} events: {reason}");
        }
        if self.duplicate_on_resend > 0 {
            let _ = writeln!(
                out,
                "duplicate {} answered to batches sent again after a failed attempt (a timeout, \
                 a 5xx, a lost connection; most stored by that attempt)",
                self.duplicate_on_resend
            );
        }
        let seconds = self.elapsed.as_secs_f64();
        let delivered = self.total().accepted + self.total().duplicate + self.total().rejected;
        let _ = writeln!(
            out,
            "elapsed {seconds:.1} s, {:.0} events/s",
            delivered as f64 / seconds.max(1e-9)
        );
        out
    }
}

/// The live display.
pub(super) enum Live {
    Bars {
        multi: MultiProgress,
        bars: BTreeMap<Source, ProgressBar>,
    },
    Log {
        last: std::sync::Mutex<Instant>,
    },
    Quiet,
}

impl Live {
    pub(super) fn start(inputs: &[InputFile], display: Display) -> Self {
        let bars = match display {
            Display::Auto => std::io::stderr().is_terminal(),
            Display::Bars => true,
            Display::Log => false,
            Display::Quiet => return Live::Quiet,
        };
        if !bars {
            return Live::Log {
                last: std::sync::Mutex::new(Instant::now()),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let style =
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {percent:>3}% {msg} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let mut by_source: BTreeMap<Source, ProgressBar> = BTreeMap::new();
        for input in inputs {
            let bar = by_source.entry(input.source).or_insert_with(|| {
                let bar = multi.add(
                    ProgressBar::new(0)
                        .with_style(style.clone())
                        .with_prefix(input.source.as_str()),
                );
                bar.set_message("waiting");
                bar
            });
            bar.inc_length(input.size.unwrap_or(0));
        }
        Live::Bars {
            multi,
            bars: by_source,
        }
    }

    pub(super) fn update(
        &self,
        inputs: &[InputFile],
        bytes: &[u64],
        report: &Report,
        elapsed: Duration,
    ) {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        match self {
            Live::Bars { bars, .. } => {
                for (source, bar) in bars {
                    let read: u64 = inputs
                        .iter()
                        .zip(bytes)
                        .filter(|(i, _)| i.source == *source)
                        .map(|(_, b)| *b)
                        .sum();
                    bar.set_position(read.min(bar.length().unwrap_or(read)));
                    let counts = report.sources.get(source).copied().unwrap_or_default();
                    let sent = counts.accepted + counts.duplicate + counts.rejected;
                    bar.set_message(format!("{sent} events, {:.0}/s", sent as f64 / seconds));
                }
            }
            Live::Log { last } => {
                let Ok(mut last) = last.lock() else { return };
                if last.elapsed() < Duration::from_secs(5) {
                    return;
                }
                *last = Instant::now();
                let mut line = format!("replay {:.0}s:", elapsed.as_secs_f64());
                for (source, counts) in &report.sources {
                    let sent = counts.accepted + counts.duplicate + counts.rejected;
                    let _ = write!(line, " {source} {sent}/{} sent", counts.read);
                }
                let total = report.total();
                let _ = write!(
                    line,
                    "; {:.0} events/s",
                    (total.accepted + total.duplicate + total.rejected) as f64 / seconds
                );
                eprintln!("{line}");
            }
            Live::Quiet => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Live::Bars { multi, bars } = self {
            for bar in bars.values() {
                bar.finish();
            }
            let _ = multi.clear();
        }
    }
}
