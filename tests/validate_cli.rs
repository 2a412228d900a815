//! `drplan validate`: every rule has a fixture that fails with the right code at the right place.

mod common;

use common::{drplan, fixtures, transcript};
use serde_json::Value;

/// Runs the fixture through `--format json` and the human report; checks the code, line and
/// column of the first diagnostic and snapshots both outputs.
fn check(kind: &str, name: &str, code: &str, line: u64, column: u64) {
    let file = format!("{kind}/{name}.yaml");
    let json = drplan(&fixtures()).args(["validate", "--format", "json", &file]).output().unwrap();
    let expected_exit = if kind == "warning" { 0 } else { 1 };
    assert_eq!(json.status.code(), Some(expected_exit), "{file}: {}", transcript(&json));
    let parsed: Value = serde_json::from_slice(&json.stdout).expect("stdout is JSON");
    let diagnostics = parsed["diagnostics"].as_array().unwrap();
    let found =
        diagnostics.iter().find(|d| d["code"] == code).unwrap_or_else(|| panic!("{file}: no {code} in {parsed:#}"));
    assert_eq!((found["line"].as_u64(), found["column"].as_u64()), (Some(line), Some(column)), "{file}: {found:#}");
    assert_eq!(found["file"], file.as_str());
    assert_eq!(found["severity"], if kind == "warning" { "warning" } else { "error" });

    let human = drplan(&fixtures()).args(["validate", &file]).output().unwrap();
    assert_eq!(human.status.code(), Some(expected_exit));
    insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(kind, transcript(&human).replace(env!("CARGO_MANIFEST_DIR"), "[repo]"));
    });
}

macro_rules! fixtures {
    ($kind:literal: $($name:ident => $code:literal at $line:literal : $col:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check($kind, stringify!($name), $code, $line, $col);
            }
        )*
    };
}

mod invalid {
    use super::check;

    fixtures! { "invalid":
        active_not_protected => "drplan::active_not_protected" at 30:11,
        alternate_is_primary => "drplan::invalid_alternate_location" at 30:26,
        alternate_is_recovery => "drplan::invalid_alternate_location" at 30:26,
        alternate_not_a_site => "drplan::unknown_site" at 30:26,
        dependency_cycle => "drplan::dependency_cycle" at 23:18,
        duplicate_group => "drplan::duplicate_name" at 28:11,
        duplicate_machine => "drplan::duplicate_name" at 21:11,
        duplicate_network_mapping => "drplan::duplicate_network_mapping" at 16:13,
        duplicate_site => "drplan::duplicate_name" at 6:3,
        duplicate_step => "drplan::duplicate_name" at 28:25,
        duplicate_target_ip => "drplan::duplicate_target_ip" at 15:63,
        empty => "drplan::empty_plan" at 1:1,
        empty_freeze => "drplan::empty_script" at 19:28,
        empty_script => "drplan::empty_script" at 27:24,
        invalid_duration => "drplan::invalid_duration" at 10:8,
        invalid_ip => "drplan::invalid_ip" at 20:34,
        invalid_name => "drplan::invalid_name" at 24:11,
        invalid_recovery_point => "drplan::invalid_recovery_point" at 30:19,
        invalid_subnet => "drplan::invalid_subnet" at 16:20,
        invalid_type => "drplan::invalid_type" at 9:8,
        ip_outside_subnet => "drplan::ip_outside_subnet" at 22:34,
        machine_in_two_groups => "drplan::machine_in_two_groups" at 25:22,
        machine_not_in_group => "drplan::machine_not_in_group" at 21:11,
        missing_field => "drplan::missing_field" at 12:5,
        missing_site_setting => "drplan::missing_site_setting" at 5:3,
        multiple_errors => "drplan::unknown_machine" at 25:22,
        only_comments => "drplan::empty_plan" at 1:1,
        same_primary_and_recovery => "drplan::same_primary_and_recovery" at 8:13,
        self_dependency => "drplan::dependency_cycle" at 25:18,
        test_network_not_isolated => "drplan::test_network_not_isolated" at 14:11,
        unknown_field => "drplan::unknown_field" at 24:5,
        unknown_field_script => "drplan::unknown_field" at 27:37,
        unknown_group => "drplan::unknown_group" at 25:18,
        unknown_machine => "drplan::unknown_machine" at 25:16,
        unknown_site => "drplan::unknown_site" at 8:13,
        unknown_site_active => "drplan::unknown_site" at 29:11,
        unknown_step_kind => "drplan::unknown_variant" at 27:9,
        unknown_variant => "drplan::unknown_variant" at 30:8,
        unmapped_network => "drplan::unmapped_network" at 20:24,
        unsupported_version => "drplan::unsupported_version" at 1:10,
        wrong_provider => "drplan::bad_provider_name" at 5:20,
        yaml_syntax => "drplan::yaml_syntax" at 24:6,
        tab_indent => "drplan::yaml_syntax" at 3:1,
        zero_duration => "drplan::invalid_duration" at 9:8,
    }
}

