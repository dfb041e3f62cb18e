//! The embedded queue's state machine: its messages, which are visible and which in flight, FIFO
//! group ordering, deduplication, and when a message has run out of receives. It is synchronous
//! and reads no clock: every operation is told the time, so tests can step through it.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::{OutgoingMessage, ReceiptHandle, ReceivedMessage};

/// How long a FIFO deduplication id suppresses duplicates (SQS's fixed interval).
const DEDUP_WINDOW: Duration = Duration::from_secs(300);

/// Most deduplication ids remembered at once. SQS keeps every id for the whole window; this
/// in-memory backend forgets the oldest early instead of growing without bound on a long run.
const DEDUP_CAPACITY: usize = 10_000;

/// SQS's largest message: body plus attribute names and values.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// SQS's most message attributes per message.
const MAX_ATTRIBUTES: usize = 10;

/// A stored message. `receipt` numbers its latest receipt (0: never received).
pub(super) struct Stored {
    id: uuid::Uuid,
    body: String,
    group: Option<Arc<str>>,
    attributes: BTreeMap<String, String>,
    receive_count: u32,
    sent_at: SystemTime,
    receipt: u64,
    /// Set while the message is in flight.
    deadline: Option<Instant>,
}

impl Stored {
    /// What the message holds in memory, counted as SQS counts its size: body plus attribute
    /// names and values.
    fn size(&self) -> usize {
        message_size(&self.body, &self.attributes)
    }

    fn new(body: String, group: Option<Arc<str>>, attributes: BTreeMap<String, String>) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            body,
            group,
            attributes,
            receive_count: 0,
            sent_at: SystemTime::now(),
            receipt: 0,
            deadline: None,
        }
    }
}

/// A FIFO group: its visible messages in send order and how many of its messages are in flight.
#[derive(Default)]
struct Group {
    visible: BTreeSet<u64>,
    in_flight: usize,
}

impl Group {
    /// The group's oldest message if the group may deliver now.
    fn head(&self) -> Option<u64> {
        if self.in_flight == 0 {
            self.visible.first().copied()
        } else {
            None
        }
    }
}

/// The most an embedded queue holds, visible and in flight together: past it, sends are refused
/// as an outage would refuse them, so an unconsumed queue cannot grow without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Messages.
    pub messages: usize,
    /// Bytes of bodies and attributes.
    pub bytes: usize,
}

