//! Property tests: masking never lets a secret through, and no input makes rendering,
//! parsing or planning panic (each either succeeds or returns a positioned error).

use proptest::prelude::*;
use wharf_tasks::{Masker, RunVars, TaskSource, Values, parse_task_file, plan, render_template, split_words};

fn vars() -> RunVars {
    RunVars {
        id: "cf1".into(),
        registry: "r.io".into(),
        registry_name: "r".into(),
        date: "20261204-183000z".into(),
        os: "linux".into(),
        architecture: "amd64".into(),
        task_name: "t".into(),
        commit: String::new(),
        branch: String::new(),
        shared_volume: "/workspace".into(),
    }
}

proptest! {
    #[test]
    fn no_secret_survives_masking(
        secrets in prop::collection::vec("[abc]{1,4}", 0..4),
        line in "[abc x]{0,40}",
    ) {
        let masked = Masker::new(&secrets).mask(&line).into_owned();
        for s in &secrets {
            prop_assert!(!masked.contains(s.as_str()), "{s:?} in {masked:?} (from {line:?})");
        }
        if secrets.iter().all(|s| !line.contains(s.as_str())) {
            prop_assert_eq!(masked, line);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[a-z$:{}\\[\\]\\-\\. \n\"'#|>&*!.]{0,80}") {
        let values = Values::new();
        let _ = render_template(&text, &vars(), &values);
        let _ = parse_task_file(&text);
        let _ = split_words(&text);
        if let Err(e) = plan(&TaskSource::Yaml(text.clone()), &vars(), &values) {
            // Every task-file error has a position inside the text.
            let at = e.position().expect("task file errors have a position");
            prop_assert!(at.line >= 1 && at.line <= text.lines().count().max(1) + 1, "{e}");
        }
    }

    #[test]
    fn step_shaped_text_never_panics(
        key in "(id|cmd|build|push|when|timeout|env|detach|bogus)",
        value in "[a-z0-9$ .\\-\\[\\]\"{}]{0,20}",
        version in "(v1\\.0\\.0|v1\\.1\\.0)",
    ) {
        let text = format!("version: {version}\nsteps:\n  - cmd: busybox\n    {key}: {value}\n  - id: b\n    build: .\n");
        if let Err(e) = plan(&TaskSource::Yaml(text.clone()), &vars(), &Values::new()) {
            prop_assert!(e.position().is_some(), "{e}");
        }
    }
}
