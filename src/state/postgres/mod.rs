//! State in PostgreSQL (`state: { backend: postgres }`), for teams whose runners on several
//! machines apply plans that share sites: state, journal and artifacts as rows, the plan's
//! lock as a session advisory lock held on a connection of its own for the whole run (the
//! server frees it when the holder dies). The connection string comes from the environment
//! and is never written anywhere; messages name the variable, the host and the database.

mod connection;
mod schema;
mod site_slots;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use connection::Connection;

use super::journal::JournalRecord;
use super::lock::LockHolder;
use super::model::State;
use super::{StateError, StateLock, StateStore, UnlockOutcome};

/// What went wrong talking to the server (turned into a [`StateError`] with the location).
#[derive(Debug)]
pub enum PgError {
    Connect(String),
    Query(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message when there is one ("relation … does not exist"), else
        // the client's ("connection refused").
        match e.as_db_error() {
            Some(db) => PgError::Query(db.message().to_string()),
            None => PgError::Query(e.to_string()),
        }
    }
}

/// The plan's lock: its session holds `pg_advisory_lock(key)` until dropped.
pub struct PgLock {
    _session: Connection,
}

impl std::fmt::Debug for PgLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgLock")
    }
}

/// How long a would-be holder keeps trying before it reports the lock as held.
const LOCK_SETTLE: std::time::Duration = std::time::Duration::from_millis(1500);

pub struct PgStore {
    plan: String,
    plan_path: String,
    /// The connection string (never shown: it may hold a password).
    url: String,
    /// The variable it came from, for messages.
    url_env: String,
    /// `host:port/database`, for messages and as the state's identity.
    server: String,
    /// Where this runner keeps its local files (running scripts' status).
    local: PathBuf,
    conn: Mutex<Option<Arc<Connection>>>,
}

impl PgStore {
    /// The store of plan `plan` (file `plan_path`) in the database `url_env` names.
    pub fn for_plan(plan_path: &Path, plan: &str, url_env: &str) -> Result<PgStore, StateError> {
        let url = std::env::var(url_env).map_err(|_| StateError::Postgres {
            location: format!("${url_env}"),
            what: "is not set".into(),
            reason: "the plan keeps its state in PostgreSQL".into(),
            hint: format!("set {url_env} to a connection string (postgres://user@host:port/db or host=… dbname=…)"),
        })?;
        let config = tokio_postgres::Config::from_str(&url).map_err(|e| StateError::Postgres {
            location: format!("${url_env}"),
            what: "is not a connection string".into(),
            reason: e.to_string(),
            hint: "use postgres://user@host:port/database or the key=value form".into(),
        })?;
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let database = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
        Ok(PgStore {
            plan: plan.to_string(),
            plan_path: plan_path.display().to_string(),
            url,
            url_env: url_env.to_string(),
            server: format!("{host}:{port}/{database}"),
            local: super::local_state_dir(plan_path, plan),
            conn: Mutex::new(None),
        })
    }

    fn error(&self, what: &str, e: PgError) -> StateError {
        let (reason, hint) = match e {
            PgError::Connect(reason) => {
                (reason, format!("check that the server in ${} runs and accepts this user", self.url_env))
            }
            PgError::Query(reason) => (reason, "check the database's permissions and health".to_string()),
        };
        StateError::Postgres { location: self.location(), what: what.to_string(), reason, hint }
    }

