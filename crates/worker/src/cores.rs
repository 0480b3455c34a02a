//! Work spread over the machine's cores on plain threads.

use std::{
    num::NonZero,
    sync::atomic::{AtomicUsize, Ordering},
};

/// `work` of each item, in the items' order, on one thread per core, each taking the next item
/// as it finishes one; when items fail, the error of one of them. Plain threads, not rayon's pool: polars
/// runs its calls on a pool of its own, and a rayon worker waiting for another pool takes up more
/// items meanwhile, each deeper on its stack.
pub(crate) fn map_on_cores<I: Sync, T: Send, E: Send>(
    items: &[I],
    work: impl Fn(&I) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let next = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return Ok(done);
                        };
                        done.push((i, work(item)?));
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Result<Vec<Vec<_>>, E>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, value)| value).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_items_order_and_a_failed_item_fails_the_whole() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = map_on_cores(&items, |i| Ok::<_, String>(i * i)).unwrap();
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        let failed = map_on_cores(&items, |i| if *i == 700 { Err(*i) } else { Ok(*i) });
        assert_eq!(failed, Err(700));
        assert!(
            map_on_cores(&[] as &[u64], |i| Ok::<_, ()>(*i))
                .unwrap()
                .is_empty()
        );
    }
}
