//! SIM storage: the numbered message slots of the SIM (`"SM"`) and of the status report memory
//! (`"SR"`), with the status of each entry, and the last TP-MR the SIM handed out.
//!
//! This is plain data with the rules of TS 27.005 §3.1 (message status values) and §3.5.4
//! (`AT+CMGD` delete flags). It survives an unplug, as a real SIM does; it does not speak AT.

/// Where an entry lives: the SIM's message slots or the status report memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Memory {
    /// `"SM"`: SMS on the SIM.
    Sim,
    /// `"SR"`: status reports.
    Reports,
}

impl Memory {
    /// The name AT commands use (TS 27.005 §3.1 `<mem1>`).
    pub fn name(self) -> &'static str {
        match self {
            Memory::Sim => "SM",
            Memory::Reports => "SR",
        }
    }

    /// Parses a memory name as given to `AT+CPMS` (quotes already removed).
    pub fn parse(name: &str) -> Option<Memory> {
        match name.to_ascii_uppercase().as_str() {
            "SM" => Some(Memory::Sim),
            "SR" => Some(Memory::Reports),
            _ => None,
        }
    }
}

/// Message status in PDU mode, TS 27.005 §3.1 `<stat>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: received, not yet read.
    ReceivedUnread = 0,
    /// 1: received and read.
    ReceivedRead = 1,
    /// 2: stored, not sent.
    StoredUnsent = 2,
    /// 3: stored and sent.
    StoredSent = 3,
}

impl Status {
    /// The PDU-mode number of this status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// One stored message or status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The AT index of the slot.
    pub index: u32,
    /// Its status.
    pub status: Status,
    /// The PDU with the SMSC field in front, as `AT+CMGR` gives it.
    pub pdu: Vec<u8>,
}

/// One memory: numbered slots from `first_index`, at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct Slots {
    first_index: u32,
    capacity: usize,
    entries: Vec<Entry>,
}

impl Slots {
    /// An empty memory.
    pub fn new(first_index: u32, capacity: usize) -> Slots {
        Slots {
            first_index,
            capacity,
            entries: Vec::new(),
        }
    }

    /// How many slots are used.
    pub fn used(&self) -> usize {
        self.entries.len()
    }

    /// How many slots there are.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The first and last valid index.
    pub fn index_range(&self) -> (u32, u32) {
        let last = self.first_index + (self.capacity.max(1) as u32) - 1;
        (self.first_index, last)
    }

    /// `true` when `index` names a slot of this memory (used or not).
    pub fn is_valid_index(&self, index: u32) -> bool {
        let (first, last) = self.index_range();
        self.capacity > 0 && (first..=last).contains(&index)
    }

    /// Stores `pdu` in the lowest free slot and returns its index; `None` when full.
    pub fn store(&mut self, status: Status, pdu: Vec<u8>) -> Option<u32> {
        if self.entries.len() >= self.capacity {
            return None;
        }
        let index = (self.first_index..)
            .find(|i| self.entries.iter().all(|e| e.index != *i))
            .expect("a memory below capacity has a free index");
        let at = self.entries.partition_point(|e| e.index < index);
        self.entries.insert(at, Entry { index, status, pdu });
        Some(index)
    }

    /// The entry at `index`, if the slot is used.
    pub fn get(&self, index: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.index == index)
    }

    /// Reads the entry at `index`: a received unread entry becomes read (TS 27.005 §3.4.3).
    pub fn read(&mut self, index: u32) -> Option<Entry> {
        let entry = self.entries.iter_mut().find(|e| e.index == index)?;
        let before = entry.clone();
        if entry.status == Status::ReceivedUnread {
            entry.status = Status::ReceivedRead;
        }
        Some(before)
    }

    /// Lists the entries whose status is `filter` (`None` = all, `AT+CMGL=4`), in index order;
    /// the listed unread ones become read.
    pub fn list(&mut self, filter: Option<Status>) -> Vec<Entry> {
        let mut listed = Vec::new();
        for entry in &mut self.entries {
            if filter.is_none_or(|status| entry.status == status) {
                listed.push(entry.clone());
                if entry.status == Status::ReceivedUnread {
                    entry.status = Status::ReceivedRead;
                }
            }
        }
        listed
    }

    /// Deletes as `AT+CMGD=<index>,<flag>` does (TS 27.005 §3.5.4): flag 0 = that index;
    /// 1 = all read; 2 = read and sent; 3 = read, sent and unsent; 4 = all. Returns how many
    /// entries went.
    pub fn delete(&mut self, index: u32, flag: u8) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| match flag {
            0 => e.index != index,
            1 => e.status != Status::ReceivedRead,
            2 => !matches!(e.status, Status::ReceivedRead | Status::StoredSent),
            3 => e.status == Status::ReceivedUnread,
            _ => false,
        });
        before - self.entries.len()
    }

    /// Every entry, in index order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// What the SIM holds: its SMS slots, the status report memory and the last TP-MR used
/// (kept on the SIM in EF_SMSS, TS 31.102 §4.2.9, so it survives a modem restart).
#[derive(Debug, Clone)]
pub struct SimStorage {
    /// `"SM"`.
    pub sms: Slots,
    /// `"SR"`.
    pub reports: Slots,
    last_message_reference: u8,
}