impl Default for Capacity {
    /// 10,000 messages or 64 MiB: minutes of webhooks at Benchling's rates, a few tens of MiB.
    fn default() -> Self {
        Self {
            messages: 10_000,
            bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a message was not stored.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// SQS would refuse it too; sending it again will not help.
    Invalid(String),
    /// The queue is at its capacity; it may have room later.
    Full(String),
}

/// A visibility change was refused: the receipt is not the latest of a message in flight.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NotInFlight;

/// One queue's messages. They are keyed by a sequence number, so a redelivered message goes back
/// to its place.
pub(super) struct State {
    /// FIFO: group ordering and deduplication apply, and every message needs a group id.
    fifo: bool,
    /// Receives after which a message leaves for the dead-letter queue; `None` keeps it forever
    /// (no limit, or no dead-letter queue to move it to).
    redrive_after: Option<u32>,
    capacity: Capacity,
    /// The sizes of every stored message, summed.
    bytes: usize,
    next_seq: u64,
    next_receipt: u64,
    messages: HashMap<u64, Stored>,
    /// Standard queue: visible messages.
    ready: BTreeSet<u64>,
    /// FIFO queue: groups with a visible or in-flight message.
    groups: HashMap<Arc<str>, Group>,
    /// FIFO queue: groups that may deliver, by their oldest visible message.
    heads: BTreeSet<(u64, Arc<str>)>,
    in_flight: BTreeSet<(Instant, u64)>,
    /// FIFO queue: keyed hash of the deduplication key → (message id, end of its window).
    /// Hashes keep the cost per remembered id small and fixed.
    dedup: HashMap<u64, (uuid::Uuid, Instant)>,
    /// The same keys in send order, to expire them cheaply.
    dedup_expiry: VecDeque<(Instant, u64)>,
    dedup_hasher: RandomState,
}

impl State {
    /// An empty queue of the given kind.
    pub(super) fn new(fifo: bool, redrive_after: Option<u32>, capacity: Capacity) -> Self {
        Self {
            fifo,
            redrive_after,
            capacity,
            bytes: 0,
            next_seq: 0,
            next_receipt: 0,
            messages: HashMap::new(),
            ready: BTreeSet::new(),
            groups: HashMap::new(),
            heads: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            dedup: HashMap::new(),
            dedup_expiry: VecDeque::new(),
            dedup_hasher: RandomState::new(),
        }
    }

    /// Returns the messages whose visibility ran out by `now` to the queue. Those out of
    /// receives are removed instead and returned, for the dead-letter queue.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<Stored> {
        let mut redriven = Vec::new();
        while let Some(&(deadline, seq)) = self.in_flight.first()
            && deadline <= now
        {
            self.in_flight.remove(&(deadline, seq));
            if let Some(stored) = self.release(seq) {
                redriven.push(stored);
            }
        }
        redriven
    }

    /// Validates and stores one message; a FIFO duplicate returns the original's id, even when
    /// the queue is full. The error says why SQS would refuse the message, or that the queue is
    /// full.
    pub(super) fn store(
        &mut self,
        message: OutgoingMessage,
        now: Instant,
    ) -> Result<uuid::Uuid, Refused> {
        validate(&message, self.fifo).map_err(Refused::Invalid)?;
        let OutgoingMessage {
            body,
            group_id,
            dedup_id,
            attributes,
        } = message;
        if !self.fifo {
            let stored = Stored::new(body, None, attributes);
            self.check_room(&stored)?;
            return Ok(self.insert(stored));
        }
        self.forget_expired_dedup(now);
        let key = self
            .dedup_hasher
            .hash_one(dedup_id.as_deref().unwrap_or(&body));
        if let Some((id, _)) = self.dedup.get(&key) {
            return Ok(*id);
        }
        let stored = Stored::new(body, group_id.map(Arc::from), attributes);
        self.check_room(&stored)?;
        let id = self.insert(stored);
        let expires = now + DEDUP_WINDOW;
        self.dedup.insert(key, (id, expires));
        self.dedup_expiry.push_back((expires, key));
        Ok(id)
    }

    /// Whether `stored` fits beside what the queue holds.
    fn check_room(&self, stored: &Stored) -> Result<(), Refused> {
        self.fullness(stored.size()).map_err(Refused::Full)
    }

    /// `Err` saying which limit a message of `size` bytes would cross (0: whether the queue is
    /// full already).
    pub(super) fn fullness(&self, size: usize) -> Result<(), String> {
        let Capacity { messages, bytes } = self.capacity;
        if self.messages.len() >= messages {
            return Err(format!(
                "full: {} messages stored, the limit (EMBEDDED_QUEUE_MAX_MESSAGES) is {messages}",
                self.messages.len()
            ));
        }
        if self.bytes + size > bytes || (size == 0 && self.bytes >= bytes) {
            return Err(format!(
                "full: {} bytes stored, the limit (EMBEDDED_QUEUE_MAX_BYTES) is {bytes}",
                self.bytes
            ));
        }
        Ok(())
    }

    /// Stores messages moved here from another queue, keeping their id, receive count, body,
    /// attributes and group.
    pub(super) fn accept_redriven(&mut self, messages: Vec<Stored>) {
        for mut stored in messages {
            stored.receipt = 0;
            stored.deadline = None;
            stored.group = match stored.group.take() {
                Some(group) if self.fifo => Some(group),
                // SQS requires a group on a FIFO queue: a message without one gets its own.
                None if self.fifo => Some(Arc::from(stored.id.to_string().as_str())),
                _ => None,
            };
            self.insert(stored);
        }
    }

    /// Takes up to `max` deliverable messages and puts them in flight until `deadline`, each
    /// under a new receipt naming the queue by `tag`.
    pub(super) fn receive(
        &mut self,
        max: usize,
        deadline: Instant,
        tag: u64,
    ) -> Vec<ReceivedMessage> {
        self.take(max)
            .into_iter()
            .filter_map(|seq| self.deliver(seq, deadline, tag))
            .collect()
    }

    /// When the next in-flight message becomes visible again.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.first().map(|&(deadline, _)| deadline)
    }

