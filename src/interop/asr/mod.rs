//! Azure Site Recovery recovery plans in and out: `drplan import asr` reads what the REST
//! API (2025-08-01) returns or an ARM template holds and writes a plan document;
//! `drplan export asr` writes a plan back as a create request body or Bicep.

mod bicep;
mod error;
mod export;
mod import;
mod json_index;
mod model;
mod names;
mod read;
mod vocabulary;

pub use bicep::resource as bicep_resource;
pub use error::AsrError;
pub use export::{Exported, export};
pub use import::{TODO_DURATION, TODO_PROVIDER, import, parse_timeout};
pub use model::{ActionDetails, GroupKind, Item, PlanAction, PlanGroup, RecoveryPlan};
pub use read::{Input, read};
pub use vocabulary::{DIRECTIONS, FAILOVER_TYPES};

/// The API version drplan reads and writes.
pub const API_VERSION: &str = "2025-08-01";
