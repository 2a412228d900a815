//! `drplan import asr` and `drplan export asr`: realistic recovery plans in (GET bodies, list
//! bodies, ARM templates), plans out (request bodies, Bicep), exact round trips (a property
//! test over generated plans), and every bad input pointed at.

mod common;

use std::path::Path;

use common::{drplan, transcript};
use drplan::interop::asr::{ActionDetails, GroupKind, Input, Item, PlanAction, PlanGroup, RecoveryPlan, read};
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asr").join(name)
}

/// What a recovery plan's create body is, read by drplan from `text`.
fn arm_of(text: &str, plan: Option<&str>) -> Value {
    let mut input = Input::new(Path::new("in.json"), text.to_string());
    read(&mut input, plan).unwrap_or_else(|| panic!("{:?}", input.problems)).to_arm()
}

/// Fill what import leaves to the user, as a user would.
fn filled(yaml: &str) -> String {
    yaml.replace("provider: TODO-provider", "provider: sim, path: world.json")
        .replace("rpo: TODO", "rpo: 15m")
        .replace("rto: TODO", "rto: 1h")
}

#[test]
fn a_get_body_imports_into_a_plan_that_validates_once_filled_and_exports_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // A relative path: the plan's first comment names it.
    std::fs::copy(fixture("shop_get.json"), dir.path().join("shop_get.json")).unwrap();
    let out = drplan(dir.path()).args(["import", "asr", "shop_get.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let yaml = String::from_utf8(out.stdout.clone()).unwrap();
    insta::assert_snapshot!("asr_import_shop", yaml);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for said in [
        "need a provider, and the plan an RPO and an RTO",
        "runbook action `Swap DNS` became a manual step",
        "script action `Check SQL` runs `C:\\Scripts\\Check-Sql.ps1`",
        "manual action `Warm the cache` has no description",
        "is for `Commit`, which drplan runs no steps in",
        "5 machines in 3 boot groups, 6 actions as steps",
    ] {
        assert!(stderr.contains(said), "stderr says {said:?}: {stderr}");
    }
    // As imported, validation names exactly what is left to fill.
    std::fs::write(dir.path().join("plan.yaml"), &yaml).unwrap();
    let check = drplan(dir.path()).args(["validate", "plan.yaml"]).output().unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", transcript(&check));
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        said.contains("`TODO-provider` is not a provider name") && said.contains("invalid duration `TODO`"),
        "{said}"
    );
    // Filled in, it validates.
    std::fs::write(dir.path().join("plan.yaml"), filled(&yaml)).unwrap();
    let check = drplan(dir.path()).args(["validate", "plan.yaml"]).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", transcript(&check));
    // And goes back to ASR as it came: every group, item, action, filter and order.
    let back = drplan(dir.path()).args(["export", "asr", "plan.yaml"]).output().unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", transcript(&back));
    let exported: Value = serde_json::from_slice(&back.stdout).unwrap();
    let original = std::fs::read_to_string(fixture("shop_get.json")).unwrap();
    assert_eq!(exported, arm_of(&original, None));
}

