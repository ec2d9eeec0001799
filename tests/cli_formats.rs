//! `dbhook check` for CI systems (JUnit XML, GitHub workflow commands), `--namespace`, notes
//! in JSON and SARIF, per-subcommand output variables, and YAML read as kubectl reads it.

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;
use roxmltree::{Document, Node};
use serde_json::Value;

use crate::cli_support::{ROOT, dbhook, stderr, stdout};

const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// A validator for the subset of XML Schema that the vendored JUnit schema uses: global and
/// local element declarations and refs, named and inline complex types (mixed or not),
/// sequence and choice with min/maxOccurs, attributes with `use="required"`, and simple
/// types restricted by a pattern. Anything else in the schema fails the test rather than
/// being skipped.
struct Schema<'a> {
    elements: HashMap<&'a str, Node<'a, 'a>>,
    complex: HashMap<&'a str, Node<'a, 'a>>,
    patterns: HashMap<&'a str, Regex>,
}

fn xs<'a>(node: Node<'a, 'a>, name: &str) -> impl Iterator<Item = Node<'a, 'a>> {
    let name = name.to_string();
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().namespace() == Some(XS) && n.tag_name().name() == name)
}

impl<'a> Schema<'a> {
    fn new(doc: &'a Document<'a>) -> Schema<'a> {
        let root = doc.root_element();
        let mut schema = Schema {
            elements: HashMap::new(),
            complex: HashMap::new(),
            patterns: HashMap::new(),
        };
        for e in xs(root, "element") {
            schema.elements.insert(e.attribute("name").unwrap(), e);
        }
        for t in xs(root, "complexType") {
            schema.complex.insert(t.attribute("name").unwrap(), t);
        }
        for t in xs(root, "simpleType") {
            let pattern = xs(t, "restriction")
                .flat_map(|r| xs(r, "pattern"))
                .next()
                .and_then(|p| p.attribute("value"))
                .expect("only pattern restrictions are supported");
            schema.patterns.insert(
                t.attribute("name").unwrap(),
                Regex::new(&format!("^(?:{pattern})$")).unwrap(),
            );
        }
        schema
    }

    /// The element declaration a particle stands for (following `ref`).
    fn declaration(&self, particle: Node<'a, 'a>) -> Node<'a, 'a> {
        match particle.attribute("ref") {
            Some(r) => self.elements[r],
            None => particle,
        }
    }

    /// Regex over `<name>` tokens for a content model, and the declarations it names.
    fn model(&self, particle: Node<'a, 'a>, decls: &mut HashMap<String, Node<'a, 'a>>) -> String {
        let kind = particle.tag_name().name();
        let inner = match kind {
            "element" => {
                let decl = self.declaration(particle);
                let name = decl.attribute("name").unwrap().to_string();
                let token = format!("<{}>", regex::escape(&name));
                decls.insert(name, decl);
                token
            }
            "sequence" => particle
                .children()
                .filter(Node::is_element)
                .map(|c| self.model(c, decls))
                .collect::<String>(),
            "choice" => {
                let alts: Vec<String> = particle
                    .children()
                    .filter(Node::is_element)
                    .map(|c| self.model(c, decls))
                    .collect();
                alts.join("|")
            }
            other => panic!("unsupported particle xs:{other}"),
        };
        let min = particle.attribute("minOccurs").unwrap_or("1");
        let max = match particle.attribute("maxOccurs").unwrap_or("1") {
            "unbounded" => String::new(),
            m => m.to_string(),
        };
        format!("(?:{inner}){{{min},{max}}}")
    }

    fn validate(&self, node: Node, decl: Node<'a, 'a>, path: &str, errors: &mut Vec<String>) {
        let path = format!("{path}/{}", node.tag_name().name());
        let ty = match decl.attribute("type") {
            Some("xs:string") => {
                if node.children().any(|c| c.is_element()) || node.attributes().len() > 0 {
                    errors.push(format!("{path}: a simple string element holds elements or attributes"));
                }
                return;
            }
            Some(named) => self.complex[named],
            None => xs(decl, "complexType").next().expect("inline complexType"),
        };
        let mut declared = HashMap::new();
        for a in xs(ty, "attribute") {
            let name = a.attribute("name").unwrap();
            declared.insert(name, a);
            if a.attribute("use") == Some("required") && node.attribute(name).is_none() {
                errors.push(format!("{path}: required attribute {name} missing"));
            }
        }
        for attr in node.attributes() {
            match declared.get(attr.name()) {
                None => errors.push(format!("{path}: attribute {} not allowed", attr.name())),
                Some(a) => match a.attribute("type") {
                    Some("xs:string") | None => {}
                    Some(t) => {
                        if !self.patterns[t].is_match(attr.value()) {
                            errors.push(format!(
                                "{path}: attribute {}={:?} is not a {t}",
                                attr.name(),
                                attr.value()
                            ));
                        }
                    }
                },
            }
        }
        let mixed = ty.attribute("mixed") == Some("true");
        if !mixed
            && node
                .children()
                .any(|c| c.is_text() && !c.text().unwrap_or("").trim().is_empty())
        {
            errors.push(format!("{path}: text not allowed"));
        }
        let mut decls = HashMap::new();
        let model = ty
            .children()
            .filter(|c| c.is_element() && matches!(c.tag_name().name(), "sequence" | "choice"))
            .map(|c| self.model(c, &mut decls))
            .collect::<String>();
        let children: Vec<Node> = node.children().filter(Node::is_element).collect();
        let tokens: String = children.iter().map(|c| format!("<{}>", c.tag_name().name())).collect();
        if !Regex::new(&format!("^(?:{model})$")).unwrap().is_match(&tokens) {
            errors.push(format!("{path}: children {tokens} do not match the content model"));
        }
        for child in children {
            if let Some(d) = decls.get(child.tag_name().name()) {
                self.validate(child, *d, &path, errors);
            }
        }
    }

    fn errors(&self, xml: &str) -> Vec<String> {
        let doc = Document::parse(xml).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{xml}"));
        let root = doc.root_element();
        let mut errors = Vec::new();
        match self.elements.get(root.tag_name().name()) {
            Some(decl) => self.validate(root, *decl, "", &mut errors),
            None => errors.push(format!("root element {} is not declared", root.tag_name().name())),
        }
        errors
    }
}

