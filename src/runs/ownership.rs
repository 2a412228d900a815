//! One plan manages a machine at a time: a run claims its plan's machines before it changes
//! anything, and a plan reports the machines another plan's state already manages.

use super::error::Failure;
use super::workspace::Held;
use crate::contract::{Claimant, ForeignClaim};

impl Held<'_> {
    /// This plan's state, as the owner of its machines.
    pub fn claimant(&self) -> Claimant {
        Claimant {
            plan: self.model().name.clone(),
            lineage: self.state.lineage.clone(),
            state: self.state.claims_as.clone().unwrap_or_else(|| self.workspace.store.identity()),
            host: crate::os::host_name(),
        }
    }

    /// Claim the plan's machines (letting go of those it no longer has); refused while
    /// another plan manages one of them.
    pub async fn claim(&self) -> Result<(), Failure> {
        let me = self.claimant();
        Ok(self.provider()?.claim(&me).await?)
    }

    /// The plan's machines that another plan's state manages.
    pub async fn foreign_claims(&self) -> Result<Vec<ForeignClaim>, Failure> {
        let me = self.claimant();
        Ok(self.provider()?.claims(&me).await?)
    }
}
