//! Errors as the protocol carries them.

use drplan_protocol::rpc::{ErrorData, ErrorKind, RpcError, code};

/// A provider error of `kind`: drplan decides retries, diagnostics and trust by the kind.
/// Add `site`, `machine`, `hint` or `retry_after_ms` to the data where they apply.
pub fn provider_error(kind: ErrorKind, message: impl Into<String>) -> RpcError {
    let code = if kind == ErrorKind::Cancelled { code::REQUEST_CANCELLED } else { code::PROVIDER_ERROR };
    RpcError {
        code,
        message: message.into(),
        data: Some(Box::new(ErrorData { kind, retry_after_ms: None, site: None, machine: None, hint: None })),
    }
}

/// The answer to a method the plugin does not implement (`-32601`).
pub fn not_implemented(method: &str) -> RpcError {
    RpcError { code: code::METHOD_NOT_FOUND, message: format!("no method `{method}`"), data: None }
}