mod warning {
    use super::check;

    fixtures! { "warning":
        script_not_found => "drplan::script_not_found" at 27:25,
        freeze_not_found => "drplan::script_not_found" at 20:16,
        unused_address_map => "drplan::unused_address_map" at 15:51,
        partial_subnet_retained => "drplan::partial_subnet_retained" at 16:20,
    }
}

#[test]
fn every_fixture_has_a_test() {
    let source = include_str!("validate_cli.rs");
    for kind in ["invalid", "warning"] {
        for entry in std::fs::read_dir(fixtures().join(kind)).unwrap() {
            let name = entry.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned();
            assert!(source.contains(&format!("        {name} => ")), "fixture {kind}/{name}.yaml has no test");
        }
    }
}

#[test]
fn multiple_errors_are_all_reported_in_one_run() {
    let out =
        drplan(&fixtures()).args(["validate", "--format", "json", "invalid/multiple_errors.yaml"]).output().unwrap();
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> =
        parsed["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["drplan::unknown_site", "drplan::invalid_duration", "drplan::unknown_machine"]);
}

#[test]
fn example_plans_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut plans: Vec<String> = std::fs::read_dir(root.join("plans"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    plans.sort();
    assert!(plans.len() >= 3, "expected at least three example plans, found {plans:?}");
    let out = drplan(root).arg("validate").args(&plans).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}

#[test]
fn several_files_in_one_run_report_each() {
    let out = drplan(&fixtures())
        .args(["validate", "valid/minimal.yaml", "invalid/unknown_site.yaml", "warning/unused_address_map.yaml"])
        .output()
        .unwrap();
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn missing_file_is_a_diagnostic() {
    let out = drplan(&fixtures()).args(["validate", "nope.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
    let json = drplan(&fixtures()).args(["validate", "--format", "json", "nope.yaml"]).output().unwrap();
    let parsed: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["diagnostics"][0]["code"], "drplan::file_not_found");
}

#[test]
fn bad_flag_exits_1_with_a_hint() {
    let out = drplan(&fixtures()).args(["validate", "--fromat", "json", "valid/minimal.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--format"), "{stderr}");
}

#[test]
fn directory_instead_of_file() {
    let out = drplan(&fixtures()).args(["validate", "valid"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is a directory"));
}

#[test]
fn plans_validated_together_may_not_split_a_retained_subnet() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::fs::read_to_string(fixtures().join("warning/partial_subnet_retained.yaml")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), plan.replace("name: shop", "name: shop-a")).unwrap();
    // The other half of the subnet, from another plan that also keeps its addresses.
    let b =
        plan.replace("name: shop", "name: shop-b").replace("10.0.0.10", "10.0.0.30").replace("10.0.0.20", "10.0.0.40");
    std::fs::write(dir.path().join("b.yaml"), b.replace("source_subnet: 10.0.0.0/24", "source_subnet: 10.0.0.0/25"))
        .unwrap();
    let out = drplan(dir.path()).args(["validate", "--format", "json", "a.yaml", "b.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let split = parsed["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "drplan::subnet_split").unwrap();
    assert_eq!(split["file"], "b.yaml");
    assert_eq!((split["line"].as_u64(), split["column"].as_u64()), (Some(16), Some(20)));
    assert!(split["help"].as_str().unwrap().contains("a.yaml"), "{split}");
    // Each alone only warns: one plan cannot see the other.
    let out = drplan(dir.path()).args(["validate", "b.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}