    /// Deletes the message if `receipt` is its latest receipt, even after its visibility ran
    /// out; a stale receipt deletes nothing. Says whether a FIFO group may have been unblocked.
    pub(super) fn delete(&mut self, seq: u64, receipt: u64) -> bool {
        let latest = self
            .messages
            .get(&seq)
            .is_some_and(|m| m.receipt == receipt);
        latest && self.remove(seq)
    }

    /// Ends the message's in-flight period `timeout` after `now`. A zero timeout ends it at once,
    /// which returns the message if it ran out of receives. Refused unless `receipt` is the latest
    /// receipt of a message still in flight.
    pub(super) fn change_visibility(
        &mut self,
        seq: u64,
        receipt: u64,
        timeout: Duration,
        now: Instant,
    ) -> Result<Option<Stored>, NotInFlight> {
        let deadline = self
            .messages
            .get(&seq)
            .filter(|m| m.receipt == receipt)
            .and_then(|m| m.deadline)
            .ok_or(NotInFlight)?;
        self.in_flight.remove(&(deadline, seq));
        if timeout.is_zero() {
            return Ok(self.release(seq));
        }
        let deadline = now + timeout;
        if let Some(stored) = self.messages.get_mut(&seq) {
            stored.deadline = Some(deadline);
        }
        self.in_flight.insert((deadline, seq));
        Ok(None)
    }

    /// Adds a visible message at the end of the queue and returns its id.
    fn insert(&mut self, stored: Stored) -> uuid::Uuid {
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = stored.id;
        let group = stored.group.clone();
        self.bytes += stored.size();
        self.messages.insert(seq, stored);
        match group {
            Some(group) => self.update_group(&group, |g| {
                g.visible.insert(seq);
            }),
            None => {
                self.ready.insert(seq);
            }
        }
        id
    }

    /// Changes a FIFO group and keeps `heads` in step with it.
    fn update_group(&mut self, group: &Arc<str>, change: impl FnOnce(&mut Group)) {
        let entry = self.groups.entry(Arc::clone(group)).or_default();
        let before = entry.head();
        change(entry);
        let after = entry.head();
        if entry.visible.is_empty() && entry.in_flight == 0 {
            self.groups.remove(group);
        }
        if before != after {
            if let Some(seq) = before {
                self.heads.remove(&(seq, Arc::clone(group)));
            }
            if let Some(seq) = after {
                self.heads.insert((seq, Arc::clone(group)));
            }
        }
    }

    /// Takes up to `max` deliverable messages, oldest first, out of the visible set.
    fn take(&mut self, max: usize) -> Vec<u64> {
        let mut taken = Vec::with_capacity(max);
        if !self.fifo {
            while taken.len() < max
                && let Some(seq) = self.ready.pop_first()
            {
                taken.push(seq);
            }
            return taken;
        }
        while taken.len() < max
            && let Some((_, group)) = self.heads.first().cloned()
        {
            // Like SQS, hand out consecutive messages of one group together.
            while taken.len() < max
                && let Some(seq) = self
                    .groups
                    .get(&group)
                    .and_then(|g| g.visible.first().copied())
            {
                self.update_group(&group, |g| {
                    g.visible.remove(&seq);
                    g.in_flight += 1;
                });
                taken.push(seq);
            }
        }
        taken
    }