    /// The shared session, opened (and the schema migrated) on first use.
    fn session(&self) -> Result<Arc<Connection>, StateError> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = Connection::open(&self.url).map_err(|e| self.error("cannot be reached", e))?;
        let migrated = conn
            .query(async |c| schema::migrate(c).await)
            .map_err(|e| self.error("cannot be prepared (schema migration)", e))?;
        if let Err(found) = migrated {
            return Err(StateError::Postgres {
                location: self.location(),
                what: format!("has drplan schema version {found}"),
                reason: format!("this drplan knows version {}", schema::VERSION),
                hint: "a newer drplan migrated it; upgrade drplan".into(),
            });
        }
        let conn = Arc::new(conn);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// The advisory lock key of this plan (lock keys are one bigint space per database).
    fn lock_key(&self) -> i64 {
        let hash = blake3::hash(format!("drplan plan lock:{}", self.plan).as_bytes());
        i64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default())
    }

    fn holder_row(&self) -> Result<Option<(LockHolder, i32)>, StateError> {
        let (plan, key) = (self.plan.clone(), self.lock_key());
        let (high, low) = ((key >> 32) as u32, key as u32);
        let row = self
            .session()?
            .query(async move |c| {
                c.query_opt(
                    "SELECT l.holder, l.backend_pid FROM drplan_locks l WHERE l.plan = $1 AND EXISTS (
                        SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted
                        AND p.pid = l.backend_pid AND p.classid = $2 AND p.objid = $3 AND p.objsubid = 1)",
                    &[&plan, &high, &low],
                )
                .await
            })
            .map_err(|e| self.error("cannot tell who holds the lock", e))?;
        Ok(row.and_then(|r| {
            let holder: String = r.get(0);
            serde_json::from_str(&holder).ok().map(|h| (h, r.get(1)))
        }))
    }

    /// The first column of `sql` (with the plan as `$1`), as text.
    fn names(&self, sql: &'static str) -> Result<Vec<String>, StateError> {
        let plan = self.plan.clone();
        self.session()?
            .query(async move |c| {
                Ok(c.query(sql, &[&plan]).await?.into_iter().map(|r| r.get::<_, String>(0)).collect())
            })
            .map_err(|e| self.error("cannot be listed", e))
    }

    /// Whether anyone holds the plan's lock (some session, recorded holder or not).
    fn lock_taken(&self) -> Result<bool, StateError> {
        let key = self.lock_key();
        let (high, low) = ((key >> 32) as u32, key as u32);
        self.session()?
            .query(async move |c| {
                let row = c
                    .query_one(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                         AND classid = $1 AND objid = $2 AND objsubid = 1",
                        &[&high, &low],
                    )
                    .await?;
                Ok(row.get::<_, i64>(0) > 0)
            })
            .map_err(|e| self.error("cannot tell whether the plan is locked", e))
    }
}

impl StateStore for PgStore {
    fn location(&self) -> String {
        format!("PostgreSQL {} (${}), plan `{}`", self.server, self.url_env, self.plan)
    }

    fn identity(&self) -> String {
        format!("postgres://{}#{}", self.server, self.plan)
    }

    fn local_dir(&self) -> PathBuf {
        self.local.clone()
    }

    fn exists(&self) -> bool {
        let plan = self.plan.clone();
        self.session()
            .and_then(|s| {
                s.query(async move |c| {
                    let row = c
                        .query_one(
                            "SELECT EXISTS (SELECT 1 FROM drplan_state WHERE plan = $1)
                             OR EXISTS (SELECT 1 FROM drplan_journal WHERE plan = $1)",
                            &[&plan],
                        )
                        .await?;
                    Ok(row.get::<_, bool>(0))
                })
                .map_err(|e| self.error("cannot be read", e))
            })
            // Unknown counts as existing: nothing is discarded on a guess.
            .unwrap_or(true)
    }

    fn discard_new(&self) {
        let plan = self.plan.clone();
        if let Ok(session) = self.session() {
            let _ = session.query(async move |c| {
                c.batch_execute("BEGIN").await?;
                for table in ["drplan_state", "drplan_journal", "drplan_artifacts", "drplan_keys"] {
                    c.execute(&format!("DELETE FROM {table} WHERE plan = $1"), &[&plan]).await?;
                }
                c.batch_execute("COMMIT").await
            });
        }
    }

