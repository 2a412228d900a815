//! Taking a recovery point of every protected machine now (only what changed moves).

use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::error::Failure;
use super::workspace::Held;
use crate::contract::ProviderOp;

/// One machine's new point, or why it could not be taken.
#[derive(Debug, Clone, Serialize)]
pub struct PointTaken {
    pub machine: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_transferred: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Held<'_> {
    /// A point of every machine that replicates from its live copy, `parallelism` at once;
    /// by machine name. Empty when nothing is protected yet.
    pub async fn replicate(&self, parallelism: usize) -> Result<Vec<PointTaken>, Failure> {
        // Taking points prunes old ones: only the plan that manages the machines may.
        self.claim().await?;
        let provider = self.provider()?;
        let inventory = provider.inventory().await?;
        let ops: Vec<ProviderOp> = inventory
            .machines
            .iter()
            .filter_map(|(name, m)| {
                let r = m.replication.as_ref()?;
                (m.active_site.as_deref() == Some(r.from.as_str())).then(|| ProviderOp::TakePoint {
                    machine: name.clone(),
                    from: r.from.clone(),
                    to: r.to.clone(),
                })
            })
            .collect();
        let limit = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
        let mut tasks = JoinSet::new();
        for op in ops {
            let (provider, limit) = (provider.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let result = provider.execute(&op, CancellationToken::new()).await;
                (op.machine().to_string(), result)
            });
        }
        let mut taken = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (machine, result) = match joined {
                Ok((machine, result)) => (machine, result.map_err(|e| e.to_string())),
                Err(e) => (String::new(), Err(format!("the replication task failed: {e}"))),
            };
            let point = match result {
                Ok(outcome) => {
                    tracing::info!(machine = %machine, point = outcome.point, bytes = outcome.bytes_transferred, "recovery point taken");
                    PointTaken {
                        machine,
                        point: outcome.point,
                        bytes_transferred: outcome.bytes_transferred,
                        summary: Some(outcome.summary),
                        error: None,
                    }
                }
                Err(error) => {
                    tracing::error!(machine = %machine, error = %error, "recovery point failed");
                    PointTaken { machine, point: None, bytes_transferred: None, summary: None, error: Some(error) }
                }
            };
            taken.push(point);
        }
        provider.flush().await?;
        taken.sort_by(|a, b| a.machine.cmp(&b.machine));
        Ok(taken)
    }
}