    /// Marks a taken message in flight under a new receipt.
    fn deliver(&mut self, seq: u64, deadline: Instant, tag: u64) -> Option<ReceivedMessage> {
        self.next_receipt += 1;
        let receipt = self.next_receipt;
        let stored = self.messages.get_mut(&seq)?;
        stored.receive_count += 1;
        stored.receipt = receipt;
        stored.deadline = Some(deadline);
        let received = ReceivedMessage {
            message_id: stored.id.to_string(),
            receipt: receipt_handle(tag, seq, receipt),
            body: stored.body.clone(),
            receive_count: stored.receive_count,
            group_id: stored.group.as_deref().map(str::to_owned),
            attributes: stored.attributes.clone(),
            sent_at: Some(stored.sent_at),
        };
        self.in_flight.insert((deadline, seq));
        Some(received)
    }

    /// Ends an in-flight period (the caller has removed it from `in_flight`): the message
    /// becomes visible again at its old place, or, out of receives, is removed and returned for
    /// the dead-letter queue.
    fn release(&mut self, seq: u64) -> Option<Stored> {
        let stored = self.messages.get_mut(&seq)?;
        stored.deadline = None;
        let exhausted = self
            .redrive_after
            .is_some_and(|max| stored.receive_count >= max);
        let group = stored.group.clone();
        match group {
            Some(group) => self.update_group(&group, |g| {
                g.in_flight -= 1;
                if !exhausted {
                    g.visible.insert(seq);
                }
            }),
            None if !exhausted => {
                self.ready.insert(seq);
            }
            None => {}
        }
        if exhausted { self.take_out(seq) } else { None }
    }

    /// Removes a message, visible or in flight. Says whether a FIFO group may have been unblocked.
    fn remove(&mut self, seq: u64) -> bool {
        let Some(stored) = self.take_out(seq) else {
            return false;
        };
        if let Some(deadline) = stored.deadline {
            self.in_flight.remove(&(deadline, seq));
        }
        match &stored.group {
            Some(group) => {
                self.update_group(group, |g| {
                    if stored.deadline.is_some() {
                        g.in_flight -= 1;
                    } else {
                        g.visible.remove(&seq);
                    }
                });
                stored.deadline.is_some()
            }
            None => {
                self.ready.remove(&seq);
                false
            }
        }
    }

    /// Removes a message from the store, keeping the byte count.
    fn take_out(&mut self, seq: u64) -> Option<Stored> {
        let stored = self.messages.remove(&seq)?;
        self.bytes -= stored.size();
        Some(stored)
    }

    /// Forgets ids whose window ended, and the oldest ones beyond [`DEDUP_CAPACITY`].
    fn forget_expired_dedup(&mut self, now: Instant) {
        while let Some((expires, _)) = self.dedup_expiry.front()
            && (*expires <= now || self.dedup_expiry.len() >= DEDUP_CAPACITY)
        {
            if let Some((_, key)) = self.dedup_expiry.pop_front() {
                self.dedup.remove(&key);
            }
        }
    }
}

/// The receipt for one delivery: `{tag}.{seq}.{receipt}`. The queue's tag makes another queue
/// refuse it; the receipt number makes it stale once the message is delivered again.
fn receipt_handle(tag: u64, seq: u64, receipt: u64) -> ReceiptHandle {
    ReceiptHandle(format!("{tag}.{seq}.{receipt}"))
}

/// Parses a receipt issued by the queue tagged `tag` into (sequence number, receipt number);
/// `None` for anything else.
pub(super) fn parse_receipt(tag: u64, receipt: &ReceiptHandle) -> Option<(u64, u64)> {
    let mut parts = receipt.0.split('.').map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(issuer)), Some(Ok(seq)), Some(Ok(number)), None) if issuer == tag => {
            Some((seq, number))
        }
        _ => None,
    }
}

/// Checks a message as SQS would, returning why it is refused.
/// A message's size as SQS counts it: body plus attribute names and values.
fn message_size(body: &str, attributes: &BTreeMap<String, String>) -> usize {
    body.len()
        + attributes
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
}