#[test]
fn bicep_export_declares_the_resource_with_the_vault_as_a_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let out = drplan(dir.path())
        .args(["import", "asr", "--out", "plan.yaml"])
        .arg(fixture("shop_get.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // --out refuses to replace a file unless told to.
    let again = drplan(dir.path())
        .args(["import", "asr", "--out", "plan.yaml"])
        .arg(fixture("shop_get.json"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", transcript(&again));
    let out = drplan(dir.path()).args(["export", "asr", "plan.yaml", "--format", "bicep"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let bicep = String::from_utf8(out.stdout).unwrap();
    assert!(
        bicep.contains(
            "resource recoveryPlan 'Microsoft.RecoveryServices/vaults/replicationRecoveryPlans@2025-08-01' = {"
        )
    );
    assert!(bicep.contains("name: '${vaultName}/shop-rp'"), "{bicep}");
    assert!(bicep.contains("path: 'C:\\\\Scripts\\\\Check-Sql.ps1'"), "{bicep}");
    assert!(bicep.contains("groupType: 'Shutdown'") && bicep.matches("groupType: 'Boot'").count() == 3, "{bicep}");
}

#[test]
fn a_list_body_needs_a_choice_and_a_template_is_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let shop: Value = serde_json::from_str(&std::fs::read_to_string(fixture("shop_get.json")).unwrap()).unwrap();
    let mut other = shop.clone();
    other["name"] = json!("crm-rp");
    std::fs::write(dir.path().join("list.json"), json!({ "value": [shop, other] }).to_string()).unwrap();
    let out = drplan(dir.path()).args(["import", "asr", "list.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 recovery plans in this document: `shop-rp`, `crm-rp`"));
    let out = drplan(dir.path()).args(["import", "asr", "list.json", "--plan", "crm-rpp"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `crm-rp`?"), "{}", transcript(&out));
    let out = drplan(dir.path()).args(["import", "asr", "list.json", "--plan", "CRM-RP"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: crm-rp"));
    // An ARM template: the resource's properties are a create body.
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": { "vaultName": { "type": "string" } },
        "resources": [{
            "type": "Microsoft.RecoveryServices/vaults/replicationRecoveryPlans",
            "apiVersion": "2025-08-01",
            "name": "[concat(parameters('vaultName'), '/shop-rp')]",
            "properties": arm_of(&shop.to_string(), None)["properties"].clone(),
        }]
    });
    std::fs::write(dir.path().join("template.json"), serde_json::to_string_pretty(&template).unwrap()).unwrap();
    let out = drplan(dir.path()).args(["import", "asr", "template.json", "--out", "plan.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let back = drplan(dir.path()).args(["export", "asr", "plan.yaml"]).output().unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", transcript(&back));
    assert_eq!(serde_json::from_slice::<Value>(&back.stdout).unwrap(), arm_of(&shop.to_string(), None));
}

#[test]
fn bad_documents_are_pointed_at_by_json_path_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(fixture("shop_get.json")).unwrap();
    let cases = [
        (
            "\"PlannedFailover\", \"UnplannedFailover\"]",
            "\"PlannedFailover\", \"UnplanedFailover\"]",
            "`properties.groups[1].endGroupActions[0].failoverTypes[1]` is `UnplanedFailover`",
            "did you mean `UnplannedFailover`?",
        ),
        (
            "\"primaryFabricId\"",
            "\"primaryFabricIdx\"",
            "`properties.primaryFabricId` is missing",
            "names its primary and recovery fabrics",
        ),
        (
            "\"groupType\": \"Boot\"",
            "\"groupType\": 7",
            "`properties.groups[2].groupType` must be a string",
            "2025-08-01",
        ),
        (
            "\"replicationProtectedItems\": [],\n        \"startGroupActions\": [\n",
            "\"replicationProtectedItems\": [{\"id\": \"/x/vm1\"}],\n        \"startGroupActions\": [\n",
            "the Shutdown group at `properties.groups[0].replicationProtectedItems` lists machines",
            "move these to a Boot group",
        ),
        (
            "replicationProtectedItems/web-prod-02\"",
            "replicationProtectedItems/WEB-PROD-01\"",
            "is listed twice",
            "without regard to case",
        ),
        ("{\n  \"name\"", "{\n  \"name\" \"x\",", "not JSON", "REST API returns it"),
    ];
    for (old, new, said, help) in cases {
        assert!(original.contains(old), "the fixture has {old:?}");
        std::fs::write(dir.path().join("bad.json"), original.replacen(old, new, 1)).unwrap();
        let out = drplan(dir.path()).args(["import", "asr", "bad.json"]).output().unwrap();
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(out.stdout.is_empty(), "nothing is written: {text}");
        assert!(text.contains(said) && text.contains(help), "{said} / {help}: {text}");
        assert!(text.contains("bad.json:"), "line and column given: {text}");
    }
    std::fs::write(dir.path().join("other.json"), "{\"value\": []}").unwrap();
    let out = drplan(dir.path()).args(["import", "asr", "other.json"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Azure Site Recovery recovery plan found here"));
}

#[test]
fn a_plan_written_for_drplan_exports_with_warnings_for_what_asr_cannot_say() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sim/shop.yaml"),
        dir.path().join("shop.yaml"),
    )
    .unwrap();
    let out = drplan(dir.path()).args(["export", "asr", "shop.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("site `dc1` has no ASR fabric"), "{}", transcript(&out));
    let text = std::fs::read_to_string(dir.path().join("shop.yaml")).unwrap();
    std::fs::write(
        dir.path().join("shop.yaml"),
        format!("{text}asr: {{ primary_fabric_id: /fabrics/dc1, recovery_fabric_id: /fabrics/dc2 }}\n"),
    )
    .unwrap();
    let out = drplan(dir.path()).args(["export", "asr", "shop.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // `cache` runs beside `db` in drplan (no dependencies); ASR serializes it.
    assert!(stderr.contains("group `cache` runs after `db` in ASR"), "{stderr}");
    assert!(stderr.contains("machine `db1` has no `id`"), "{stderr}");
    assert!(stderr.contains("step `smoke`'s arguments are dropped"), "{stderr}");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = body["properties"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2 + 5, "Shutdown, Failover and the five boot groups");
    // `only: [planned, failback]` is a planned failover both ways; `direction: [forward]` one way.
    let dns = &groups[4]["startGroupActions"][0];
    assert_eq!(dns["failoverTypes"], json!(["PlannedFailover"]));
    assert_eq!(groups[6]["endGroupActions"][0]["failoverDirections"], json!(["PrimaryToRecovery"]));
}

// --- the round trip over generated plans ---

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z][A-Za-z0-9 ]{0,20}",
        "[a-z0-9\\-]{1,12}",
        any::<String>().prop_filter("not empty", |s| !s.is_empty() && s.len() < 40),
    ]
}

fn subset(of: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(proptest::sample::select(of), 0..4)
        .prop_map(|v| v.into_iter().map(str::to_string).collect())
}

fn action() -> impl Strategy<Value = PlanAction> {
    let location = prop_oneof![Just("Primary".to_string()), Just("Recovery".to_string())];
    let details = prop_oneof![
        proptest::option::of(text()).prop_map(|description| ActionDetails::Manual { description }),
        (text(), location.clone(), proptest::option::of(prop_oneof![Just("PT10M".to_string()), text()]))
            .prop_map(|(path, location, timeout)| ActionDetails::Script { path, location, timeout }),
        (proptest::option::of(text()), location, proptest::option::of(Just("PT1H".to_string())))
            .prop_map(|(runbook_id, location, timeout)| ActionDetails::Runbook { runbook_id, location, timeout }),
    ];
    (text(), subset(drplan::interop::asr::FAILOVER_TYPES), subset(drplan::interop::asr::DIRECTIONS), details).prop_map(
        |(name, failover_types, failover_directions, details)| PlanAction {
            name,
            failover_types,
            failover_directions,
            details,
        },
    )
}

fn group(kind: GroupKind, first_item: usize) -> impl Strategy<Value = PlanGroup> {
    let items = if kind == GroupKind::Boot { 0..4usize } else { 0..1usize };
    (items, proptest::bool::ANY, proptest::collection::vec(action(), 0..3), proptest::collection::vec(action(), 0..3))
        .prop_map(move |(n, vm, start, end)| PlanGroup {
            kind,
            items: (0..n)
                .map(|i| Item {
                    id: format!("/Subscriptions/s/replicationProtectedItems/Item-{}", first_item + i),
                    virtual_machine_id: vm.then(|| format!("vm-{i}")),
                })
                .collect(),
            start,
            end,
        })
}

fn recovery_plan() -> impl Strategy<Value = RecoveryPlan> {
    let boot = proptest::collection::vec(0..1usize, 0..4).prop_flat_map(|slots| {
        slots.iter().enumerate().map(|(g, _)| group(GroupKind::Boot, g * 10)).collect::<Vec<_>>()
    });
    (
        text(),
        group(GroupKind::Shutdown, 0),
        group(GroupKind::Failover, 0),
        boot,
        proptest::option::of(proptest::sample::select(&["NotApplicable", "Classic", "ResourceManager"][..])),
        proptest::option::of(Just(vec![json!({ "instanceType": "A2A", "primaryZone": "1" })])),
    )
        .prop_map(|(name, shutdown, failover, boot, model, input)| RecoveryPlan {
            name: Some(name),
            primary_fabric_id: "/Subscriptions/s/replicationFabrics/primary".into(),
            primary_fabric_name: None,
            recovery_fabric_id: "Microsoft Azure".into(),
            recovery_fabric_name: None,
            failover_deployment_model: model.map(str::to_string),
            provider_specific_input: input,
            groups: [shutdown, failover].into_iter().chain(boot).collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn import_then_export_gives_every_group_item_action_filter_and_order_back(plan in recovery_plan()) {
        let mut body = plan.to_arm();
        body["name"] = json!(plan.name);
        body["type"] = json!("Microsoft.RecoveryServices/vaults/replicationRecoveryPlans");
        let mut input = Input::new(Path::new("in.json"), body.to_string());
        let read_back = read(&mut input, None).unwrap_or_else(|| panic!("{:?}", input.problems));
        let yaml = drplan::interop::asr::import(&mut input, &read_back, "in.json");
        let loaded = drplan::spec::load_str(Path::new("plan.yaml"), yaml.clone()).unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
        let exported = drplan::interop::asr::export(&loaded.source, &loaded.document);
        let errors: Vec<_> = exported.problems.iter().filter(|p| p.is_error()).collect();
        prop_assert!(errors.is_empty(), "{errors:?}\n{yaml}");
        prop_assert_eq!(exported.plan.unwrap().to_arm(), plan.to_arm(), "{}", yaml);
    }
}
