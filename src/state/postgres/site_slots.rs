//! Site slots as session advisory locks (two-key form: the site's key and the slot number,
//! apart from the plans' one-key locks) on a connection of their own, held for the run: the
//! server frees them when the runner's session ends, however it ends.
//!
//! The connection lives on the engine's runtime, so that the requests of steps running at
//! once travel pipelined on it instead of one after another.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::PgError;
use crate::state::site_slots::SlotFuture;
use crate::state::{SiteSlots, StateError};

/// Slots asked for in one request once the first free one was taken elsewhere. The first
/// request asks for one: each step that may run reserves one slot at most, so with the
/// engine's own limit a local candidate is always there, and steps asking at once never
/// take each other's.
const PER_REQUEST: usize = 8;

pub struct PgSiteSlots {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connection string (never shown).
    url: String,
    /// Where the slots live, for messages.
    location: String,
    client: tokio::sync::OnceCell<Client>,
    sites: Mutex<HashMap<String, Slots>>,
}

/// This runner's view of one site's slots. A session may take its own advisory lock again,
/// so the server alone cannot say that a slot is in use by this runner: requests in flight
/// reserve the slots they ask for, and a slot stays held until the server has it back.
#[derive(Default)]
struct Slots {
    held: BTreeSet<i32>,
    asking: BTreeSet<i32>,
}

/// The lock key of a site's slots: sites are shared by name within one database.
pub fn site_key(site: &str) -> i32 {
    let hash = blake3::hash(format!("drplan site slots:{site}").as_bytes());
    i32::from_le_bytes(hash.as_bytes()[..4].try_into().unwrap_or_default())
}

impl PgSiteSlots {
    /// Slots in the database at `url` (a connection string the store already checked);
    /// connects on first use, from the engine's runtime.
    pub fn new(url: &str, location: String) -> PgSiteSlots {
        let inner = Inner {
            url: url.to_string(),
            location,
            client: tokio::sync::OnceCell::new(),
            sites: Mutex::new(HashMap::new()),
        };
        PgSiteSlots { inner: Arc::new(inner) }
    }
}

impl Inner {
    async fn client(&self) -> Result<&Client, PgError> {
        self.client
            .get_or_try_init(|| async {
                let (client, connection) =
                    tokio_postgres::connect(&self.url, NoTls).await.map_err(|e| PgError::Connect(e.to_string()))?;
                // Ends when the client is dropped: the session ends and the server frees the slots.
                tokio::spawn(connection);
                Ok(client)
            })
            .await
    }

    fn sites(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slots>> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, what: String, e: PgError) -> StateError {
        let reason = match e {
            PgError::Connect(reason) | PgError::Query(reason) => reason,
        };
        StateError::Postgres {
            location: self.location.clone(),
            what,
            reason,
            hint: "the site's limit holds across runners through this database; check that it runs".into(),
        }
    }

    async fn try_take(&self, site: &str, limit: i32) -> Result<Option<u32>, PgError> {
        let client = self.client().await?;
        let key = site_key(site);
        let mut tried = BTreeSet::new();
        loop {
            let asking: Vec<i32> = {
                let mut sites = self.sites();
                let slots = sites.entry(site.to_string()).or_default();
                let free = (0..limit).filter(|s| !slots.held.contains(s) && !slots.asking.contains(s));
                let many = if tried.is_empty() { 1 } else { PER_REQUEST };
                let asking: Vec<i32> = free.filter(|s| !tried.contains(s)).take(many).collect();
                slots.asking.extend(&asking);
                asking
            };
            if asking.is_empty() {
                return Ok(None);
            }
            // CASE tries the slots in order and stops at the first it gets.
            let tries: String =
                asking.iter().map(|slot| format!(" WHEN pg_try_advisory_lock({key}, {slot}) THEN {slot}")).collect();
            let answer = first_value(client, &format!("SELECT CASE{tries} END")).await;
            let taken = answer.as_ref().ok().and_then(|v| v.as_deref()?.parse::<i32>().ok());
            {
                let mut sites = self.sites();
                let slots = sites.entry(site.to_string()).or_default();
                for slot in &asking {
                    slots.asking.remove(slot);
                }
                slots.held.extend(taken);
            }
            answer?;
            if let Some(slot) = taken {
                return Ok(Some(slot as u32));
            }
            tried.extend(asking);
        }
    }

    async fn give_back(&self, site: &str, slot: i32) {
        let key = site_key(site);
        let unlocked = match self.client().await {
            Ok(client) => first_value(client, &format!("SELECT pg_advisory_unlock({key}, {slot})")).await,
            Err(e) => Err(e),
        };
        if let Err(e) = unlocked {
            let e = self.error(format!("cannot take back slot {slot} of site `{site}`"), e);
            tracing::warn!(error = %e, "a site slot stays taken until this run ends");
            return;
        }
        if let Some(slots) = self.sites().get_mut(site) {
            slots.held.remove(&slot);
        }
    }
}

/// The first column of the first row of `sql`, sent as one simple query (one round trip;
/// only integers drplan computed are ever put into the text).
async fn first_value(client: &Client, sql: &str) -> Result<Option<String>, PgError> {
    let messages = client.simple_query(sql).await?;
    Ok(messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    }))
}

impl SiteSlots for PgSiteSlots {
    fn try_take(&self, site: &str, limit: usize) -> SlotFuture<Option<u32>> {
        let (inner, site) = (self.inner.clone(), site.to_string());
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        Box::pin(async move {
            inner
                .try_take(&site, limit)
                .await
                .map_err(|e| inner.error(format!("cannot give a slot of site `{site}`"), e))
        })
    }

    fn give_back(&self, site: &str, slot: u32) {
        let (inner, site) = (self.inner.clone(), site.to_string());
        // Nobody waits for it: the slot stays this runner's (locally too) until it is back.
        tokio::spawn(async move { inner.give_back(&site, slot as i32).await });
    }
}