impl SimStorage {
    /// An empty SIM with `capacity` SMS slots and as many status report slots, numbered from
    /// `first_index`.
    pub fn new(first_index: u32, capacity: usize) -> SimStorage {
        SimStorage {
            sms: Slots::new(first_index, capacity),
            reports: Slots::new(first_index, capacity),
            // The first submit gets TP-MR 0.
            last_message_reference: u8::MAX,
        }
    }

    /// The memory named `memory`.
    pub fn memory(&mut self, memory: Memory) -> &mut Slots {
        match memory {
            Memory::Sim => &mut self.sms,
            Memory::Reports => &mut self.reports,
        }
    }

    /// The memory named `memory`, read-only.
    pub fn memory_ref(&self, memory: Memory) -> &Slots {
        match memory {
            Memory::Sim => &self.sms,
            Memory::Reports => &self.reports,
        }
    }

    /// The next TP-MR: one more than the last, modulo 256 (TS 23.040 §9.2.3.6).
    pub fn next_message_reference(&mut self) -> u8 {
        self.last_message_reference = self.last_message_reference.wrapping_add(1);
        self.last_message_reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_in_the_lowest_free_slot_up_to_capacity() {
        let mut slots = Slots::new(1, 3);
        assert_eq!(slots.store(Status::ReceivedUnread, vec![1]), Some(1));
        assert_eq!(slots.store(Status::ReceivedUnread, vec![2]), Some(2));
        assert_eq!(slots.store(Status::ReceivedUnread, vec![3]), Some(3));
        assert_eq!(slots.store(Status::ReceivedUnread, vec![4]), None);
        assert_eq!(slots.delete(2, 0), 1);
        assert_eq!(slots.store(Status::ReceivedUnread, vec![5]), Some(2));
        let indices: Vec<u32> = slots.entries().iter().map(|e| e.index).collect();
        assert_eq!(indices, vec![1, 2, 3]);
        assert_eq!(slots.used(), 3);
    }

    #[test]
    fn zero_based_memories_work_too() {
        let mut slots = Slots::new(0, 2);
        assert_eq!(slots.store(Status::ReceivedUnread, vec![1]), Some(0));
        assert!(slots.is_valid_index(1));
        assert!(!slots.is_valid_index(2));
        assert_eq!(slots.index_range(), (0, 1));
    }

    #[test]
    fn reading_marks_unread_as_read() {
        let mut slots = Slots::new(1, 5);
        let index = slots.store(Status::ReceivedUnread, vec![9]).expect("room");
        let first = slots.read(index).expect("stored");
        assert_eq!(first.status, Status::ReceivedUnread);
        let second = slots.read(index).expect("stored");
        assert_eq!(second.status, Status::ReceivedRead);
        assert!(slots.read(index + 1).is_none());
    }

    #[test]
    fn listing_filters_and_marks_read() {
        let mut slots = Slots::new(1, 5);
        slots.store(Status::ReceivedUnread, vec![1]);
        slots.store(Status::StoredUnsent, vec![2]);
        assert_eq!(slots.list(Some(Status::ReceivedUnread)).len(), 1);
        assert_eq!(slots.list(Some(Status::ReceivedUnread)).len(), 0);
        assert_eq!(slots.list(Some(Status::ReceivedRead)).len(), 1);
        assert_eq!(slots.list(None).len(), 2);
    }

    #[test]
    fn delete_flags_follow_ts_27_005() {
        let fill = || {
            let mut slots = Slots::new(1, 10);
            slots.store(Status::ReceivedUnread, vec![0]);
            slots.store(Status::ReceivedRead, vec![1]);
            slots.store(Status::StoredUnsent, vec![2]);
            slots.store(Status::StoredSent, vec![3]);
            slots
        };
        let remaining = |flag: u8| {
            let mut slots = fill();
            slots.delete(1, flag);
            slots.entries().iter().map(|e| e.status).collect::<Vec<_>>()
        };
        use Status::*;
        assert_eq!(remaining(0), vec![ReceivedRead, StoredUnsent, StoredSent]);
        assert_eq!(remaining(1), vec![ReceivedUnread, StoredUnsent, StoredSent]);
        assert_eq!(remaining(2), vec![ReceivedUnread, StoredUnsent]);
        assert_eq!(remaining(3), vec![ReceivedUnread]);
        assert_eq!(remaining(4), Vec::<Status>::new());
    }

    #[test]
    fn message_reference_wraps_modulo_256() {
        let mut sim = SimStorage::new(1, 1);
        assert_eq!(sim.next_message_reference(), 0);
        for _ in 0..254 {
            sim.next_message_reference();
        }
        assert_eq!(sim.next_message_reference(), 255);
        assert_eq!(sim.next_message_reference(), 0);
    }

    #[test]
    fn memory_names() {
        assert_eq!(Memory::parse("sm"), Some(Memory::Sim));
        assert_eq!(Memory::parse("SR"), Some(Memory::Reports));
        assert_eq!(Memory::parse("ME"), None);
        assert_eq!(Memory::Reports.name(), "SR");
    }
}
