//! Feeds arbitrary bytes to the condition parser; every successful parse is
//! printed, re-parsed and evaluated (fast and traced) against a few requests.
//! Nothing may panic, and the printed form must parse back to the same AST.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_authz::condition::parser::MAX_CONDITION_BYTES;
use wharf_authz::condition::{AttributeSource, AttributeValue, Condition, ParseErrorKind, RequestContext};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let condition = match Condition::parse(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.render();
            return;
        }
    };
    // The canonical text spells `&&` and `!` as words, so it may outgrow the
    // 8 KB limit on submitted text; that is the only refusal allowed.
    let canonical = condition.canonical();
    match Condition::parse(&canonical) {
        Ok(reparsed) => assert_eq!(reparsed.expr(), condition.expr()),
        Err(e) => assert!(
            canonical.len() > MAX_CONDITION_BYTES && matches!(e.kind, ParseErrorKind::TooLong { .. }),
            "canonical text must parse: {}",
            e.render()
        ),
    }
    let requests = [
        RequestContext::new("Microsoft.ContainerRegistry/registries/repositories/content/read")
            .with_repository("backend/api"),
        RequestContext::new("Microsoft.ContainerRegistry/registries/repositories/content/write")
            .with_sub_operation("Blob.List")
            .with_attribute(AttributeSource::Request, "Microsoft.X/x:n", 5)
            .with_attribute(
                AttributeSource::Principal,
                "Microsoft.Directory/CustomSecurityAttributes/Id:P",
                AttributeValue::List(vec!["a".into(), 3.into()]),
            ),
        RequestContext::new("x"),
    ];
    for ctx in &requests {
        let outcome = condition.truth(ctx);
        assert_eq!(condition.trace(ctx).outcome, outcome);
    }
});
