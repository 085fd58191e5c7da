//! The server's layering rule, checked on its source: every `crate::…` path in a module names a
//! module of its own layer or of a layer below, and no plane names another plane
//! (docs/architecture.md, "Layers"). A new top-level module must be given a layer here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules by layer. Planes (layer 5) may not import each other.
const LAYERS: &[(u8, &[&str])] = &[
    (1, &["config", "listener", "tls", "login_server"]),
    (2, &["model", "issuer", "authz", "network", "admin_user", "run_queue", "import_operations"]),
    (3, &["state"]),
    (
        4,
        &[
            "http",
            "auth",
            "private_link",
            "gc",
            "uploads_sweep",
            "runs",
            "run_requests",
            "sources",
            "triggers",
            "run_retention",
            "import",
        ],
    ),
    (5, &["oci", "tokens", "arm", "graph", "entra", "msi", "logs", "source_upload", "source_hooks"]),
    (6, &["lib", "bootstrap", "admin"]),
];
const PLANE_LAYER: u8 = 5;

fn layer_of(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(_, ms)| ms.contains(&module)).map(|(l, _)| *l)
}

/// Rust files under `dir`, with the top-level module each belongs to.
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let module = top.map(str::to_string).unwrap_or_else(|| name.clone());
        if path.is_dir() {
            sources(&path, Some(&module), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((module, path));
        }
    }
}

/// The top-level modules a file names as `crate::{module}` (code only, not comments).
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn layers_import_only_downwards_and_planes_never_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, None, &mut files);
    assert!(files.len() > 40, "found the server's sources ({} files)", files.len());
    let mut violations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (module, path) in &files {
        let layer =
            layer_of(module).unwrap_or_else(|| panic!("module '{module}' ({}) has no layer in LAYERS", path.display()));
        let text = std::fs::read_to_string(path).expect("read a source file");
        for imported in imports(&text) {
            if imported == *module {
                continue;
            }
            let Some(target) = layer_of(&imported) else {
                // `crate::Config` and other re-exports at the crate root.
                if imported.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                    continue;
                }
                panic!("{} names crate::{imported}, which has no layer", path.display());
            };
            let upward = target > layer;
            let across_planes = layer == PLANE_LAYER && target == PLANE_LAYER;
            if upward || across_planes {
                violations
                    .entry(path.display().to_string())
                    .or_default()
                    .push(format!("crate::{imported} (layer {target})"));
            }
        }
    }
    assert!(violations.is_empty(), "imports against the layering:\n{violations:#?}");
}
