//! In-flight slots: the futures of the units running, polled in stream order.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// A pinned place for one unit's future, reused by the next unit.
type Slot<F> = Pin<Box<Option<F>>>;

/// The units in flight, each in a reusable pinned slot: once the slots for the
/// concurrency limit exist, starting a unit allocates nothing.
///
/// Running units are polled in stream order: a call that never waits runs whole when it is
/// polled, so the order of polls is the order of work, and a deadline must never find later
/// work done while earlier work times out.
pub(super) struct Slots<F> {
    /// The running units' slots first, by unit, then the free slots.
    slots: Vec<(u32, Slot<F>)>,
    running: usize,
}

impl<F: Future> Slots<F> {
    pub(super) fn new() -> Self {
        Slots { slots: Vec::new(), running: 0 }
    }

    pub(super) fn running(&self) -> usize {
        self.running
    }

    pub(super) fn place(&mut self, unit: u32, future: F) {
        // Free slots are at the end.
        let slot = if self.slots.len() > self.running {
            let (_, mut slot) = self.slots.pop().expect("a free slot");
            slot.set(Some(future));
            slot
        } else {
            Box::pin(Some(future))
        };
        let at = self.slots[..self.running].partition_point(|(running, _)| *running < unit);
        self.slots.insert(at, (unit, slot));
        self.running += 1;
    }

    /// Polls the running units in stream order; the first that finishes frees its slot.
    pub(super) fn poll_next(&mut self, task: &mut TaskContext<'_>) -> Poll<(u32, F::Output)> {
        for index in 0..self.running {
            let (unit, slot) = &mut self.slots[index];
            let future = slot.as_mut().as_pin_mut().expect("a running slot holds its future");
            if let Poll::Ready(output) = future.poll(task) {
                let unit = *unit;
                self.free(index);
                return Poll::Ready((unit, output));
            }
        }
        Poll::Pending
    }

    /// Drops the future in a running slot and moves the slot among the free ones.
    fn free(&mut self, index: usize) {
        let mut entry = self.slots.remove(index);
        entry.1.set(None);
        self.slots.push(entry);
        self.running -= 1;
    }

    /// Drops every running unit's future, returning the units.
    pub(super) fn drop_running(&mut self) -> Vec<u32> {
        let dropped = self.slots[..self.running].iter().map(|(unit, _)| *unit).collect();
        for (_, slot) in &mut self.slots[..self.running] {
            slot.set(None);
        }
        self.running = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Call = Pin<Box<dyn Future<Output = &'static str>>>;

    fn ready(label: &'static str) -> Call {
        Box::pin(std::future::ready(label))
    }

    #[test]
    fn slots_poll_in_stream_order_and_reuse_freed_slots() {
        let mut task = TaskContext::from_waker(std::task::Waker::noop());
        let mut slots = Slots::new();
        slots.place(5, ready("five"));
        slots.place(2, ready("two"));
        slots.place(7, Box::pin(std::future::pending()));
        assert_eq!(slots.running(), 3);
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((2, "two")), "placed later, earlier");
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((5, "five")));
        assert_eq!(slots.poll_next(&mut task), Poll::Pending);
        slots.place(3, ready("three"));
        assert_eq!(slots.slots.len(), 3, "a freed slot is reused");
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((3, "three")));
        assert_eq!(slots.drop_running(), [7]);
        assert_eq!(slots.running(), 0);
        slots.place(1, ready("one"));
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((1, "one")));
        assert_eq!((slots.running(), slots.slots.len()), (0, 3));
    }
}
