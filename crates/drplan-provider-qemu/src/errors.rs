//! Provider errors of each kind, with what drplan shows the user.

use drplan_plugin::provider_error;
use drplan_protocol::rpc::{ErrorKind, RpcError};

pub type Answer<T> = Result<T, RpcError>;

pub fn failed(message: impl Into<String>) -> RpcError {
    provider_error(ErrorKind::Failed, message)
}

pub fn failed_hint(message: impl Into<String>, hint: &str) -> RpcError {
    with(provider_error(ErrorKind::Failed, message), |d| d.hint = Some(hint.into()))
}

pub fn setup(message: impl Into<String>, hint: &str) -> RpcError {
    with(provider_error(ErrorKind::Setup, message), |d| d.hint = Some(hint.into()))
}

pub fn unreachable(site: &str, message: impl Into<String>) -> RpcError {
    with(provider_error(ErrorKind::Unreachable, message), |d| d.site = Some(site.into()))
}

pub fn not_found(machine: &str, site: &str) -> RpcError {
    with(provider_error(ErrorKind::NotFound, format!("`{machine}` has no copy at `{site}`")), |d| {
        d.machine = Some(machine.into());
        d.site = Some(site.into());
    })
}

pub fn verification(message: impl Into<String>, hint: &str) -> RpcError {
    with(provider_error(ErrorKind::Verification, message), |d| d.hint = Some(hint.into()))
}

pub fn cancelled() -> RpcError {
    provider_error(ErrorKind::Cancelled, "cancelled")
}

fn with(mut error: RpcError, change: impl FnOnce(&mut drplan_protocol::rpc::ErrorData)) -> RpcError {
    if let Some(data) = error.data.as_deref_mut() {
        change(data);
    }
    error
}

/// An I/O error on a path, as a failure that names it.
pub fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> RpcError {
    failed(format!("{what} {}: {e}", path.display()))
}
