//! The docs name real code. In README.md and docs/*.md, every path in
//! backquotes that ends in a source extension is a file of the repository
//! (a bare name or a partial path matches the end of one), and every test
//! named after one (`` `heavy.rs` → `a_push_…` ``, as the threat table
//! writes them) is a function in such a file. Renaming a file or a test
//! without the docs fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const EXTENSIONS: &[&str] = &[".rs", ".sql", ".ts", ".mjs", ".sh"];
const SKIP_DIRS: &[&str] = &["target", "node_modules", ".git", "dist", ".build"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir`, as `/`-separated paths relative to the repo.
fn files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                files(root, &path, out);
            }
        } else {
            let rel = path.strip_prefix(root).unwrap();
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// `store-{sqlite,postgres}/src/sync.rs` → both paths.
fn expand(span: &str) -> Vec<String> {
    match (span.find('{'), span.find('}')) {
        (Some(a), Some(b)) if a < b => span[a + 1..b]
            .split(',')
            .flat_map(|alt| expand(&format!("{}{alt}{}", &span[..a], &span[b + 1..])))
            .collect(),
        _ => vec![span.to_owned()],
    }
}

/// Whether `src` defines a function `name` (not merely one whose name
/// starts with it).
fn defines(src: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    src.match_indices(&needle).any(|(at, _)| {
        src[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c == '(' || c == '<')
    })
}

/// The backquoted spans of a text.
fn spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_path(span: &str) -> bool {
    EXTENSIONS.iter().any(|e| span.ends_with(e))
        && span
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./{},".contains(c))
        && !span.starts_with('.')
}

/// `X.rs` → `name`, `name2` pairs: the names after an arrow up to the end
/// of the cell or sentence.
fn named_tests(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, part) in line.split(" → ").enumerate().skip(1) {
        let before = line.split(" → ").nth(i - 1).unwrap();
        let Some(file) = spans(before).last().copied().filter(|s| s.ends_with(".rs")) else {
            continue;
        };
        // The names up to the next `;`, `|` or `(` outside backquotes.
        let mut inside = false;
        let mut cut = part.len();
        for (at, c) in part.char_indices() {
            match c {
                '`' => inside = !inside,
                ';' | '|' | '(' | '.' if !inside => {
                    cut = at;
                    break;
                }
                _ => {}
            }
        }
        for name in spans(&part[..cut]) {
            if name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && name.contains('_')
            {
                out.push((file.to_owned(), name.to_owned()));
            }
        }
    }
    out
}

#[test]
fn docs_name_files_and_tests_that_exist() {
    let root = repo().canonicalize().unwrap();
    let mut all = Vec::new();
    files(&root, &root, &mut all);
    let mut docs: Vec<PathBuf> = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    let mut problems = BTreeSet::new();
    let mut checked = (0, 0);
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let name = doc.file_name().unwrap().to_string_lossy().into_owned();
        for span in spans(&text).into_iter().filter(|s| is_path(s)) {
            for path in expand(span) {
                checked.0 += 1;
                let suffix = format!("/{}", path.trim_start_matches("./"));
                if !all.iter().any(|f| format!("/{f}").ends_with(&suffix)) {
                    problems.insert(format!("{name}: no file {path}"));
                }
            }
        }
        for line in text.lines() {
            for (file, test) in named_tests(line) {
                for path in expand(&file) {
                    checked.1 += 1;
                    let suffix = format!("/{path}");
                    let found = all
                        .iter()
                        .filter(|f| format!("/{f}").ends_with(&suffix))
                        .any(|f| {
                            std::fs::read_to_string(root.join(f))
                                .is_ok_and(|src| defines(&src, &test))
                        });
                    if !found {
                        problems.insert(format!("{name}: no fn {test} in {path}"));
                    }
                }
            }
        }
    }
    assert!(
        checked.0 > 100 && checked.1 > 50,
        "the docs name {} files and {} tests: is the parser broken?",
        checked.0,
        checked.1
    );
    assert!(
        problems.is_empty(),
        "{} stale references:\n{}",
        problems.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}
