//! The documentation matches the binary: README.md's Usage block shows every form `--help`
//! lists, and every option `--help` lists for the load test, for `demo` and `find` is
//! documented in README.md (for `serve`, in docs/serve.md, which README.md links), and every
//! option documented for them exists.

use std::collections::BTreeSet;
use std::process::Command;

use crate::common::bin;

/// The long options (`--name`) in `loadgen [SUB] --help`, without `--help` itself.
fn help_options(sub: &[&str]) -> BTreeSet<String> {
    let out = Command::new(bin())
        .args(sub)
        .arg("--help")
        .output()
        .expect("run loadgen --help");
    assert!(out.status.success(), "{sub:?} --help failed");
    let text = String::from_utf8(out.stdout).expect("utf-8 help");
    text.lines()
        .filter_map(|l| {
            // Option lines: "  -c, --connections <N>  ..." or "      --tick <T>  ...".
            let t = l.trim_start();
            let t = match t.strip_prefix('-') {
                Some(rest) if !rest.starts_with('-') => rest.split_once(", ")?.1,
                _ => t,
            };
            let name = t.strip_prefix("--")?;
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            (name != "help").then(|| format!("--{name}"))
        })
        .collect()
}

/// The part of README.md from the line starting with `from` to the next line starting with
/// `to`.
fn readme_section(from: &str, to: &str) -> String {
    doc_section("README.md", from, to)
}

/// The part of `file` (relative to the repository) from the line starting with `from` to the
/// next line starting with `to`.
fn doc_section(file: &str, from: &str, to: &str) -> String {
    let readme = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("read {file}: {e}"));
    let start = readme
        .find(&format!("\n{from}"))
        .unwrap_or_else(|| panic!("{file} has no line starting with {from:?}"));
    let rest = &readme[start + 1..];
    let end = rest[1..]
        .find(&format!("\n{to}"))
        .map_or(rest.len(), |e| e + 1);
    rest[..end].to_string()
}

/// The long options written in backticks in `text`.
fn options_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for code in text.split('`').skip(1).step_by(2) {
        for word in code.split(|c: char| c.is_whitespace() || ",[]".contains(c)) {
            if let Some(name) = word.strip_prefix("--") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(format!("--{name}"));
                }
            }
        }
    }
    found
}

/// The long options named in the first column of the Markdown table in `section` (the
/// options a table documents, not those its descriptions mention).
fn table_options(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix('|')?.split('|').next())
        .flat_map(options_in)
        .collect()
}

fn assert_same(what: &str, help: BTreeSet<String>, readme: BTreeSet<String>) {
    let undocumented: Vec<_> = help.difference(&readme).collect();
    let phantom: Vec<_> = readme.difference(&help).collect();
    assert!(
        undocumented.is_empty() && phantom.is_empty(),
        "{what}: in --help but not in README: {undocumented:?}; in README but not in --help: {phantom:?}"
    );
}

#[test]
fn readme_flag_table_matches_help() {
    let table = table_options(&readme_section("| flag | meaning", "\n"));
    assert_same("loadgen", help_options(&[]), table);
}

#[test]
fn readme_server_table_matches_serve_help() {
    let table = table_options(&doc_section("docs/serve.md", "| flag | effect", "\n"));
    assert_same("loadgen serve", help_options(&["serve"]), table);
}

#[test]
fn readme_demo_line_matches_demo_help() {
    let line = readme_section("`loadgen demo` takes", "\n");
    assert_same("loadgen demo", help_options(&["demo"]), options_in(&line));
}

/// `find` takes the load-test flags of the main table except those its section names, plus
/// the flags of its own table.
#[test]
fn readme_find_section_matches_find_help() {
    let main = table_options(&readme_section("| flag | meaning", "\n"));
    let section = readme_section("## Finding your server's capacity", "## ");
    let except = options_in(&readme_section(
        "`find` takes the load-test flags except",
        "|",
    ));
    assert!(except.contains("--duration"), "{except:?}");
    let own = table_options(&section);
    let readme: BTreeSet<String> = main.difference(&except).cloned().chain(own).collect();
    assert_same("loadgen find", help_options(&["find"]), readme);
}

#[test]
fn readme_usage_block_shows_every_form() {
    let out = Command::new(bin())
        .arg("--help")
        .output()
        .expect("run loadgen --help");
    let help = String::from_utf8(out.stdout).expect("utf-8 help");
    let usage = readme_section("## Usage", "| flag");
    let forms: Vec<&str> = help
        .lines()
        .map(|l| l.trim_start_matches("Usage:").trim())
        .filter(|l| l.starts_with("loadgen "))
        .collect();
    assert!(forms.len() >= 5, "{help}");
    for form in forms {
        assert!(
            usage.lines().any(|l| l.starts_with(form)),
            "README's Usage block lacks `{form}`:\n{usage}"
        );
    }
}
