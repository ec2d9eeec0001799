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
fn readme_opens_with_the_run_and_test_commands() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let head: String = readme.lines().take(20).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo run --release -- serve --dev"));
    assert!(head.contains("scripts/test"));
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.contains("scripts/test"), ".ci/run runs the README's test command");
}
