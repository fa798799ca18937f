//! A queue of IP packets for the TUN side that allocates nothing once warm:
//! packets are appended to one byte arena with their spans beside, both
//! reused after the queue has been drained.

/// Packets waiting for the TUN device, in order.
#[derive(Debug, Default)]
pub struct PacketQueue {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    next: usize,
}

impl PacketQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a copy of `packet`.
    pub fn push(&mut self, packet: &[u8]) {
        if self.next == self.spans.len() && self.next > 0 {
            self.clear();
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(packet);
        self.spans.push((at, packet.len()));
    }

    /// The next packet, borrowed until the next call.
    pub fn pop(&mut self) -> Option<&[u8]> {
        let (at, len) = *self.spans.get(self.next)?;
        self.next += 1;
        Some(&self.bytes[at..at + len])
    }

    /// Packets not yet taken.
    pub fn len(&self) -> usize {
        self.spans.len() - self.next
    }

    /// No packet waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every packet (keeps the memory).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_reuse() {
        let mut q = PacketQueue::new();
        assert!(q.pop().is_none());
        q.push(b"one");
        q.push(b"three");
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(&b"one"[..]));
        q.push(b"four");
        assert_eq!(q.pop(), Some(&b"three"[..]));
        assert_eq!(q.pop(), Some(&b"four"[..]));
        assert!(q.pop().is_none());
        let cap = q.bytes.capacity();
        for _ in 0..1000 {
            q.push(b"again");
            assert_eq!(q.pop(), Some(&b"again"[..]));
        }
        assert_eq!(q.bytes.capacity(), cap, "drained queues reuse their memory");
    }
}