fn validate(message: &OutgoingMessage, fifo: bool) -> Result<(), String> {
    if message.body.is_empty() {
        return Err("the message body must not be empty".into());
    }
    if let Some(c) = message.body.chars().find(|&c| !sqs_allows(c)) {
        return Err(format!(
            "the message body contains U+{:04X}, which SQS does not allow",
            u32::from(c)
        ));
    }
    if message.attributes.len() > MAX_ATTRIBUTES {
        return Err(format!("more than {MAX_ATTRIBUTES} message attributes"));
    }
    if let Some(name) = message
        .attributes
        .iter()
        .find_map(|(name, value)| value.is_empty().then_some(name))
    {
        return Err(format!("message attribute {name} has an empty value"));
    }
    let size = message_size(&message.body, &message.attributes);
    if size > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit"
        ));
    }
    if fifo && message.group_id.is_none() {
        return Err("MessageGroupId is required on a FIFO queue".into());
    }
    Ok(())
}

/// Whether SQS accepts the character in a message (its documented XML character range).
fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISIBILITY: Duration = Duration::from_secs(30);
    const TAG: u64 = 7;

    /// A state driven the way `EmbeddedQueue` drives it: in-flight messages whose visibility ran
    /// out return before every operation, on a clock the test moves.
    struct Driver {
        state: State,
        now: Instant,
    }

    impl Driver {
        fn new(fifo: bool) -> Self {
            Self {
                // Room for the dedup-memory test's 10,001 messages.
                state: State::new(
                    fifo,
                    None,
                    Capacity {
                        messages: 1_000_000,
                        bytes: 1 << 30,
                    },
                ),
                now: Instant::now(),
            }
        }

        fn advance(&mut self, by: Duration) {
            self.now += by;
        }

        fn expire(&mut self) {
            assert!(
                self.state.expire(self.now).is_empty(),
                "nothing is redriven without a dead-letter queue"
            );
        }

        fn send(&mut self, message: OutgoingMessage) -> Result<uuid::Uuid, Refused> {
            self.expire();
            self.state.store(message, self.now)
        }

        fn receive(&mut self, max: usize) -> Vec<ReceivedMessage> {
            self.expire();
            self.state.receive(max, self.now + VISIBILITY, TAG)
        }

        fn delete(&mut self, message: &ReceivedMessage) {
            self.expire();
            let (seq, receipt) = parse_receipt(TAG, &message.receipt).unwrap();
            self.state.delete(seq, receipt);
        }

        fn change_visibility(
            &mut self,
            message: &ReceivedMessage,
            timeout: Duration,
        ) -> Result<(), NotInFlight> {
            self.expire();
            let (seq, receipt) = parse_receipt(TAG, &message.receipt).unwrap();
            self.state
                .change_visibility(seq, receipt, timeout, self.now)
                .map(|redriven| assert!(redriven.is_none()))
        }
    }

    fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.body.as_str()).collect()
    }

    #[test]
    fn redelivered_fifo_message_returns_to_its_place() {
        let mut queue = Driver::new(true);
        for body in ["a", "b", "c"] {
            queue.send(OutgoingMessage::new(body).group("g")).unwrap();
        }
        let first = queue.receive(1);
        assert_eq!(bodies(&first), ["a"]);

        queue.advance(VISIBILITY);
        let again = queue.receive(10);
        assert_eq!(bodies(&again), ["a", "b", "c"]);
        assert_eq!(again[0].receive_count, 2);
        assert_ne!(again[0].receipt, first[0].receipt);
        assert_eq!(again[1].receive_count, 1);
    }

    #[test]
    fn in_flight_message_blocks_only_its_group() {
        let mut queue = Driver::new(true);
        queue.send(OutgoingMessage::new("g1").group("g")).unwrap();
        queue.send(OutgoingMessage::new("g2").group("g")).unwrap();
        let first = queue.receive(1);
        assert_eq!(bodies(&first), ["g1"]);
        queue.send(OutgoingMessage::new("h1").group("h")).unwrap();

        let other = queue.receive(10);
        assert_eq!(bodies(&other), ["h1"]);
        assert!(queue.receive(10).is_empty());

        queue.delete(&first[0]);
        let next = queue.receive(10);
        assert_eq!(bodies(&next), ["g2"]);
    }

    #[test]
    fn returning_one_message_early_keeps_its_group_blocked_by_the_other() {
        let mut queue = Driver::new(true);
        queue.send(OutgoingMessage::new("a").group("g")).unwrap();
        queue.send(OutgoingMessage::new("b").group("g")).unwrap();
        let both = queue.receive(10);
        assert_eq!(bodies(&both), ["a", "b"]);

        queue.change_visibility(&both[0], Duration::ZERO).unwrap();
        assert!(queue.receive(10).is_empty());
        queue.delete(&both[1]);
        let again = queue.receive(10);
        assert_eq!(bodies(&again), ["a"]);
        assert_eq!(again[0].receive_count, 2);
    }

    #[test]
    fn deduplication_memory_is_bounded_oldest_first() {
        let mut queue = Driver::new(true);
        let send = |queue: &mut Driver, dedup: String| {
            queue
                .send(OutgoingMessage::new("m").group("g").dedup(dedup))
                .unwrap()
        };
        let first = send(&mut queue, "id-0".into());
        let mut last_sent = first;
        for n in 1..=DEDUP_CAPACITY {
            last_sent = send(&mut queue, format!("id-{n}"));
        }
        let again = send(&mut queue, format!("id-{DEDUP_CAPACITY}"));
        assert_eq!(again, last_sent, "recent ids are still deduplicated");
        assert!(queue.state.dedup.len() <= DEDUP_CAPACITY);
        let resent = send(&mut queue, "id-0".into());
        assert_ne!(resent, first, "the oldest id was forgotten to bound memory");
    }

    #[test]
    fn duplicate_returns_the_original_id_even_after_delete() {
        let mut queue = Driver::new(true);
        let original = queue
            .send(OutgoingMessage::new("first").group("g").dedup("d"))
            .unwrap();
        let duplicate = queue
            .send(OutgoingMessage::new("second").group("g").dedup("d"))
            .unwrap();
        assert_eq!(duplicate, original);

        let received = queue.receive(10);
        assert_eq!(bodies(&received), ["first"]);
        queue.delete(&received[0]);
        let by_body = queue
            .send(OutgoingMessage::new("first").group("g"))
            .unwrap();
        let again = queue
            .send(OutgoingMessage::new("first").group("other"))
            .unwrap();
        assert_eq!(
            by_body, again,
            "content-based deduplication ignores the group"
        );
        let dedup_after_delete = queue
            .send(OutgoingMessage::new("third").group("g").dedup("d"))
            .unwrap();
        assert_eq!(dedup_after_delete, original);
        assert_eq!(bodies(&queue.receive(10)), ["first"]);
    }

    #[test]
    fn change_visibility_of_an_expired_message_is_refused() {
        let mut queue = Driver::new(false);
        queue.send(OutgoingMessage::new("m")).unwrap();
        let received = queue.receive(1).remove(0);
        queue.advance(VISIBILITY * 2);
        assert_eq!(
            queue.change_visibility(&received, Duration::from_secs(10)),
            Err(NotInFlight)
        );
    }

    #[test]
    fn extending_visibility_delays_redelivery() {
        let mut queue = Driver::new(false);
        queue.send(OutgoingMessage::new("m")).unwrap();
        let received = queue.receive(1).remove(0);
        queue.change_visibility(&received, VISIBILITY * 10).unwrap();
        queue.advance(VISIBILITY * 3);
        assert!(queue.receive(1).is_empty());
    }

    #[test]
    fn messages_sqs_would_refuse_are_rejected() {
        let mut queue = Driver::new(false);
        let too_many = (0..=MAX_ATTRIBUTES).fold(OutgoingMessage::new("m"), |m, i| {
            m.attribute(format!("a{i}"), "v")
        });
        for message in [
            OutgoingMessage::new(""),
            OutgoingMessage::new("nul \u{0}"),
            OutgoingMessage::new("m").attribute("empty", ""),
            OutgoingMessage::new("x".repeat(MAX_MESSAGE_BYTES + 1)),
            too_many,
        ] {
            let refused = queue.send(message);
            assert!(refused.is_err(), "{refused:?}");
        }
        assert!(queue.receive(10).is_empty());
    }
}
