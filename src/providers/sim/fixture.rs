//! Test estates of the sim provider for the contract suite: a world at a fixed clock whose
//! machines write as the clock advances.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::generate::{WorldOptions, world_for};
use super::{SimProvider, WorldStore};
use crate::contract::Provider;
use crate::contract::suite::{BoxFuture, Estate, Fixture, ScratchDir, estate_model, estate_plan};

/// Makes sim estates.
pub struct SimFixture;

struct SimEstate {
    provider: Arc<SimProvider>,
    _dir: ScratchDir,
}

impl Fixture for SimFixture {
    fn name(&self) -> String {
        "sim".into()
    }

    fn create(&self, machines: usize) -> BoxFuture<'_, Result<Box<dyn Estate>, String>> {
        Box::pin(async move {
            let dir = ScratchDir::new("drplan-contract-sim").map_err(|e| e.to_string())?;
            let model = estate_model(&dir.0, &estate_plan("sim", ["world.json"; 3], machines))?;
            let options = WorldOptions {
                seed: 7,
                protected: false,
                clock: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
                time_scale: 0.0,
            };
            WorldStore::new(&dir.0.join("world.json")).save(&world_for(&model, &options)).map_err(|e| e.to_string())?;
            let provider = Arc::new(SimProvider::open(&model).map_err(|e| e.to_string())?);
            Ok(Box::new(SimEstate { provider, _dir: dir }) as Box<dyn Estate>)
        })
    }
}

impl Estate for SimEstate {
    fn provider(&self) -> Arc<dyn Provider> {
        self.provider.clone()
    }

    fn write<'a>(&'a self, _machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        // Running machines write as time passes.
        Box::pin(async move {
            self.provider.advance(Duration::from_secs(60));
            Ok(())
        })
    }

    fn set_reachable<'a>(&'a self, site: &'a str, reachable: bool) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.provider.set_reachable(site, reachable) })
    }

    fn content<'a>(&'a self, machine: &'a str, site: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.provider
                .generation(machine, site)
                .map(|g| format!("generation {g}"))
                .ok_or_else(|| format!("{machine} has no copy at {site}"))
        })
    }
}
