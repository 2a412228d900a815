//! The contract suite against the built-in providers: both follow the same written rules.

use drplan::contract::suite::{self, Fixture};

fn conforms(fixture: &dyn Fixture) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let results = runtime.block_on(suite::run(fixture, None));
    let table = suite::table(&fixture.name(), &results);
    println!("{table}");
    assert_eq!(results.len(), suite::scenario_names().len());
    assert!(results.iter().all(|r| r.passed), "{table}");
}

#[test]
fn sim_follows_the_contract() {
    conforms(&drplan::providers::sim::fixture::SimFixture);
}

#[test]
fn local_follows_the_contract() {
    conforms(&drplan::providers::local::fixture::LocalFixture);
}
