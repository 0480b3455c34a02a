//! Resumable replays: per input, how many leading events are known delivered. Batches finish out
//! of order, so only the contiguous prefix counts; anything after it is sent again on resume,
//! which the server's idempotency turns into duplicates.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use anyhow::Context;

#[derive(Debug, Default)]
pub struct Progress {
    /// Per input: events delivered in a contiguous prefix.
    done: HashMap<String, u64>,
    /// Per input: finished batches beyond the prefix, by first event → count.
    ahead: HashMap<String, BTreeMap<u64, u64>>,
}

impl Progress {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading checkpoint {}", path.display()))?;
        let done: HashMap<String, u64> = serde_json::from_str(&text)
            .with_context(|| format!("parsing checkpoint {}", path.display()))?;
        Ok(Self {
            done,
            ahead: HashMap::new(),
        })
    }

    /// Events of `input` to skip on resume.
    pub fn done(&self, input: &str) -> u64 {
        self.done.get(input).copied().unwrap_or(0)
    }

    /// Records that events `[first, first + count)` of `input` were delivered.
    pub fn finish(&mut self, input: &str, first: u64, count: u64) {
        let ahead = self.ahead.entry(input.to_owned()).or_default();
        ahead.insert(first, count);
        let done = self.done.entry(input.to_owned()).or_insert(0);
        while let Some(count) = ahead.remove(done) {
            *done += count;
        }
    }

    /// Writes atomically (temporary file, then rename), so a crash leaves the old or the new one.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(&self.done)?)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contiguous_prefix_counts_as_done() {
        let mut progress = Progress::default();
        progress.finish("order.json", 100, 100);
        assert_eq!(progress.done("order.json"), 0);
        progress.finish("order.json", 0, 100);
        assert_eq!(progress.done("order.json"), 200);
        progress.finish("order.json", 300, 50);
        assert_eq!(progress.done("order.json"), 200);
    }

    #[test]
    fn a_saved_checkpoint_loads_back() {
        let path =
            std::env::temp_dir().join(format!("larder-checkpoint-{}.json", std::process::id()));
        let mut progress = Progress::default();
        progress.finish("a.csv", 0, 7);
        progress.save(&path).unwrap();
        assert_eq!(Progress::load(&path).unwrap().done("a.csv"), 7);
        std::fs::remove_file(&path).ok();
    }
}
