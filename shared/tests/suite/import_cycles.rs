//! `shared`'s modules import one another without cycles.
//!
//! The graph, read from the source text of `shared/src` (no compiler, no new dependency):
//!
//! - **Nodes** are modules, one per file: `foo.rs` or `foo/mod.rs` is the module `foo`,
//!   `lib.rs` the crate root. A file declared only under `#[cfg(test)]` (`mod tests;`) is
//!   not a node.
//! - **An edge A → B** when A's code names an item of B through a path that starts at
//!   `crate::` (or `$crate::`), `super::` or `self::`, in a `use` declaration or inline
//!   (`crate::x::y(…)`), or through a module A imported by name (`use crate::wire;` then
//!   `wire::Envelope`). A path resolves to the deepest module file it names
//!   (`crate::app::minting::Seen` is `app::minting`); when the next segment is a name
//!   that module brings in with a `use` (a re-export such as `pub use keys::SigningKey`
//!   in `tokens/mod.rs`, or an import a child reaches as `super::X`), the path is followed
//!   to the module that name comes from, so an edge points at the module that defines the
//!   item, not at the one that passes it on. Importing a module by name makes no edge by
//!   itself; the paths through it do.
//! - **Nesting is not an edge**: a path from a module to itself, to one of its ancestors
//!   (a child using its parent's items) or to one of its descendants (a parent re-exporting
//!   or calling its children) is ignored.
//! - **Test code is ignored**: any item under `#[cfg(test)]` (the `mod tests { … }` blocks
//!   and the files they declare), and comments and string literals, so doc links and
//!   messages make no edge.
//!
//! A cycle is a strongly connected component of more than one module (Tarjan's
//! algorithm). The test fails listing each one with a concrete cycle through it: the
//! modules in order, and for each edge the file, line and `use` (or line) that makes it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// A module's path below the crate root (`["app", "minting"]`); the root is `[]`.
type ModPath = Vec<String>;

#[test]
fn shared_modules_have_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = Graph::read(&src);

    // The reader sees the imports it is meant to see (a broken parser would pass vacuously):
    // a `use`, a re-export followed (`store::SqliteStore` is `store::sqlite`'s), a module
    // imported by name (`cors::preflight`), an inline `crate::` path.
    assert!(
        graph.modules.len() > 50,
        "only {} modules read from {}",
        graph.modules.len(),
        src.display()
    );
    let expected = [
        ("api::fapi::client", "app::clients"),
        ("state", "store::sqlite"),
        ("routes", "http::cors"),
        ("app::minting", "metrics"),
    ];
    for (from, to) in expected {
        assert!(
            graph.edges.contains_key(&(path_of(from), path_of(to))),
            "the import graph misses {from} → {to}: the reader is broken"
        );
    }

    let cycles = graph.cycles();
    assert!(cycles.is_empty(), "{}", graph.describe(&cycles));
}

/// `"app::minting"` as a module path.
fn path_of(name: &str) -> ModPath {
    name.split("::").map(str::to_owned).collect()
}

/// A module's name as the crate spells it.
fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}

/// What makes an edge: where it is written.
#[derive(Clone, Debug)]
struct Evidence {
    file: String,
    line: usize,
    text: String,
}

/// One file's module, its code with comments, strings and test items blanked.
struct Module {
    file: String,
    source: String,
    code: Vec<u8>,
}

/// A leaf of a `use` tree: `use a::{b, c as d}` has `a::b` and `a::c` (bound as `d`).
#[derive(Debug, PartialEq)]
struct UseLeaf {
    segs: Vec<String>,
    alias: Option<String>,
    glob: bool,
}

impl UseLeaf {
    /// The path it names: `a::b::{self}` names `a::b`.
    fn path(&self) -> &[String] {
        match self.segs.split_last() {
            Some((last, rest)) if last == "self" => rest,
            _ => &self.segs,
        }
    }

    /// The name this leaf brings into scope, if any.
    fn bound(&self) -> Option<&str> {
        if self.glob {
            return None;
        }
        if let Some(alias) = &self.alias {
            return (alias != "_").then_some(alias.as_str());
        }
        self.path().last().map(String::as_str)
    }
}