fn with_schema(f: impl FnOnce(&Schema)) {
    let xsd = std::fs::read_to_string(Path::new(ROOT).join("tests/data/junit/junit-10.xsd")).unwrap();
    let doc = Document::parse(&xsd).unwrap();
    f(&Schema::new(&doc));
}

#[test]
fn the_schema_checker_rejects_what_the_schema_forbids() {
    with_schema(|schema| {
        let good = r#"<testsuites><testsuite name="a" tests="1" failures="1" errors="0" time="1.5"><testcase name="x"><failure message="m">t</failure></testcase></testsuite></testsuites>"#;
        assert_eq!(schema.errors(good), Vec::<String>::new());
        for bad in [
            r#"<testsuites><testsuite name="a" tests="1" failures="0"/></testsuites>"#,
            r#"<testsuites><testsuite name="a" tests="1" failures="0" errors="0"><testcase/></testsuite></testsuites>"#,
            r#"<testsuites><testsuite name="a" tests="1" failures="0" errors="0"><testcase name="x" file="f"/></testsuite></testsuites>"#,
            r#"<testsuites><testsuite name="a" tests="1" failures="0" errors="0" time="soon"/></testsuites>"#,
            r#"<testsuites><testcase name="x"/></testsuites>"#,
            r#"<testsuites><testsuite name="a" tests="1" failures="0" errors="0"><testcase name="x"><bogus/></testcase></testsuite></testsuites>"#,
            r#"<testsuite name="a" tests="1" failures="0" errors="0"><properties>text</properties></testsuite>"#,
        ] {
            assert!(!schema.errors(bad).is_empty(), "accepted {bad}");
        }
    });
}

