//! Hostile and damaged inputs: the loader and validator never panic or hang, and every
//! failure is a diagnostic with a code.

mod common;

use std::path::Path;

use common::{drplan, transcript};
use drplan::spec::load_str;
use drplan::validate::validate;
use proptest::prelude::*;

const PLANS: [&str; 3] = [
    include_str!("../plans/payments.yaml"),
    include_str!("../plans/erp-alternate.yaml"),
    include_str!("../plans/platform-dag.yaml"),
];

/// Load + validate in-process; returns the diagnostic codes (empty when valid).
fn codes_for(text: String) -> Vec<String> {
    match load_str(Path::new("plans/mutated.yaml"), text) {
        Ok(loaded) => {
            let v = validate(loaded);
            let codes: Vec<String> = v.diagnostics.iter().map(|d| d.code_str()).collect();
            assert_eq!(v.model.is_some(), !v.has_errors(), "a model exists exactly when there is no error");
            for d in &v.diagnostics {
                // Every diagnostic must point somewhere real in the file.
                let record = d.record();
                assert!(record.line.is_some() && record.column.is_some(), "{record:?}");
            }
            codes
        }
        Err(d) => {
            assert!(d.code_str().starts_with("drplan::"), "{d:?}");
            vec![d.code_str()]
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteRange(usize, usize),
    Insert(usize, &'static str),
    FlipByte(usize, u8),
    Truncate(usize),
    SwapLines(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens = prop::sample::select(vec![
        ":",
        "- ",
        "[",
        "]",
        "{",
        "}",
        "\n",
        "  ",
        "\t",
        "&a ",
        "*a",
        "!!str ",
        "'",
        "\"",
        "#",
        "---\n",
        "? ",
        "<<: *a\n",
        "~",
        "null",
        "depends_on: [data]\n",
        "machines: [x]\n",
        "\u{feff}",
        "é",
        "\\",
        "|\n",
        ">-\n",
    ]);
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Mutation::DeleteRange(a, n)),
        (any::<usize>(), tokens).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::FlipByte(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), 0usize..200).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
    ]
}

fn apply(text: &str, m: &Mutation) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let len = bytes.len().max(1);
    match *m {
        Mutation::DeleteRange(a, n) => {
            let a = a % len;
            let b = (a + n).min(bytes.len());
            bytes.drain(a.min(b)..b);
        }
        Mutation::Insert(a, t) => {
            let a = a % len;
            bytes.splice(a..a, t.bytes());
        }
        Mutation::FlipByte(a, b) => {
            let a = a % len;
            if a < bytes.len() {
                bytes[a] = b;
            }
        }
        Mutation::Truncate(a) => bytes.truncate(a % len),
        Mutation::SwapLines(a, b) => {
            let mut lines: Vec<&[u8]> = text.as_bytes().split(|&c| c == b'\n').collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            bytes = lines.join(&b'\n');
        }
        Mutation::Duplicate(a, n) => {
            let a = a % len;
            let b = (a + n).min(bytes.len());
            let copy = bytes[a..b].to_vec();
            bytes.splice(b..b, copy);
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn mutated_plans_never_panic(plan in 0usize..3, mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut text = PLANS[plan].to_string();
        for m in &mutations {
            let bytes = apply(&text, m);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        codes_for(text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        codes_for(text);
    }
}

#[test]
fn the_examples_are_valid_in_process() {
    for plan in PLANS {
        assert_eq!(codes_for(plan.to_string()), Vec::<String>::new());
    }
}

fn run_on(bytes: &[u8]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.yaml"), bytes).unwrap();
    drplan(dir.path())
        .args(["validate", "--format", "json", "input.yaml"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

fn first_code(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", transcript(out));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    parsed["diagnostics"][0]["code"].as_str().unwrap().to_string()
}

#[test]
fn binary_garbage_is_not_utf8() {
    // A deterministic pseudo-random byte soup (xorshift), not valid UTF-8.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    assert_eq!(first_code(&run_on(&bytes)), "drplan::not_utf8");
}

#[test]
fn a_50_mb_file_is_refused_quickly() {
    let line = b"# padding padding padding padding padding padding padding padding\n";
    let bytes: Vec<u8> = line.iter().copied().cycle().take(50 * 1024 * 1024).collect();
    assert_eq!(first_code(&run_on(&bytes)), "drplan::file_too_large");
}

#[test]
fn deeply_nested_yaml_is_too_complex() {
    let deep = format!("version: 1\nname: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let code = first_code(&run_on(deep.as_bytes()));
    assert!(["drplan::too_complex", "drplan::invalid_type"].contains(&code.as_str()), "{code}");
    let mut block = String::from("version: 1\nsites:\n");
    for depth in 0..5_000 {
        block.push_str(&"  ".repeat(depth + 1));
        block.push_str(&format!("k{depth}:\n"));
    }
    let code = first_code(&run_on(block.as_bytes()));
    assert!(code.starts_with("drplan::"), "{code}");
}

#[test]
fn alias_bombs_are_refused() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..30 {
        let p = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let code = first_code(&run_on(bomb.as_bytes()));
    assert!(code.starts_with("drplan::"), "{code}");
}

#[test]
fn a_single_bad_byte_points_at_its_line() {
    let mut bytes = PLANS[0].as_bytes().to_vec();
    let at = PLANS[0].find("machines:").unwrap();
    bytes[at] = 0xff;
    let out = run_on(&bytes);
    assert_eq!(first_code(&out), "drplan::not_utf8");
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let line = PLANS[0][..at].lines().count() + 1;
    assert_eq!(parsed["diagnostics"][0]["line"], line);
}