/// One `use` declaration: where it is and its leaves.
struct UseDecl {
    start: usize,
    end: usize,
    leaves: Vec<UseLeaf>,
}

struct Graph {
    modules: BTreeMap<ModPath, Module>,
    /// Every module's `use` bindings: name → (the path, as written, from that module).
    imports: BTreeMap<ModPath, BTreeMap<String, Vec<String>>>,
    /// (from, to) → the first place that makes the edge.
    edges: BTreeMap<(ModPath, ModPath), Evidence>,
}

/// Where a path leads: a module, and the item named in it (if the path goes on).
struct Resolved {
    module: ModPath,
    item: Option<String>,
}

impl Graph {
    fn read(src: &Path) -> Graph {
        let mut files = Vec::new();
        collect_rs(src, &mut files);
        files.sort();

        let mut modules = BTreeMap::new();
        let mut test_only: Vec<ModPath> = Vec::new();
        for file in &files {
            let rel = file.strip_prefix(src).expect("under src");
            let path = module_path(rel);
            let source = fs::read_to_string(file).expect("readable source");
            let mut code = blank_comments_and_strings(source.as_bytes());
            if find(&code, b"#![cfg(test)]", 0).is_some() {
                test_only.push(path.clone());
            }
            for child in blank_test_items(&mut code) {
                let mut p = path.clone();
                p.push(child);
                test_only.push(p);
            }
            let display = Path::new("shared/src").join(rel).display().to_string();
            modules.insert(
                path,
                Module {
                    file: display,
                    source,
                    code,
                },
            );
        }
        modules.retain(|p, _| !test_only.iter().any(|t| p.starts_with(t)));

        let mut graph = Graph {
            modules,
            imports: BTreeMap::new(),
            edges: BTreeMap::new(),
        };
        let mut decls = BTreeMap::new();
        for (path, module) in &graph.modules {
            let uses = find_uses(&module.code);
            let mut names = BTreeMap::new();
            for leaf in uses.iter().flat_map(|d| &d.leaves) {
                if let Some(bound) = leaf.bound() {
                    names.insert(bound.to_owned(), leaf.path().to_vec());
                }
            }
            graph.imports.insert(path.clone(), names);
            decls.insert(path.clone(), uses);
        }

        let mut edges = BTreeMap::new();
        let none = BTreeMap::new();
        for (path, module) in &graph.modules {
            let uses = &decls[path];
            // The names this file binds to modules (`use crate::wire;`): paths through them
            // (`wire::Envelope`) make the edges, the import alone makes none.
            let mut aliases: BTreeMap<String, ModPath> = BTreeMap::new();
            for leaf in uses.iter().flat_map(|d| &d.leaves) {
                let Some(bound) = leaf.bound() else { continue };
                if let Some(to) = graph.resolve(path, leaf.path(), &none, 0) {
                    if to.item.is_none() {
                        aliases.insert(bound.to_owned(), to.module);
                    }
                }
            }
            let mut code = module.code.clone();
            for decl in uses {
                let text = collapse(&module.code[decl.start..decl.end]);
                let line = line_of(&module.code, decl.start);
                for leaf in &decl.leaves {
                    let Some(to) = graph.resolve(path, leaf.path(), &aliases, 0) else {
                        continue;
                    };
                    if to.item.is_none() && !leaf.glob {
                        continue; // a module imported by name
                    }
                    let evidence = Evidence {
                        file: module.file.clone(),
                        line,
                        text: text.clone(),
                    };
                    add_edge(&mut edges, path, &to.module, evidence);
                }
                code[decl.start..decl.end].fill(b' ');
            }
            for (start, segs) in inline_paths(&code) {
                let Some(to) = graph.resolve(path, &segs, &aliases, 0) else {
                    continue;
                };
                let line = line_of(&module.code, start);
                let text = module
                    .source
                    .lines()
                    .nth(line - 1)
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let evidence = Evidence {
                    file: module.file.clone(),
                    line,
                    text,
                };
                add_edge(&mut edges, path, &to.module, evidence);
            }
        }
        graph.edges = edges;
        graph
    }

