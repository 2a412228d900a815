//! The conformance kit's side of a plugin (`drplan provider test -- ARGV`): each test estate
//! is a fresh plugin process that made the estate itself (`test/createEstate`) and acts as the
//! outside world on it (`test/write`, `test/setReachable`, `test/content`).

use std::sync::Arc;
use std::time::Duration;

use drplan_protocol::rpc::{ContentParams, CreateEstateParams, MachineParams, OpenResult, ReachableParams, method};

use super::client::{CallError, Client, Launch};
use super::provider::{PluginProvider, start};
use crate::contract::Provider;
use crate::contract::suite::{BoxFuture, Estate, Fixture};

const HOOK: Duration = Duration::from_secs(300);

pub struct PluginFixture {
    pub launch: Launch,
}

struct PluginEstate {
    client: Arc<Client>,
    provider: Arc<PluginProvider>,
}

impl Fixture for PluginFixture {
    fn name(&self) -> String {
        self.launch.argv.join(" ")
    }

    fn create(&self, machines: usize) -> BoxFuture<'_, Result<Box<dyn Estate>, String>> {
        Box::pin(async move {
            let (client, mut hello) = start(&self.launch).await.map_err(|e| e.to_string())?;
            let created: OpenResult = client
                .call(method::TEST_CREATE_ESTATE, &CreateEstateParams { machines }, HOOK)
                .await
                .map_err(|e| describe(e, "test/createEstate"))?;
            if let Some(capabilities) = created.capabilities {
                hello.capabilities = capabilities;
            }
            let client = Arc::new(client);
            let provider = PluginProvider::on(client.clone(), hello).await.map_err(|e| e.to_string())?;
            Ok(Box::new(PluginEstate { client, provider: Arc::new(provider) }) as Box<dyn Estate>)
        })
    }
}

fn describe(error: CallError, call: &str) -> String {
    match error {
        CallError::Rpc(e) => format!("{call}: {}", e.message),
        CallError::Plugin(e) => e.to_string(),
    }
}

impl Estate for PluginEstate {
    fn provider(&self) -> Arc<dyn Provider> {
        self.provider.clone()
    }

    fn write<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let params = MachineParams { machine: machine.to_string() };
            self.client.call(method::TEST_WRITE, &params, HOOK).await.map_err(|e| describe(e, method::TEST_WRITE))
        })
    }

    fn set_reachable<'a>(&'a self, site: &'a str, reachable: bool) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let params = ReachableParams { site: site.to_string(), reachable };
            self.client
                .call(method::TEST_SET_REACHABLE, &params, HOOK)
                .await
                .map_err(|e| describe(e, method::TEST_SET_REACHABLE))
        })
    }

    fn content<'a>(&'a self, machine: &'a str, site: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let params = ContentParams { machine: machine.to_string(), site: site.to_string() };
            self.client.call(method::TEST_CONTENT, &params, HOOK).await.map_err(|e| describe(e, method::TEST_CONTENT))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.client.shutdown(HOOK))
    }
}
