//! The JSON Schema of the plan document, generated from the types.

use super::document::PlanDocument;

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/plan.schema.json";

/// The schema file drplan writes next to the plans it generates (a lab, a sim estate), so
/// that their `$schema` line points at a file the user has.
pub const SCHEMA_FILE: &str = "plan.schema.json";

/// The plan document's JSON Schema (draft 2020-12), pretty-printed with a trailing newline.
pub fn plan_schema_json() -> String {
    let schema = schemars::schema_for!(PlanDocument);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is always serialisable");
    text.push('\n');
    text
}
