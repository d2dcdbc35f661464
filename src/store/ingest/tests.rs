//! Group commit: queued batches committed together, each with its own
//! report, in one log sync.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ed25519_dalek::SigningKey;

use super::*;
use crate::store::{LogFile, RealLogFile};

/// The real log file, counting its syncs.
struct CountingFile {
    inner: RealLogFile,
    syncs: Arc<AtomicUsize>,
}

impl LogFile for CountingFile {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(data, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync_data()
    }
}

fn chain(key: &SigningKey, from: u64, to: u64, prev: MessageId) -> Vec<Message> {
    let mut prev = prev;
    (from..=to)
        .map(|seq| {
            let body = format!(r#"{{"type":"about","name":"n{seq}"}}"#);
            let m = Message::sign(key, seq, prev, 0, body.as_bytes()).unwrap();
            prev = m.id();
            m
        })
        .collect()
}

fn enqueue(store: &Store, msgs: Vec<Message>) -> Arc<Queued> {
    let queued = Arc::new(Queued {
        batch: Mutex::new(Some(Checked::new(msgs))),
        result: Mutex::new(None),
    });
    lock_ignoring_poison(&store.queue).push(queued.clone());
    queued
}

fn result(q: &Queued) -> IngestReport {
    lock_ignoring_poison(&q.result).take().unwrap().unwrap()
}

#[test]
fn queued_batches_commit_together_each_with_its_own_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let syncs = Arc::new(AtomicUsize::new(0));
    let counter = syncs.clone();
    let open = move |p: &Path| -> io::Result<Box<dyn LogFile>> {
        Ok(Box::new(CountingFile {
            inner: RealLogFile::open(p)?,
            syncs: counter.clone(),
        }))
    };
    let store = Store::open_with_log_file(&path, &open).unwrap();
    let one = SigningKey::from_bytes(&[1; 32]);
    let two = SigningKey::from_bytes(&[2; 32]);
    let first = chain(&one, 1, 5, MessageId::default());
    let second = chain(&two, 1, 3, MessageId::default());
    let mut broken = second.clone();
    // Feed two skips #2: this batch stops there.
    broken[1] = Message::sign(
        &two,
        3,
        second[0].id(),
        0,
        br#"{"type":"about","name":"x"}"#,
    )
    .unwrap();

    let before = syncs.load(Ordering::SeqCst);
    let a = enqueue(&store, first[..3].to_vec());
    // Overlaps the first batch by one message, then goes on.
    let b = enqueue(&store, first[2..].to_vec());
    let c = enqueue(&store, broken);
    let _writer = store.lock();
    store.commit_queued();
    assert_eq!(
        syncs.load(Ordering::SeqCst) - before,
        1,
        "one log sync for the group"
    );

    let (a, b, c) = (result(&a), result(&b), result(&c));
    assert_eq!(a.accepted, first[..3].to_vec());
    assert_eq!((b.duplicates, b.accepted.len()), (1, 2));
    assert_eq!(c.accepted, second[..1].to_vec());
    let rejected = c.rejected.unwrap();
    assert_eq!((rejected.index, rejected.sequence), (1, 3));
    assert_eq!(store.head(&first[0].author()).unwrap().unwrap().sequence, 5);
    assert_eq!(
        store.head(&second[0].author()).unwrap().unwrap().sequence,
        1
    );
    drop(_writer);
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn a_bad_signature_stops_its_batch_without_moving_the_heads_of_the_next() {
    let (dir, one) = (
        tempfile::tempdir().unwrap(),
        SigningKey::from_bytes(&[1; 32]),
    );
    let store = Store::open(&dir.path().join("store")).unwrap();
    let msgs = chain(&one, 1, 4, MessageId::default());
    let mut forged = msgs[..3].to_vec();
    let mut bytes = forged[1].bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // in the content: the hash no longer matches
    forged[1] = Message::decode(bytes).unwrap_or_else(|_| msgs[1].clone());
    let a = enqueue(&store, forged);
    // Carries on from #3, which the first batch must not have appended.
    let b = enqueue(&store, msgs[2..].to_vec());
    {
        let _writer = store.lock();
        store.commit_queued();
    }
    let (a, b) = (result(&a), result(&b));
    assert_eq!(a.accepted.len(), 1);
    assert_eq!(a.rejected.unwrap().index, 1);
    assert!(b.accepted.is_empty());
    assert_eq!(b.rejected.unwrap().index, 0);
    assert_eq!(store.head(&msgs[0].author()).unwrap().unwrap().sequence, 1);
}
