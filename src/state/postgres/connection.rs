//! One PostgreSQL session on its own thread. The state store's methods are synchronous and
//! are called from async code too (where a nested runtime may not block), so each session
//! runs tokio-postgres on a thread of its own and callers wait for its answers. Dropping the
//! connection ends the session: the server then releases its advisory locks.

use std::sync::Mutex;
use std::sync::mpsc;

use tokio_postgres::{Client, NoTls};

use super::PgError;

/// What a job gets: the client and the runtime that drives it.
pub struct Session {
    pub rt: tokio::runtime::Runtime,
    pub client: Client,
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

pub struct Connection {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Connection {
    /// Connect to `url` (a libpq connection string or URL).
    pub fn open(url: &str) -> Result<Connection, PgError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::sync_channel::<Result<(), PgError>>(1);
        let url = url.to_string();
        std::thread::Builder::new()
            .name("drplan-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(PgError::Connect(e.to_string())));
                        return;
                    }
                };
                let client = match rt.block_on(tokio_postgres::connect(&url, NoTls)) {
                    Ok((client, connection)) => {
                        // Driven whenever a job runs on this runtime.
                        rt.spawn(connection);
                        client
                    }
                    Err(e) => {
                        let _ = ready.send(Err(PgError::Connect(e.to_string())));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let mut session = Session { rt, client };
                while let Ok(job) = queue.recv() {
                    job(&mut session);
                }
            })
            .map_err(|e| PgError::Connect(format!("cannot start its thread: {e}")))?;
        connected.recv().map_err(|_| PgError::Connect("the connection thread ended".into()))??;
        Ok(Connection { jobs: Mutex::new(jobs) })
    }

    /// Run `f` on the session's thread and wait for its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Session) -> T + Send + 'static) -> Result<T, PgError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |session| {
            let _ = reply.send(f(session));
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| PgError::Connect("the session ended".into()))?;
        answer.recv().map_err(|_| PgError::Connect("the session ended".into()))
    }

    /// Run a query on the session and wait for it.
    pub fn query<T, F>(&self, f: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: for<'c> AsyncFnOnce(&'c mut Client) -> Result<T, tokio_postgres::Error> + Send + 'static,
    {
        self.run(move |s| s.rt.block_on(f(&mut s.client)))?.map_err(PgError::from)
    }
}
