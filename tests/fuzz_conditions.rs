//! A bounded `cargo fuzz` run of the condition parser and evaluator
//! (`crates/authz/fuzz/fuzz_targets/parse_condition.rs`): libFuzzer feeds arbitrary text to
//! the parser; every condition that parses must print and re-parse to the same tree and
//! evaluate identically with and without tracing, and nothing may panic.
//!
//! Needs `cargo-fuzz` (`cargo install cargo-fuzz`; `.ci/run` installs it). In CI (`CI=true`) a
//! missing one fails the test; elsewhere it is skipped with the reason. The machine's stable
//! toolchain builds the target with `RUSTC_BOOTSTRAP=1` and `--sanitizer none` (libFuzzer's
//! coverage instrumentation needs no nightly-only sanitizer). `WHARF_FUZZ_SECONDS` sets the
//! time budget (default 60).

use std::path::Path;
use std::process::Command;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn require_cargo_fuzz() -> bool {
    let ok = Command::new(cargo()).args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("cargo-fuzz is required in CI (CI=true); .ci/run installs it with 'cargo install cargo-fuzz'");
    }
    eprintln!("SKIPPED: cargo-fuzz is not installed (cargo install cargo-fuzz); in CI this test fails instead");
    false
}

/// Conditions from Azure's documentation and the portal, as the starting corpus.
const SEEDS: &[&str] = &[
    "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'hello-world'))",
    "(\n (\n  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})\n )\n OR\n (\n  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'backend/'\n  OR\n  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'frontend/'\n )\n)",
    "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:Project<$key_case_sensitive$>] ForAnyOfAnyValues:StringEquals {'Cascade', 'Baker'}",
    "@Environment[isPrivateLink] BoolEquals true && @Environment[UtcNow] DateTimeGreaterThan '2026-01-01T00:00:00.0Z'",
    "NOT Exists @Request[Microsoft.ContainerRegistry/registries/repositories:name] || @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Eng_Project] StringLike 'ab\\*c?'",
    // Found by this test in CI: 63 negations of a call printed back one level too deep.
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!ActionMatches{''}",
    "@Request[Microsoft.X/y:n] NumericLessThanEquals 5 AND @Environment[Microsoft.Network/privateEndpoints] StringEqualsIgnoreCase '/subscriptions/s/x' AND @Request[Microsoft.X/ip:a] IpInRange '10.0.0.0/8'",
];

#[test]
fn condition_parser_and_evaluator_survive_bounded_fuzzing() {
    if !require_cargo_fuzz() {
        return;
    }
    let seconds: u64 = std::env::var("WHARF_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/authz/fuzz");
    let work = tempfile::tempdir().unwrap();
    let corpus = work.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    for (i, seed) in SEEDS.iter().enumerate() {
        std::fs::write(corpus.join(format!("seed-{i}")), seed).unwrap();
    }
    // A target directory of its own: the outer `cargo test` may hold the workspace's lock.
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => Path::new(&t).join("fuzz"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz"),
    };
    let out = Command::new(cargo())
        .current_dir(&fuzz_dir)
        .args(["fuzz", "run", "--sanitizer", "none", "parse_condition"])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", work.path().display()))
        .arg("-print_final_stats=1")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo fuzz");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let crashes: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("crash-") || n.starts_with("leak-") || n.starts_with("timeout-") || n.starts_with("oom-")
        })
        .collect();
    let tail: String =
        stderr.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(
        out.status.success() && crashes.is_empty(),
        "the fuzzer failed ({}); artifacts {crashes:?}:\n{tail}",
        out.status
    );
    let runs = stderr
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no final statistics from libFuzzer:\n{tail}"));
    assert!(runs > 1000, "the fuzzer ran only {runs} inputs:\n{tail}");
    eprintln!("fuzzed the condition parser and evaluator with {runs} inputs in {seconds} s");
}
