//! One task owns the journal file: records from all running steps are batched into one
//! write and one fsync (group commit); a step waits for its end record's acknowledgement
//! before anything that depends on it may start.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use crate::state::{JournalEvent, JournalRecord, StateStore};

type Ack = oneshot::Sender<Result<(), String>>;

struct Entry {
    /// None: only wait for what came before (a flush).
    record: Option<(String, JournalEvent)>,
    at: SystemTime,
    ack: Option<Ack>,
}

#[derive(Clone)]
pub struct JournalHandle {
    tx: mpsc::UnboundedSender<Entry>,
}

impl JournalHandle {
    /// Start the writer for `run`; sequence numbers continue after `last_seq`.
    pub fn spawn(store: Arc<dyn StateStore>, run: String, last_seq: u64) -> JournalHandle {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
        tokio::spawn(async move {
            let mut seq = last_seq;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let mut records = Vec::with_capacity(batch.len());
                let mut acks = Vec::new();
                for entry in batch {
                    if let Some((step, event)) = entry.record {
                        seq += 1;
                        records.push(JournalRecord { run: run.clone(), seq, at: entry.at, step, event });
                    }
                    acks.extend(entry.ack);
                }
                let result = if records.is_empty() {
                    Ok(())
                } else {
                    let store = store.clone();
                    let run_id = run.clone();
                    tokio::task::spawn_blocking(move || store.append_journal(&run_id, &records))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                };
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        JournalHandle { tx }
    }

    /// Append without waiting for durability (start records, retries).
    pub fn note(&self, step: &str, event: JournalEvent) {
        let _ = self.tx.send(Entry { record: Some((step.to_string(), event)), at: SystemTime::now(), ack: None });
    }

    /// Append and wait until the record (and everything before it) is fsynced.
    pub async fn commit(&self, step: &str, event: JournalEvent) -> Result<(), String> {
        self.send(Some((step.to_string(), event))).await
    }

    /// Wait until everything sent so far is on disk.
    pub async fn flush(&self) -> Result<(), String> {
        self.send(None).await
    }

    async fn send(&self, record: Option<(String, JournalEvent)>) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Entry { record, at: SystemTime::now(), ack: Some(ack) })
            .map_err(|_| "the journal writer stopped".to_string())?;
        done.await.map_err(|_| "the journal writer stopped".to_string())?
    }
}