#[test]
fn junit_output_validates_against_the_jenkins_junit_schema() {
    let out = dbhook(
        &[
            "check",
            "-o",
            "junit",
            "tests/data/broken",
            "tests/data/real",
            "examples/shop.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let xml = stdout(&out);
    with_schema(|schema| assert_eq!(schema.errors(&xml), Vec::<String>::new(), "{xml}"));
    let doc = Document::parse(&xml).unwrap();
    let failures = doc.descendants().filter(|n| n.has_tag_name("failure")).count();
    let json = dbhook(
        &[
            "check",
            "-o",
            "json",
            "tests/data/broken",
            "tests/data/real",
            "examples/shop.yaml",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(
        failures as u64,
        v["summary"]["deny"].as_u64().unwrap(),
        "one <failure> per deny finding"
    );
    let suites = doc.descendants().filter(|n| n.has_tag_name("testsuite")).count();
    assert!(suites >= 18, "a suite per file: {suites}");
    // Special characters in messages are escaped, not broken XML.
    let tricky = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a, labels: {dbhook.io/cluster: pg}}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'x:1', env: [{name: DB_URL, value: 'postgresql://u:p@h/db?a=<b>&c=\"d\"'}]}]\n";
    let out = dbhook(&["check", "-o", "junit"], Some(tricky));
    with_schema(|schema| assert_eq!(schema.errors(&stdout(&out)), Vec::<String>::new()));
}

#[test]
fn github_output_annotates_files_and_lines() {
    let out = dbhook(
        &["check", "-o", "github", "tests/data/broken/db-url-plaintext.yaml"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let error = text
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        error.starts_with("::error file=tests/data/broken/db-url-plaintext.yaml,line="),
        "{error}"
    );
    assert!(error.contains(",title=db-url-plaintext::"), "{error}");
    let message = error.split_once("::").unwrap().1.split_once("::").unwrap().1;
    assert!(!message.contains('\n') && !message.contains('\r'));
}

#[test]
fn namespace_places_objects_that_carry_none() {
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-migrate\n  labels: {dbhook.io/cluster: pg, dbhook.io/role: migration}\nspec:\n  template:\n    spec:\n      containers: [{name: m, image: 'ghcr.io/acme/web:v1'}]\n";
    let app = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {dbhook.io/cluster: pg}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'ghcr.io/acme/web:v1'}]\n";
    let input = format!("{job}{app}");
    let out = dbhook(
        &["check", "--complete", "-o", "json", "--namespace", "shop"],
        Some(&input),
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let absent: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "cluster-exists")
        .collect();
    assert!(!absent.is_empty(), "{v}");
    assert!(absent.iter().all(|f| f["object"]["namespace"] == "shop"), "{v}");
    let env = crate::cli_support::command()
        .args(["check", "-o", "json", "-"])
        .current_dir(ROOT)
        .env("DBHOOK_CHECK_NAMESPACE", "billing")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(job.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let v: Value = serde_json::from_slice(&env.stdout).unwrap();
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["object"]["namespace"] == "billing"),
        "{v}"
    );
}