    /// Where `segs`, written in module `from`, leads. `None` for paths outside the crate
    /// (other crates, local items).
    fn resolve(
        &self,
        from: &ModPath,
        segs: &[String],
        aliases: &BTreeMap<String, ModPath>,
        depth: usize,
    ) -> Option<Resolved> {
        let first = segs.first()?;
        let mut base: ModPath;
        let mut i = 1;
        match first.as_str() {
            "crate" | "$crate" => base = Vec::new(),
            "self" => base = from.clone(),
            "super" => {
                base = from.clone();
                base.pop();
            }
            other => {
                if let Some(module) = aliases.get(other) {
                    base = module.clone();
                } else {
                    let mut child = from.clone();
                    child.push(other.to_owned());
                    if !self.modules.contains_key(&child) {
                        return None;
                    }
                    base = child;
                }
            }
        }
        while i < segs.len() && segs[i] == "super" {
            base.pop();
            i += 1;
        }
        while i < segs.len() {
            let mut child = base.clone();
            child.push(segs[i].clone());
            if self.modules.contains_key(&child) {
                base = child;
                i += 1;
                continue;
            }
            // A name the module brings in with a `use`: follow it to where it comes from.
            let imported = self
                .imports
                .get(&base)
                .and_then(|names| names.get(&segs[i]));
            if let (Some(imported), true) = (imported, depth < 16) {
                if let Some(next) = self.resolve(&base, imported, &BTreeMap::new(), depth + 1) {
                    if next.item.is_some() || i + 1 == segs.len() {
                        return Some(next);
                    }
                    base = next.module;
                    i += 1;
                    continue;
                }
            }
            return Some(Resolved {
                module: base,
                item: Some(segs[i].clone()),
            });
        }
        Some(Resolved {
            module: base,
            item: None,
        })
    }

    /// Every strongly connected component of more than one module.
    fn cycles(&self) -> Vec<Vec<ModPath>> {
        let nodes: Vec<&ModPath> = self.modules.keys().collect();
        let index_of: BTreeMap<&ModPath, usize> =
            nodes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let mut adjacency = vec![Vec::new(); nodes.len()];
        for (from, to) in self.edges.keys() {
            if let (Some(&a), Some(&b)) = (index_of.get(from), index_of.get(to)) {
                adjacency[a].push(b);
            }
        }
        tarjan(&adjacency)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|scc| {
                let mut scc: Vec<ModPath> = scc.into_iter().map(|i| nodes[i].clone()).collect();
                scc.sort();
                scc
            })
            .collect()
    }

    /// The shortest cycle through the first module of a component, within it.
    fn cycle_path(&self, scc: &[ModPath]) -> Vec<ModPath> {
        let members: BTreeSet<&ModPath> = scc.iter().collect();
        let start = &scc[0];
        let mut previous: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(at) = queue.pop_front() {
            for (from, to) in self.edges.keys() {
                if from != at || !members.contains(to) {
                    continue;
                }
                if to == start {
                    // Back from `at` to the start, then turned round and closed.
                    let mut path = vec![at.clone()];
                    let mut node = at;
                    while node != start {
                        node = previous[node];
                        path.push(node.clone());
                    }
                    path.reverse();
                    path.push(start.clone());
                    return path;
                }
                if !previous.contains_key(to) {
                    previous.insert(to, at);
                    queue.push_back(to);
                }
            }
        }
        vec![start.clone()]
    }

    fn describe(&self, cycles: &[Vec<ModPath>]) -> String {
        let edge_line = |from: &ModPath, to: &ModPath| {
            let e = &self.edges[&(from.clone(), to.clone())];
            format!(
                "{} → {}: {}:{}: {}",
                name(from),
                name(to),
                e.file,
                e.line,
                e.text
            )
        };
        let mut out = format!("{} import cycle(s) among shared's modules:\n", cycles.len());
        for scc in cycles {
            let names: Vec<String> = scc.iter().map(|p| name(p)).collect();
            out.push_str(&format!("\ncycle among {{{}}}:\n", names.join(", ")));
            let path = self.cycle_path(scc);
            let chain: Vec<String> = path.iter().map(|p| name(p)).collect();
            out.push_str(&format!("  {}\n", chain.join(" → ")));
            for pair in path.windows(2) {
                out.push_str(&format!("    {}\n", edge_line(&pair[0], &pair[1])));
            }
            if scc.len() > 2 {
                out.push_str("  every import between these modules:\n");
                for (from, to) in self.edges.keys() {
                    if scc.contains(from) && scc.contains(to) {
                        out.push_str(&format!("    {}\n", edge_line(from, to)));
                    }
                }
            }
        }
        out
    }
}

