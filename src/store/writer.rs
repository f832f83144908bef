//! SQLite's group commit: one thread with its own connection runs the hot
//! writes (storing a message pair, checkpoints, a reply's outcome) that
//! other tasks queue, many to one IMMEDIATE transaction.
//!
//! SQLite has a single writer. A transaction per write pays the lock, a
//! blocking-pool hop and a commit each time; when a thousand messages are
//! sent in the same instant they queue one by one behind each other. Here a
//! batch pays those once. Each write runs inside its own savepoint, so one
//! that fails is rolled back alone and the rest of its batch still commits;
//! a caller hears back only after the commit, so "stored" means stored.
//!
//! Writes come in two lanes. A reply's rows (its message pair, its outcome)
//! are urgent: someone waits for them. Checkpoints are background work in
//! many small jobs, and a transaction takes at most one of them, after every
//! urgent write queued, so a send never waits behind a checkpoint of a
//! thousand replies.

use std::thread;

use diesel::{Connection, SqliteConnection, connection::SimpleConnection};
use tokio::{
    runtime::Handle,
    sync::{mpsc, mpsc::error::TryRecvError, oneshot},
};

use super::{SQLITE_SETUP, StoreError, StoreResult};

/// Writes taken into one transaction at most: bounds how long the lock is
/// held and how long the first write of a batch waits for the last.
const MAX_BATCH: usize = 256;
/// Writes waiting for the thread; senders wait beyond this (backpressure).
const QUEUE: usize = 4096;

/// Called once the batch's commit succeeded (`None`) or failed.
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;
type Job = Box<dyn FnOnce(&mut SqliteConnection) -> Completion + Send>;

/// Which queue a write waits in (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    Urgent,
    Background,
}

/// A handle on the writer thread; the thread ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    urgent: mpsc::Sender<Job>,
    background: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Opens the writer's own connection to `path` and starts its thread.
    pub(crate) fn start(path: &str) -> StoreResult<Self> {
        let mut conn = SqliteConnection::establish(path).map_err(|err| StoreError::Unavailable(err.to_string()))?;
        conn.batch_execute(SQLITE_SETUP)?;
        let (urgent, urgent_queue) = mpsc::channel(QUEUE);
        let (background, background_queue) = mpsc::channel(QUEUE);
        // The thread waits for either queue through the runtime that opened
        // the store.
        let runtime = Handle::current();
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, &runtime, urgent_queue, background_queue))
            .map_err(|err| StoreError::Unavailable(format!("the SQLite writer thread could not start: {err}")))?;
        Ok(Self { urgent, background })
    }

    /// Runs `work` in a coming batch and returns its result once committed.
    pub(crate) async fn write<R: Send + 'static>(
        &self,
        lane: Lane,
        work: impl FnOnce(&mut SqliteConnection) -> diesel::QueryResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // Nested in the batch's transaction, so a savepoint.
            let outcome = conn.transaction(work);
            Box::new(move |commit_failure: Option<&str>| {
                let _ = done.send(match (outcome, commit_failure) {
                    (Err(err), _) => Err(StoreError::Query(err)),
                    (Ok(_), Some(failure)) => Err(StoreError::Unavailable(format!("the commit failed: {failure}"))),
                    (Ok(value), None) => Ok(value),
                });
            })
        });
        let queue = match lane {
            Lane::Urgent => &self.urgent,
            Lane::Background => &self.background,
        };
        queue.send(job).await.map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        result.await.map_err(|_| StoreError::Unavailable("the SQLite writer stopped before committing".into()))?
    }
}

fn run(
    mut conn: SqliteConnection,
    runtime: &Handle,
    mut urgent: mpsc::Receiver<Job>,
    mut background: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Every urgent write queued (up to a batch), then one background job.
        while batch.len() < MAX_BATCH {
            match urgent.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Ok(job) = background.try_recv() {
            batch.push(job);
        }
        if batch.is_empty() {
            let next = runtime.block_on(async {
                tokio::select! {
                    biased;
                    job = urgent.recv() => job,
                    job = background.recv() => job,
                }
            });
            match next {
                Some(job) => batch.push(job),
                // Both queues close together, with the last handle.
                None => return,
            }
            continue;
        }
        crate::observe::group_commit(batch.len());
        let mut completions = Vec::with_capacity(batch.len());
        let committed = conn.immediate_transaction(|conn| {
            completions.extend(batch.drain(..).map(|job| job(conn)));
            diesel::QueryResult::Ok(())
        });
        let failure = committed.err().map(|err| err.to_string());
        for complete in completions {
            complete(failure.as_deref());
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use diesel::{RunQueryDsl, sql_query, sql_types::BigInt};

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_rolls_back_alone_and_the_batch_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db").display().to_string();
        let writer = SqliteWriter::start(&path).expect("writer");
        writer
            .write(Lane::Urgent, |c| sql_query("CREATE TABLE t (id INTEGER PRIMARY KEY)").execute(c))
            .await
            .expect("table");

        // Queued together, so most land in one batch; id 1 twice fails once.
        let writes =
            (0..50).map(|i| {
                let writer = writer.clone();
                let id = if i == 25 { 1 } else { i };
                let lane = if i % 2 == 0 { Lane::Urgent } else { Lane::Background };
                async move {
                    writer.write(lane, move |c| sql_query(format!("INSERT INTO t VALUES ({id})")).execute(c)).await
                }
            });
        let results = futures_util::future::join_all(writes).await;
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1, "only the duplicate fails");

        let mut reader = SqliteConnection::establish(&path).expect("reader");
        let count: Vec<Count> = sql_query("SELECT COUNT(*) AS n FROM t").load(&mut reader).expect("count");
        assert_eq!(count[0].n, 49, "every other write is committed");
    }
}