#[test]
fn objects_defined_twice_are_noted_in_json_and_sarif() {
    let app = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'x:1'}]\n";
    let input = format!("{app}---\n{app}");
    let json: Value = serde_json::from_str(&stdout(&dbhook(&["check", "-o", "json"], Some(&input)))).unwrap();
    let notes = json["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{json}");
    assert_eq!(notes[0]["line"], 9);
    assert!(
        notes[0]["message"]
            .as_str()
            .unwrap()
            .contains("is also defined at <stdin>:1")
    );
    let sarif: Value = serde_json::from_str(&stdout(&dbhook(&["check", "-o", "sarif"], Some(&input)))).unwrap();
    let n = &sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"][0];
    assert!(
        n["message"]["text"].as_str().unwrap().contains("is also defined at"),
        "{sarif}"
    );
    assert_eq!(n["locations"][0]["physicalLocation"]["region"]["startLine"], 9);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("tests/data/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&sarif).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

fn run_with_env(args: &[&str], var: &str, value: &str) -> std::process::Output {
    crate::cli_support::command()
        .args(args)
        .current_dir(ROOT)
        .env_remove("DBHOOK_OUTPUT")
        .env(var, value)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn each_subcommand_reads_its_own_output_variable() {
    // DBHOOK_OUTPUT is check's: `rules` and `mutate` ignore it.
    let rules = run_with_env(&["rules"], "DBHOOK_OUTPUT", "sarif");
    assert!(rules.status.success(), "{}", stderr(&rules));
    assert!(stdout(&rules).starts_with("injection-config"), "{}", stdout(&rules));
    let mutate = run_with_env(&["mutate", "examples/shop.yaml"], "DBHOOK_OUTPUT", "json");
    assert!(mutate.status.success());
    assert!(serde_json::from_slice::<Value>(&mutate.stdout).is_err(), "still YAML");
    assert!(stdout(&mutate).contains("kind: Rollout"));
    // Their own variables select their formats.
    let rules = run_with_env(&["rules"], "DBHOOK_RULES_OUTPUT", "json");
    assert!(serde_json::from_slice::<Value>(&rules.stdout).unwrap().is_array());
    let mutate = run_with_env(&["mutate", "examples/shop.yaml"], "DBHOOK_MUTATE_OUTPUT", "json");
    assert_eq!(serde_json::from_slice::<Value>(&mutate.stdout).unwrap()["kind"], "List");
    // check reads DBHOOK_OUTPUT and its own DBHOOK_CHECK_OUTPUT, which wins; the flag beats both.
    let check = |vars: &[(&str, &str)], args: &[&str]| {
        let mut c = crate::cli_support::command();
        c.args(["check"]).args(args).arg("examples/shop.yaml").current_dir(ROOT);
        c.env_remove("DBHOOK_OUTPUT").env_remove("DBHOOK_CHECK_OUTPUT");
        for (k, v) in vars {
            c.env(k, v);
        }
        c.stdin(std::process::Stdio::null()).output().unwrap()
    };
    let json = |o: &std::process::Output| serde_json::from_slice::<Value>(&o.stdout).ok();
    assert!(json(&check(&[("DBHOOK_OUTPUT", "json")], &[])).is_some_and(|v| v["summary"].is_object()));
    assert!(json(&check(&[("DBHOOK_CHECK_OUTPUT", "json")], &[])).is_some_and(|v| v["summary"].is_object()));
    let both = check(&[("DBHOOK_OUTPUT", "text"), ("DBHOOK_CHECK_OUTPUT", "sarif")], &[]);
    assert_eq!(json(&both).unwrap()["version"], "2.1.0", "{}", stdout(&both));
    let flag = check(&[("DBHOOK_CHECK_OUTPUT", "sarif")], &["-o", "text"]);
    assert!(
        json(&flag).is_none() && stdout(&flag).contains("objects checked"),
        "{}",
        stdout(&flag)
    );
    let bad = check(&[("DBHOOK_OUTPUT", "yaml")], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("DBHOOK_OUTPUT") && stderr(&bad).contains("junit"),
        "{}",
        stderr(&bad)
    );
    // And --help names each one.
    let help = stdout(&dbhook(&["check", "--help"], None));
    assert!(help.contains("Also read from DBHOOK_OUTPUT"), "{help}");
    for (cmd, var) in [
        ("check", "DBHOOK_CHECK_OUTPUT"),
        ("rules", "DBHOOK_RULES_OUTPUT"),
        ("mutate", "DBHOOK_MUTATE_OUTPUT"),
    ] {
        let help = stdout(&dbhook(&[cmd, "--help"], None));
        assert!(help.contains(&format!("[env: {var}=")), "{cmd}: {help}");
    }
}

#[test]
fn yaml_1_1_booleans_are_booleans_and_errors_name_file_line_and_field() {
    let backups = "apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {name: daily, namespace: shop}\nspec:\n  schedule: '0 0 2 * * *'\n  suspend: yes\n  cluster: {name: shop-pg}\n";
    let out = dbhook(&["check", "-o", "json"], Some(backups));
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    let bad = backups.replace("suspend: yes", "suspend: maybe");
    let out = dbhook(&["check"], Some(&bad));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("<stdin>:1:") && err.contains("suspend"), "{err}");
}

#[test]
fn rendered_alert_templates_are_plain_strings_not_chart_sources() {
    // A PrometheusRule as rendered charts and CloudNativePG's samples ship it: `{{ $labels.pod }}`
    // inside a plain string is valid YAML that kubectl applies; mutate keeps it byte for byte.
    let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: cnpg\n  namespace: shop\nspec:\n  groups:\n  - name: r\n    rules:\n    - alert: Long\n      annotations:\n        description: Pod {{ $labels.pod }} is slow.\n      expr: up == 0\n";
    let app = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  labels: {dbhook.io/cluster: shop-pg}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: 'ghcr.io/acme/web:sha-1a2b3c4'}]\n";
    let input = format!("{rule}---\n{app}");
    let out = dbhook(&["check", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 objects checked"), "{}", stdout(&out));
    let out = dbhook(&["mutate", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("{rule}---\n")), "{text}");
    assert!(text.contains("name: DB_URL"), "{text}");
}

#[test]
fn unrendered_templates_are_named_as_such() {
    let chart = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"web.fullname\" . }}\n  labels:\n    {{- include \"web.labels\" . | nindent 4 }}\n";
    for cmd in ["check", "mutate"] {
        let out = dbhook(&[cmd, "-"], Some(chart));
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = stderr(&out);
        assert!(
            err.contains("<stdin>:4: looks like an unrendered template: run helm template first"),
            "{cmd}: {err}"
        );
    }
}
