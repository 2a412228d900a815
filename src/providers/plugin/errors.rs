//! Provider errors on the wire and back: the kind decides retries and diagnostics on both
//! sides, so it survives the trip.

use std::time::Duration;

use drplan_protocol::rpc::{ErrorData, ErrorKind, RpcError, code};

use crate::contract::ProviderError;

/// A provider error as a plugin (or `drplan provider serve`) reports it.
pub fn to_rpc(error: &ProviderError) -> RpcError {
    let data = |kind| ErrorData { kind, retry_after_ms: None, site: None, machine: None, hint: None };
    let (kind_data, message) = match error {
        ProviderError::Setup { message, help } => {
            (ErrorData { hint: Some(help.clone()), ..data(ErrorKind::Setup) }, message.clone())
        }
        ProviderError::Unreachable { site, reason } => {
            (ErrorData { site: Some(site.clone()), ..data(ErrorKind::Unreachable) }, reason.clone())
        }
        ProviderError::Failed { message } => (data(ErrorKind::Failed), message.clone()),
        ProviderError::Throttled { retry_after } => (
            ErrorData { retry_after_ms: Some(retry_after.as_millis() as u64), ..data(ErrorKind::Transient) },
            error.to_string(),
        ),
        ProviderError::TimedOut { .. } => (data(ErrorKind::Failed), error.to_string()),
        ProviderError::NotFound { machine, site } => (
            ErrorData { machine: Some(machine.clone()), site: Some(site.clone()), ..data(ErrorKind::NotFound) },
            error.to_string(),
        ),
        ProviderError::Verification { message } => (data(ErrorKind::Verification), message.clone()),
        ProviderError::Cancelled => (data(ErrorKind::Cancelled), "cancelled".into()),
    };
    let code = if kind_data.kind == ErrorKind::Cancelled { code::REQUEST_CANCELLED } else { code::PROVIDER_ERROR };
    RpcError { code, message, data: Some(Box::new(kind_data)) }
}

/// A plugin's error as drplan's own. Errors without a kind are failures.
pub fn from_rpc(plugin: &str, error: RpcError) -> ProviderError {
    let Some(data) = error.data else {
        return match error.code {
            code::METHOD_NOT_FOUND => ProviderError::setup(
                format!("plugin `{plugin}` does not implement this call: {}", error.message),
                "the plugin is older than the protocol version it announced; update it",
            ),
            code::REQUEST_CANCELLED => ProviderError::Cancelled,
            _ => ProviderError::failed(error.message),
        };
    };
    let data = *data;
    match data.kind {
        ErrorKind::Transient => {
            ProviderError::Throttled { retry_after: Duration::from_millis(data.retry_after_ms.unwrap_or(1000)) }
        }
        ErrorKind::Unreachable => {
            ProviderError::Unreachable { site: data.site.unwrap_or_else(|| "?".into()), reason: error.message }
        }
        ErrorKind::NotFound => ProviderError::NotFound {
            machine: data.machine.unwrap_or_else(|| "?".into()),
            site: data.site.unwrap_or_else(|| "?".into()),
        },
        ErrorKind::Verification => ProviderError::Verification { message: error.message },
        ErrorKind::Setup => ProviderError::setup(
            error.message,
            data.hint.unwrap_or_else(|| format!("see plugin `{plugin}`'s documentation")),
        ),
        ErrorKind::Cancelled => ProviderError::Cancelled,
        ErrorKind::Failed => match data.hint {
            Some(hint) => ProviderError::failed(format!("{} (hint: {hint})", error.message)),
            None => ProviderError::failed(error.message),
        },
    }
}
