//! The layering the README's Layout section draws, checked from the source: the
//! top-level modules form a DAG (nothing imports a module above it), the configuration
//! layer and the mock import only what they may, and no two types share a name.
//!
//! Imports are read as text: every `crate::…` path outside comments and test modules
//! (a `#[cfg(test)]` module, or a `tests.rs` file) counts, grouped `use crate::{a, b::c}`
//! included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each may import; everything not listed may import anything
/// below it, as long as the whole stays acyclic.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("wire", &[]),
    ("quota", &[]),
    ("cpu", &[]),
    ("heap", &[]),
    ("descriptors", &[]),
    ("machine", &[]),
    ("shard", &[]),
    // Configuration: the bottom layer of the pipeline.
    ("scenario", &[]),
    // The capacity search's decisions: pure, over verdicts; nothing of running or
    // reporting.
    ("search", &["scenario"]),
    // The mock is its own tree: wire types, its configuration, the bucket arithmetic.
    ("mock", &["wire", "scenario", "quota"]),
];

/// The only modules that may reach into the mock: the runner starts it for a run (the
/// binary, outside `src/` modules, serves it standalone).
const MOCK_USERS: &[&str] = &["runner"];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/mock/openai.rs` → `mock`); `None` for
/// the crate roots.
fn top_module(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "cli")).then(|| name.to_string())
}

/// Whether `file` is a top-level module's own file (`src/x.rs`, `src/x/mod.rs`).
fn is_module_root(file: &Path) -> bool {
    let depth = file.strip_prefix(src()).unwrap().components().count();
    depth == 1 || (depth == 2 && file.ends_with("mod.rs"))
}

/// The production code of a file: without line comments, and cut at its test module.
fn production_code(text: &str) -> String {
    // The test module, not any test-only item before it.
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    // Plain comments are dropped; doc comments stay, since an intra-doc link
    // (`[`crate::x`]`) ties a module to `x` as a `use` does.
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) if line[at..].starts_with("///") || line[at..].starts_with("//!") => line,
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment of every `crate::` path in `code`.
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `mycrate::`, not `crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_heads(group));
        } else {
            found.insert(identifier(rest));
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

/// The first segment of each item of a `{…}` group, up to its closing brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && !c.is_whitespace() => {
                heads.push(identifier(&group[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn identifier(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Top-level module → the top-level modules its production code imports.
fn import_graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(f)).collect();
    let mut graph = Graph::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let Some(module) = top_module(file) else {
            continue;
        };
        let mut code = production_code(&std::fs::read_to_string(file).unwrap());
        // In a top-level module's own file, `super::` is the crate.
        if is_module_root(file) {
            code = code.replace("super::", "crate::");
        }
        let imports = graph.entry(module.clone()).or_default();
        for import in crate_imports(&code) {
            if import != module && modules.contains(&import) {
                imports.insert(import);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the path that closes it.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_parser_reads_grouped_and_inline_paths() {
    let code = "use crate::{a::X, b, c::{d, e}};\nfn f() { crate::g::h(); }\nuse mycrate::z;";
    let found: Vec<String> = crate_imports(code).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "g"]);
    assert!(
        production_code("use crate::a; // crate::b\n#[cfg(test)]\nmod tests {\nuse crate::c;")
            .contains("crate::a")
    );
    assert_eq!(
        crate_imports(&production_code(
            "// crate::b\n#[cfg(test)]\nmod tests { crate::c }"
        ))
        .len(),
        0
    );
    let documented = crate_imports(&production_code(
        "//! See [`crate::x::Y`].\n/// [`crate::z`]",
    ));
    assert_eq!(
        documented.into_iter().collect::<Vec<_>>(),
        ["x", "z"],
        "doc links count"
    );
    let cyclic: Graph = [("a", "b"), ("b", "c"), ("c", "a")]
        .iter()
        .map(|(x, y)| (x.to_string(), BTreeSet::from([y.to_string()])))
        .collect();
    assert_eq!(find_cycle(&cyclic).unwrap().len(), 4);
}

#[test]
fn top_level_modules_form_a_dag() {
    let graph = import_graph();
    assert!(graph.len() > 10, "too few modules found: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the top-level modules import each other in a circle: {}",
            cycle.join(" → ")
        );
    }
}

#[test]
fn layers_import_only_what_they_may() {
    let graph = import_graph();
    for (module, allowed) in ALLOWED {
        let imports = graph.get(*module).cloned().unwrap_or_default();
        let extra: Vec<&String> = imports
            .iter()
            .filter(|i| !allowed.contains(&i.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "`{module}` may import only {allowed:?}, but imports {extra:?}"
        );
    }
    for (module, imports) in &graph {
        assert!(
            !imports.contains("mock") || MOCK_USERS.contains(&module.as_str()),
            "`{module}` reaches into the mock; only {MOCK_USERS:?} may (what a run reports about the mock crosses the results' own type)"
        );
    }
}

#[test]
fn no_two_types_share_a_name() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut clashes = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let code = production_code(&std::fs::read_to_string(file).unwrap());
        // Items at the start of a line: associated types inside impls are indented.
        for line in code.lines().filter(|l| !l.starts_with(char::is_whitespace)) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words
                .iter()
                .position(|w| matches!(*w, "struct" | "enum" | "trait" | "type"))
            else {
                continue;
            };
            if !words[..at].iter().all(|w| w.starts_with("pub")) {
                continue; // `struct` inside a longer line, e.g. a doc or a string
            }
            let name = identifier(words.get(at + 1).unwrap_or(&""));
            if name.is_empty() {
                continue;
            }
            if let Some(first) = seen.insert(name.clone(), file.clone()) {
                let at = |f: &Path| f.strip_prefix(src()).unwrap().display().to_string();
                clashes.push(format!("{name}: {} and {}", at(&first), at(file)));
            }
        }
    }
    assert!(clashes.is_empty(), "types sharing a name: {clashes:#?}");
}
