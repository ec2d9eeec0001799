//! docs/rules.md stays in step with the rule registry and the default policy.

use dbhook::rules::CATALOG;

const BEGIN: &str = "<!-- BEGIN dbhook rules -o markdown -->\n";
const END: &str = "<!-- END dbhook rules -o markdown -->";

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md")).expect("docs/rules.md exists")
}

/// The text of the `### `id`` section, up to the next heading.
fn section<'a>(doc: &'a str, id: &str) -> &'a str {
    let heading = format!("### `{id}`\n");
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/rules.md has no section {heading:?}"));
    let body = &doc[start + heading.len()..];
    let end = body.find("\n#").unwrap_or(body.len());
    &body[..end]
}

#[test]
fn the_rules_table_is_what_dbhook_rules_prints() {
    let out = crate::cli_support::command()
        .args(["rules", "-o", "markdown"])
        .env_remove("DBHOOK_OUTPUT")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let doc = doc();
    let start = doc.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = doc.find(END).expect("end marker");
    assert_eq!(
        &doc[start..end],
        printed,
        "docs/rules.md is stale: paste the output of `dbhook rules -o markdown` between the markers"
    );
}

#[test]
fn every_rule_has_a_section_with_its_default_why_and_parameters() {
    let doc = doc();
    let policy: serde_json::Value = serde_yaml_ng::from_str(dbhook::policy::DEFAULT_POLICY_YAML).unwrap();
    for r in CATALOG {
        let text = section(&doc, r.id);
        let default = format!("**Default:** `{}`.", r.default_action.as_str());
        assert!(text.contains(&default), "{}: section lacks {default:?}", r.id);
        assert!(text.contains("**Why:**"), "{}: section lacks a **Why:**", r.id);
        assert!(
            text.contains("**Parameters:**"),
            "{}: section lacks **Parameters:**",
            r.id
        );
        // Every parameter of the default policy is documented in the rule's section.
        let params = policy["rules"][r.id]
            .as_object()
            .expect("the default policy lists every rule");
        for key in params
            .keys()
            .filter(|k| !matches!(k.as_str(), "action" | "allowExemption"))
        {
            assert!(
                text.contains(&format!("`{key}`")),
                "{}: parameter {key} is not documented",
                r.id
            );
        }
    }
    // No section for a rule that does not exist.
    for line in doc.lines().filter(|l| l.starts_with("### `")) {
        let id = line.trim_start_matches("### `").trim_end_matches('`');
        assert!(
            CATALOG.iter().any(|r| r.id == id),
            "docs/rules.md documents unknown rule {id}"
        );
    }
}
