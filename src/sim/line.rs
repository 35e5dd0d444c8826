//! The serial line between the simulated modem and its client: how long bytes take to cross it.
//!
//! A UART sends one start bit, eight data bits and one stop bit per byte (8N1), so a line at
//! `baud` bits per second carries `baud / 10` bytes per second in each direction. [`Pacer`] keeps
//! a virtual clock per direction and says when the last byte of a chunk has crossed the line;
//! the port's line threads sleep until then. This module does no I/O and knows nothing of AT.

use std::time::{Duration, Instant};

/// Bits on the wire per byte with 8N1 framing (start + 8 data + stop).
pub(crate) const BITS_PER_BYTE: u64 = 10;

/// The virtual clock of one direction of a serial line.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    baud: Option<u32>,
    /// When the line finishes carrying what it was given so far.
    free_at: Option<Instant>,
}

impl Pacer {
    /// A pacer for a line at `baud` bits per second; `None` = no limit.
    pub(crate) fn new(baud: Option<u32>) -> Pacer {
        Pacer {
            baud: baud.filter(|&b| b > 0),
            free_at: None,
        }
    }

    /// How long `bytes` bytes occupy the line.
    pub(crate) fn duration(&self, bytes: usize) -> Duration {
        match self.baud {
            None => Duration::ZERO,
            Some(baud) => {
                let bits = bytes as u64 * BITS_PER_BYTE;
                Duration::from_nanos(bits.saturating_mul(1_000_000_000) / u64::from(baud))
            }
        }
    }

    /// Queues `bytes` bytes on the line at `now` and returns when the last of them has crossed
    /// it. A line that was idle starts at `now`; a busy one carries them after what it holds.
    pub(crate) fn schedule(&mut self, now: Instant, bytes: usize) -> Instant {
        if self.baud.is_none() {
            return now;
        }
        let start = match self.free_at {
            Some(free) if free > now => free,
            _ => now,
        };
        let done = start + self.duration(bytes);
        self.free_at = Some(done);
        done
    }

    /// The largest slice worth writing at once: about one millisecond of line time, so a
    /// reader sees a steady trickle rather than bursts (the timer wheel ticks in milliseconds).
    pub(crate) fn slice_len(&self) -> usize {
        match self.baud {
            None => usize::MAX,
            Some(baud) => (baud as usize / BITS_PER_BYTE as usize / 1000).max(1),
        }
    }

    /// `true` when the line is unlimited.
    pub(crate) fn is_unlimited(&self) -> bool {
        self.baud.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_line_takes_no_time() {
        let mut pacer = Pacer::new(None);
        let now = Instant::now();
        assert_eq!(pacer.schedule(now, 10_000), now);
        assert_eq!(pacer.duration(10_000), Duration::ZERO);
        assert!(pacer.is_unlimited());
        assert_eq!(Pacer::new(Some(0)).duration(5), Duration::ZERO);
    }

    #[test]
    fn ten_bits_per_byte() {
        let pacer = Pacer::new(Some(115_200));
        // 11,520 bytes per second at 115200 baud with 8N1.
        assert_eq!(pacer.duration(11_520), Duration::from_secs(1));
        let pacer = Pacer::new(Some(9_600));
        assert_eq!(pacer.duration(96), Duration::from_millis(100));
        assert_eq!(pacer.slice_len(), 1);
        assert_eq!(Pacer::new(Some(115_200)).slice_len(), 11);
    }

    #[test]
    fn busy_line_queues_after_what_it_holds() {
        let mut pacer = Pacer::new(Some(9_600));
        let now = Instant::now();
        let first = pacer.schedule(now, 96);
        assert_eq!(first, now + Duration::from_millis(100));
        // Given more while still busy: carried after the first chunk.
        let second = pacer.schedule(now + Duration::from_millis(50), 96);
        assert_eq!(second, now + Duration::from_millis(200));
        // Idle again: starts when given.
        let later = now + Duration::from_secs(1);
        assert_eq!(pacer.schedule(later, 48), later + Duration::from_millis(50));
    }
}
