//! Schema-only types: the JSON Schema shape of fields that are held as spanned strings.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A name: letters, digits, `_`, `-` and `.`, starting with a letter or digit.
pub struct Name;

/// The pattern every plan name (site, machine, group, network, step) must match.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$";

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": NAME_PATTERN,
            "description": "A name: letters, digits, '_', '-' and '.', starting with a letter or digit, at most 63 characters.",
        })
    }
}

/// A duration such as `30s`, `5m`, `1h 30m`, `14days`.
pub struct DurationText;

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^\\s*[0-9]+\\s*[A-Za-z]+(\\s*[0-9]+\\s*[A-Za-z]+)*\\s*$",
            "description": "A duration: a number and a unit, repeated (e.g. `90s`, `5m`, `1h 30m`, `14days`).",
            "examples": ["30s", "5m", "1h 30m"],
        })
    }
}

/// An IPv4 or IPv6 address.
pub struct IpText;

impl JsonSchema for IpText {
    fn schema_name() -> Cow<'static, str> {
        "IpAddress".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "anyOf": [{ "format": "ipv4" }, { "format": "ipv6" }],
            "description": "An IPv4 or IPv6 address.",
        })
    }
}

/// A subnet in CIDR notation.
pub struct Cidr;

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9A-Fa-f.:]+/[0-9]{1,3}$",
            "description": "A subnet in CIDR notation, e.g. `10.1.0.0/24`.",
        })
    }
}

/// `latest`, `latest-app-consistent`, `latest-processed` or an RFC 3339 time.
pub struct RecoveryPointText;

impl JsonSchema for RecoveryPointText {
    fn schema_name() -> Cow<'static, str> {
        "RecoveryPoint".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Which recovery point to use: the latest, the latest app-consistent, the latest processed, or the newest point at or before an RFC 3339 time.",
            "anyOf": [
                { "type": "string", "enum": ["latest", "latest-app-consistent", "latest-processed"] },
                { "type": "string", "format": "date-time" },
            ],
        })
    }
}