fn add_edge(
    edges: &mut BTreeMap<(ModPath, ModPath), Evidence>,
    from: &ModPath,
    to: &ModPath,
    evidence: Evidence,
) {
    if from.starts_with(to) || to.starts_with(from) {
        return; // itself, an ancestor or a descendant: nesting
    }
    edges.entry((from.clone(), to.clone())).or_insert(evidence);
}

/// Tarjan's strongly connected components of a graph given as adjacency lists.
fn tarjan(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adjacency: &'a [Vec<usize>],
        next: usize,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        components: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.adjacency[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let n = adjacency.len();
    let mut s = State {
        adjacency,
        next: 0,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        components: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.components
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `app/minting.rs` → `app::minting`; `app/mod.rs` → `app`; `lib.rs` → the root.
fn module_path(rel: &Path) -> ModPath {
    let mut segs: ModPath = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    let file = segs.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if !(segs.is_empty() && stem == "lib") && stem != "mod" {
        segs.push(stem.to_owned());
    }
    segs
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The source with comments and string and character literals turned into spaces
/// (newlines kept, so offsets and line numbers stay those of the file).
fn blank_comments_and_strings(src: &[u8]) -> Vec<u8> {
    let mut out = src.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to.min(src.len())] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let n = src.len();
    let mut i = 0;
    while i < n {
        let c = src[i];
        if c == b'/' && src.get(i + 1) == Some(&b'/') {
            let end = src[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(n, |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c == b'/' && src.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            let mut j = i;
            while j < n {
                if src[j] == b'/' && src.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if src[j] == b'*' && src.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if is_ident(c) {
            let start = i;
            while i < n && is_ident(src[i]) {
                i += 1;
            }
            let word = &src[start..i];
            let raw = (word == b"r" || word == b"br") && matches!(src.get(i), Some(b'#' | b'"'));
            if raw {
                let mut hashes = 0;
                let mut j = i;
                while j < n && src[j] == b'#' {
                    hashes += 1;
                    j += 1;
                }
                if src.get(j) == Some(&b'"') {
                    j += 1;
                    while j < n {
                        let closes = src
                            .get(j + 1..j + 1 + hashes)
                            .is_some_and(|h| h.iter().all(|&b| b == b'#'));
                        if src[j] == b'"' && closes {
                            j += 1 + hashes;
                            break;
                        }
                        j += 1;
                    }
                    blank(&mut out, start, j);
                    i = j;
                }
            } else if word == b"b" && matches!(src.get(i), Some(b'"' | b'\'')) {
                let end = quoted_end(src, i);
                blank(&mut out, start, end);
                i = end;
            }
        } else if c == b'"' {
            let end = quoted_end(src, i);
            blank(&mut out, i, end);
            i = end;
        } else if c == b'\'' {
            // A character literal ('a', '\n', '\''), or a lifetime ('a) left as it is.
            let is_char = src.get(i + 1) == Some(&b'\\')
                || (src.get(i + 1).is_some() && {
                    let len = utf8_len(src[i + 1]);
                    src.get(i + 1 + len) == Some(&b'\'')
                });
            if is_char {
                let end = quoted_end(src, i);
                blank(&mut out, i, end);
                i = end;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The end (past the closing quote) of the quoted literal whose opening quote is at `at`.
fn quoted_end(src: &[u8], at: usize) -> usize {
    let quote = src[at];
    let mut j = at + 1;
    while j < src.len() {
        match src[j] {
            b'\\' => j += 2,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    src.len()
}

/// Blanks every item under `#[cfg(test)]`; returns the names of the files it declares
/// (`#[cfg(test)] mod tests;`).
fn blank_test_items(code: &mut [u8]) -> Vec<String> {
    const ATTR: &[u8] = b"#[cfg(test)]";
    let mut test_files = Vec::new();
    let mut i = 0;
    while let Some(p) = find(code, ATTR, i) {
        let start = p;
        let mut j = p + ATTR.len();
        // Further attributes, then the item: up to its `;` or its closing brace.
        loop {
            while j < code.len() && code[j].is_ascii_whitespace() {
                j += 1;
            }
            if code.get(j) == Some(&b'#') {
                j = matching(code, j + 1).map_or(code.len(), |e| e + 1);
            } else {
                break;
            }
        }
        let item_start = j;
        let mut depth = 0i32;
        while j < code.len() {
            match code[j] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => {
                    j += 1;
                    break;
                }
                b'{' if depth == 0 => {
                    j = matching(code, j).map_or(code.len(), |e| e + 1);
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let item = String::from_utf8_lossy(&code[item_start..j.min(code.len())]).into_owned();
        let words: Vec<&str> = item
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(at) = words.iter().position(|w| *w == "mod") {
            if item.trim_end().ends_with(';') {
                if let Some(name) = words.get(at + 1) {
                    test_files.push((*name).to_owned());
                }
            }
        }
        let end = j.min(code.len());
        for b in &mut code[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        i = end;
    }
    test_files
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The index of the bracket closing the one at `open`.
fn matching(code: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (j, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn line_of(code: &[u8], at: usize) -> usize {
    code[..at].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A declaration's text on one line.
fn collapse(code: &[u8]) -> String {
    let text = String::from_utf8_lossy(code);
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    out = out.replace("{ ", "{").replace(" }", "}").replace(",}", "}");
    out
}

/// Every `use` declaration (its span through the `;`, the visibility included).
fn find_uses(code: &[u8]) -> Vec<UseDecl> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = find(code, b"use", i) {
        i = p + 3;
        let before_ok = p == 0 || !(is_ident(code[p - 1]) || code[p - 1] == b'$');
        let after_ok = code.get(p + 3).is_some_and(|b| b.is_ascii_whitespace());
        if !before_ok || !after_ok {
            continue;
        }
        let Some(end) = code[p..].iter().position(|&b| b == b';').map(|e| p + e + 1) else {
            continue;
        };
        let tree = String::from_utf8_lossy(&code[p + 3..end - 1]).into_owned();
        // The span takes in a visibility (`pub`, `pub(crate)`), for the message.
        let mut before = p;
        while before > 0 && code[before - 1].is_ascii_whitespace() {
            before -= 1;
        }
        let head = &code[..before];
        let start = [&b"pub(crate)"[..], b"pub(super)", b"pub"]
            .iter()
            .find(|vis| head.ends_with(vis))
            .map_or(p, |vis| before - vis.len());
        out.push(UseDecl {
            start,
            end,
            leaves: parse_use_tree(&tree),
        });
        i = end;
    }
    out
}

/// The leaves of a `use` tree (`a::{b::c, d as e, f::*}`).
fn parse_use_tree(text: &str) -> Vec<UseLeaf> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_owned());
            i += 2;
        } else if "{},*".contains(c) {
            tokens.push(c.to_string());
            i += 1;
        } else {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            if i == start {
                i += 1; // anything else: skip it
                continue;
            }
            tokens.push(chars[start..i].iter().collect());
        }
    }
    let mut leaves = Vec::new();
    let mut pos = 0;
    if tokens.first().is_some_and(|t| t == "::") {
        pos = 1;
    }
    parse_subtree(&tokens, &mut pos, Vec::new(), &mut leaves);
    leaves
}

fn parse_subtree(
    tokens: &[String],
    pos: &mut usize,
    mut prefix: Vec<String>,
    out: &mut Vec<UseLeaf>,
) {
    while let Some(tok) = tokens.get(*pos) {
        match tok.as_str() {
            "{" => {
                *pos += 1;
                while tokens.get(*pos).is_some_and(|t| t != "}") {
                    parse_subtree(tokens, pos, prefix.clone(), out);
                    if tokens.get(*pos).is_some_and(|t| t == ",") {
                        *pos += 1;
                    }
                }
                *pos += 1; // the `}`
                return;
            }
            "*" => {
                *pos += 1;
                out.push(UseLeaf {
                    segs: prefix,
                    alias: None,
                    glob: true,
                });
                return;
            }
            "," | "}" => return,
            word => {
                prefix.push(word.to_owned());
                *pos += 1;
                match tokens.get(*pos).map(String::as_str) {
                    Some("::") => *pos += 1,
                    Some("as") => {
                        let alias = tokens.get(*pos + 1).cloned();
                        *pos += 2;
                        out.push(UseLeaf {
                            segs: prefix,
                            alias,
                            glob: false,
                        });
                        return;
                    }
                    _ => {
                        out.push(UseLeaf {
                            segs: prefix,
                            alias: None,
                            glob: false,
                        });
                        return;
                    }
                }
            }
        }
    }
}

/// Every path written outside `use` declarations that may lead into the crate: its start
/// and segments (`crate::a::b`, `super::x`, `name::y` for a name the resolver may know).
fn inline_paths(code: &[u8]) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let n = code.len();
    let mut i = 0;
    while i < n {
        let c = code[i];
        let starts = (is_ident(c) || c == b'$')
            && (i == 0 || !(is_ident(code[i - 1]) || code[i - 1] == b'$' || code[i - 1] == b':'));
        if !starts || c.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let seg_start = j;
            if code.get(j) == Some(&b'$') {
                j += 1;
            }
            while j < n && is_ident(code[j]) {
                j += 1;
            }
            if j == seg_start {
                break;
            }
            segs.push(String::from_utf8_lossy(&code[seg_start..j]).into_owned());
            let mut k = j;
            while k < n && code[k].is_ascii_whitespace() {
                k += 1;
            }
            if code.get(k) == Some(&b':') && code.get(k + 1) == Some(&b':') {
                k += 2;
                while k < n && code[k].is_ascii_whitespace() {
                    k += 1;
                }
                if code.get(k).is_some_and(|&b| is_ident(b) || b == b'$') {
                    j = k;
                    continue;
                }
            }
            break;
        }
        if segs.len() > 1 {
            out.push((start, segs));
        }
        i = j.max(i + 1);
    }
    out
}

#[test]
fn use_trees_expand_to_their_leaves() {
    let leaves = parse_use_tree(" crate::a::{self, b::C, d as e, f::{g, h::*}}");
    let expected = vec![
        UseLeaf {
            segs: path_of("crate::a::self"),
            alias: None,
            glob: false,
        },
        UseLeaf {
            segs: path_of("crate::a::b::C"),
            alias: None,
            glob: false,
        },
        UseLeaf {
            segs: path_of("crate::a::d"),
            alias: Some("e".to_owned()),
            glob: false,
        },
        UseLeaf {
            segs: path_of("crate::a::f::g"),
            alias: None,
            glob: false,
        },
        UseLeaf {
            segs: path_of("crate::a::f::h"),
            alias: None,
            glob: true,
        },
    ];
    assert_eq!(leaves, expected);
    assert_eq!(leaves[0].path(), path_of("crate::a"));
    assert_eq!(leaves[0].bound(), Some("a"));
    assert_eq!(leaves[2].bound(), Some("e"));
    assert_eq!(leaves[4].bound(), None);
}

#[test]
fn comments_strings_and_test_items_are_not_code() {
    let src = b"// crate::a\nlet s = \"crate::b\"; let c = '\"'; fn f<'a>() {}\n#[cfg(test)]\nmod tests {\n use crate::c;\n}\n#[cfg(test)]\nmod more;\nuse crate::d::E;\n";
    let mut code = blank_comments_and_strings(src);
    assert_eq!(code.len(), src.len());
    let test_files = blank_test_items(&mut code);
    assert_eq!(test_files, vec!["more".to_owned()]);
    let uses = find_uses(&code);
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].leaves[0].segs, path_of("crate::d::E"));
    assert_eq!(line_of(&code, uses[0].start), 9);
    assert!(inline_paths(&code)
        .iter()
        .all(|(_, segs)| segs[0] != "crate" || segs[1] == "d"));
}

#[test]
fn tarjan_finds_the_components_with_cycles() {
    // 0 → 1 → 2 → 0 is a cycle, 3 → 4 → 3 another, 5 is reached by both and in none.
    let adjacency = vec![vec![1], vec![2, 5], vec![0], vec![4], vec![3, 5], vec![]];
    let mut cycles: Vec<Vec<usize>> = tarjan(&adjacency)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|mut c| {
            c.sort();
            c
        })
        .collect();
    cycles.sort();
    assert_eq!(cycles, vec![vec![0, 1, 2], vec![3, 4]]);
}
