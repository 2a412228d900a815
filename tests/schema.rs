//! The committed JSON Schema is what `drplan schema` prints, and the example plans satisfy it.

mod common;

use std::path::Path;

use common::drplan;

const REGENERATE: &str = "cargo run -q -- schema > schemas/plan.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_up_to_date() {
    let committed = std::fs::read_to_string(root().join("schemas/plan.schema.json"))
        .unwrap_or_else(|e| panic!("schemas/plan.schema.json is missing ({e}); run `{REGENERATE}`"));
    let generated = drplan::spec::schema::plan_schema_json();
    assert!(
        committed == generated,
        "schemas/plan.schema.json is stale; regenerate it with `{REGENERATE}` and commit the result"
    );
    let out = drplan(root()).arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), generated);
}

#[test]
fn schema_is_draft_2020_12() {
    let schema: serde_json::Value = serde_json::from_str(&drplan::spec::schema::plan_schema_json()).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["additionalProperties"], false);
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&drplan::spec::schema::plan_schema_json()).unwrap();
    jsonschema::options().should_validate_formats(true).build(&schema).expect("the schema compiles")
}

fn as_json(path: &Path) -> serde_json::Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn example_plans_satisfy_the_schema() {
    let validator = validator();
    for entry in std::fs::read_dir(root().join("plans")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let errors: Vec<String> = validator.iter_errors(&as_json(&path)).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        }
    }
}

#[test]
fn schema_rejects_what_the_loader_rejects() {
    let validator = validator();
    for name in ["unknown_field", "unknown_variant", "wrong_provider", "unknown_step_kind", "missing_field"] {
        let path = root().join(format!("tests/fixtures/invalid/{name}.yaml"));
        assert!(!validator.is_valid(&as_json(&path)), "{name} should fail the schema too");
    }
}
