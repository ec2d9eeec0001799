//! The README's rules table is the registry's: regenerate with `dbhook rules -o markdown`.

use dbhook::cli::{RulesArgs, RulesFormat, print_rules};

#[test]
fn readme_rules_table_matches_the_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = print_rules(&RulesArgs {
        output: RulesFormat::Markdown,
    });
    assert!(
        readme.contains(table.trim_end()),
        "README.md's rules table is out of date: replace it with `dbhook rules -o markdown`"
    );
}

#[test]
fn readme_opens_with_the_quickstart_and_the_test_command() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let head: String = readme.lines().take(60).collect::<Vec<_>>().join("\n");
    for needed in [
        "Run the whole test suite: `scripts/test`",
        "## Quickstart",
        "cargo install --locked --path .",
        "dbhook serve --dev",
        "https://localhost:8443/mutate",
        "dbhook check --complete examples/",
    ] {
        assert!(head.contains(needed), "the README's first 60 lines lack {needed:?}");
    }
    let rust_version = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = ").map(|v| v.trim_matches('"').to_string()))
        .expect("Cargo.toml sets rust-version");
    assert!(
        head.contains(&format!("Rust {rust_version} or newer")),
        "the quickstart names Cargo.toml's rust-version {rust_version}"
    );
    // The Development section keeps the two commands, the test command second.
    let development = &readme[readme.find("## Development").expect("a Development section")..];
    let block = development.split("```").nth(1).expect("a code block under Development");
    let commands: Vec<&str> = block
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .collect();
    assert_eq!(commands, ["cargo run -- serve --dev", "scripts/test"], "{block}");
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.contains("scripts/test"), ".ci/run runs the README's test command");
}
