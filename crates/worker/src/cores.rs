//! Work spread over the machine's cores on plain threads.

use std::{
    num::NonZero,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
};

/// `work` of each item on one thread per core, each taking the next item as it finishes one;
/// `take` gets each result, with its item's index, on the calling thread as it comes. The first
/// failure, of `work` or of `take`, ends the whole: items not yet begun are left. Plain threads,
/// not rayon's pool: polars runs its calls on a pool of its own, and a rayon worker waiting for
/// another pool takes up more items meanwhile, each deeper on its stack.
pub(crate) fn on_cores<I: Sync, T: Send, E: Send>(
    items: &[I],
    work: impl Fn(&I) -> Result<T, E> + Sync,
    mut take: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
    std::thread::scope(|scope| {
        let (sender, results) = mpsc::channel();
        for _ in 0..cores.min(items.len()) {
            let (sender, next, work) = (sender.clone(), &next, &work);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    // The receiver is gone once the whole has failed: nothing more to do.
                    if sender.send((i, work(item))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        for (i, result) in results {
            take(i, result?)?;
        }
        Ok(())
    })
}

/// `work` of each item, in the items' order, on one thread per core (see [`on_cores`]).
pub(crate) fn map_on_cores<I: Sync, T: Send, E: Send>(
    items: &[I],
    work: impl Fn(&I) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let mut done: Vec<Option<T>> = items.iter().map(|_| None).collect();
    on_cores(items, work, |i, value| {
        done[i] = Some(value);
        Ok(())
    })?;
    Ok(done.into_iter().flatten().collect())
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

    #[test]
    fn each_result_is_taken_once_with_its_index_and_a_failed_take_ends_the_whole() {
        let items: Vec<u64> = (0..1000).collect();
        let mut taken = vec![0; items.len()];
        on_cores(
            &items,
            |i| Ok::<_, ()>(i + 1),
            |i, value| {
                taken[i] += value;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(taken, items.iter().map(|i| i + 1).collect::<Vec<_>>());
        let mut count = 0;
        let failed = on_cores(
            &items,
            |i| Ok(*i),
            |_, _| {
                count += 1;
                if count == 10 { Err("enough") } else { Ok(()) }
            },
        );
        assert_eq!(failed, Err("enough"));
        assert_eq!(count, 10, "nothing is taken after a failure");
    }
}