    fn lock(&self, command: &str) -> Result<StateLock, StateError> {
        self.session()?;
        let conn = Connection::open(&self.url).map_err(|e| self.error("cannot be reached", e))?;
        let key = self.lock_key();
        // Tried for a moment, as the file lock is: a probe (`drplan unlock` asking) or a
        // holder that is just leaving does not make a run fail; and by then a holder has
        // recorded who it is.
        let deadline = std::time::Instant::now() + LOCK_SETTLE;
        let got = loop {
            let got = conn
                .query(async move |c| {
                    Ok(c.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).await?.get::<_, bool>(0))
                })
                .map_err(|e| self.error("cannot lock the plan", e))?;
            if got || std::time::Instant::now() > deadline {
                break got;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        if !got {
            let holder = self.holder_row()?.map(|(h, _)| h.to_string());
            return Err(StateError::Locked {
                plan: self.plan.clone(),
                plan_path: self.plan_path.clone(),
                holder: holder.unwrap_or_else(|| "another session (no holder recorded yet)".into()),
            });
        }
        let holder = serde_json::to_string(&LockHolder::current(command)).unwrap_or_default();
        let plan = self.plan.clone();
        conn.query(async move |c| {
            c.execute(
                "INSERT INTO drplan_locks (plan, holder, backend_pid) VALUES ($1, $2, pg_backend_pid())
                 ON CONFLICT (plan) DO UPDATE SET holder = $2, backend_pid = pg_backend_pid()",
                &[&plan, &holder],
            )
            .await
        })
        .map_err(|e| self.error("cannot record the lock's holder", e))?;
        Ok(StateLock::Postgres(PgLock { _session: conn }))
    }

    fn lock_holder(&self) -> Result<Option<LockHolder>, StateError> {
        Ok(self.holder_row()?.map(|(h, _)| h))
    }

    fn unlock(&self, force: bool) -> Result<UnlockOutcome, StateError> {
        match self.holder_row()? {
            None if !self.lock_taken()? => Ok(UnlockOutcome::NotLocked),
            // Taken but its holder row not written yet: a lock being taken right now.
            None => Ok(UnlockOutcome::StillHeld(LockHolder::current("(starting)"))),
            Some((holder, pid)) if force => {
                // Ends the holder's session: the server releases the lock with it.
                self.session()?
                    .query(async move |c| c.execute("SELECT pg_terminate_backend($1)", &[&pid]).await)
                    .map_err(|e| self.error("cannot end the lock holder's session", e))?;
                Ok(UnlockOutcome::Released(Some(holder)))
            }
            Some((holder, _)) => Ok(UnlockOutcome::StillHeld(holder)),
        }
    }

    fn load(&self) -> Result<State, StateError> {
        let plan = self.plan.clone();
        let body = self
            .session()?
            .query(async move |c| {
                Ok(c.query_opt("SELECT body FROM drplan_state WHERE plan = $1", &[&plan])
                    .await?
                    .map(|r| r.get::<_, String>(0)))
            })
            .map_err(|e| self.error("cannot be read", e))?;
        let Some(text) = body else { return Ok(State::new(&self.plan)) };
        let path = PathBuf::from(self.location());
        super::check_format(&text, &path)?;
        serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path,
            reason: e.to_string(),
            source_code: None,
            at: None,
        })
    }

    fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        state.updated_at = Some(SystemTime::now());
        let body = serde_json::to_string_pretty(state)
            .map_err(|e| self.error("cannot take the state", PgError::Query(e.to_string())))?;
        let (plan, serial) = (self.plan.clone(), state.serial as i64);
        self.session()?
            .query(async move |c| {
                c.execute(
                    "INSERT INTO drplan_state (plan, serial, body) VALUES ($1, $2, $3)
                     ON CONFLICT (plan) DO UPDATE SET serial = $2, body = $3, updated_at = now()",
                    &[&plan, &serial, &body],
                )
                .await
            })
            .map_err(|e| self.error("cannot save the state", e))?;
        Ok(())
    }

    fn append_journal(&self, run: &str, records: &[JournalRecord]) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = records.iter().filter_map(|r| serde_json::to_string(r).ok()).collect();
        let (plan, run) = (self.plan.clone(), run.to_string());
        // One statement: committed (and on the server's disk) before this returns.
        self.session()?
            .query(async move |c| {
                c.execute(
                    "INSERT INTO drplan_journal (plan, run, record) SELECT $1, $2, r FROM unnest($3::text[]) WITH ORDINALITY AS t(r, i) ORDER BY i",
                    &[&plan, &run, &lines],
                )
                .await
            })
            .map_err(|e| self.error("cannot append to the journal", e))?;
        Ok(())
    }

    fn read_journal(&self, run: &str) -> Result<Vec<JournalRecord>, StateError> {
        let (plan, run_id) = (self.plan.clone(), run.to_string());
        let rows = self
            .session()?
            .query(async move |c| {
                let rows = c
                    .query(
                        "SELECT record FROM drplan_journal WHERE plan = $1 AND run = $2 ORDER BY seq",
                        &[&plan, &run_id],
                    )
                    .await?;
                Ok(rows.into_iter().map(|r| r.get::<_, String>(0)).collect::<Vec<String>>())
            })
            .map_err(|e| self.error("cannot read the journal", e))?;
        rows.iter()
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| StateError::CorruptJournal {
                    path: PathBuf::from(format!("{} run {run}", self.location())),
                    line: i + 1,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    fn write_artifact(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let (plan, name, bytes) = (self.plan.clone(), name.to_string(), bytes.to_vec());
        self.session()?
            .query(async move |c| {
                c.execute(
                    "INSERT INTO drplan_artifacts (plan, name, bytes) VALUES ($1, $2, $3)
                     ON CONFLICT (plan, name) DO UPDATE SET bytes = $3",
                    &[&plan, &name, &bytes],
                )
                .await
            })
            .map_err(|e| self.error("cannot store a run artifact", e))?;
        Ok(())
    }

    fn read_artifact(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let (plan, name) = (self.plan.clone(), name.to_string());
        self.session()?
            .query(async move |c| {
                Ok(c.query_opt("SELECT bytes FROM drplan_artifacts WHERE plan = $1 AND name = $2", &[&plan, &name])
                    .await?
                    .map(|r| r.get::<_, Vec<u8>>(0)))
            })
            .map_err(|e| self.error("cannot read a run artifact", e))
    }

    fn import_plan_key(&self, key: [u8; 32]) -> Result<(), StateError> {
        let (plan, key) = (self.plan.clone(), key.to_vec());
        self.session()?
            .query(async move |c| {
                c.execute(
                    "INSERT INTO drplan_keys (plan, key) VALUES ($1, $2) ON CONFLICT (plan) DO UPDATE SET key = $2",
                    &[&plan, &key],
                )
                .await
            })
            .map_err(|e| self.error("cannot store the plan key", e))?;
        Ok(())
    }

    fn journal_runs(&self) -> Result<Vec<String>, StateError> {
        self.names("SELECT DISTINCT run FROM drplan_journal WHERE plan = $1 ORDER BY run")
    }

    fn artifact_names(&self) -> Result<Vec<String>, StateError> {
        self.names("SELECT name FROM drplan_artifacts WHERE plan = $1 ORDER BY name")
    }

    fn site_slots(&self) -> Option<Arc<dyn super::SiteSlots>> {
        let location = format!("PostgreSQL {} (${})", self.server, self.url_env);
        Some(Arc::new(site_slots::PgSiteSlots::new(&self.url, location)))
    }

    fn plan_key(&self) -> Result<[u8; 32], StateError> {
        let (plan, fresh) = (self.plan.clone(), super::random_key()?.to_vec());
        // The first runner's key wins; every runner then reads the same one.
        let key = self
            .session()?
            .query(async move |c| {
                c.execute(
                    "INSERT INTO drplan_keys (plan, key) VALUES ($1, $2) ON CONFLICT (plan) DO NOTHING",
                    &[&plan, &fresh],
                )
                .await?;
                Ok(c.query_one("SELECT key FROM drplan_keys WHERE plan = $1", &[&plan]).await?.get::<_, Vec<u8>>(0))
            })
            .map_err(|e| self.error("cannot read the plan key", e))?;
        key.try_into().map_err(|_| StateError::BadKey { path: PathBuf::from(self.location()) })
    }
}
