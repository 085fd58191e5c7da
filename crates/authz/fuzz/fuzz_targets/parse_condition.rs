//! Feeds arbitrary bytes to the condition parser; every successful parse is
//! printed, re-parsed and evaluated (fast and traced) against a few requests.
//! Nothing may panic, and the printed form must parse back to the same AST.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_authz::condition::{AttributeSource, AttributeValue, Condition, RequestContext};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let condition = match Condition::parse(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.render();
            return;
        }
    };
    let reparsed = Condition::parse(&condition.canonical()).expect("canonical text must parse");
    assert_eq!(reparsed.expr(), condition.expr());
    let requests = [
        RequestContext::new("Microsoft.ContainerRegistry/registries/repositories/content/read").with_repository("backend/api"),
        RequestContext::new("Microsoft.ContainerRegistry/registries/repositories/content/write")
            .with_sub_operation("Blob.List")
            .with_attribute(AttributeSource::Request, "Microsoft.X/x:n", 5)
            .with_attribute(AttributeSource::Principal, "Microsoft.Directory/CustomSecurityAttributes/Id:P", AttributeValue::List(vec!["a".into(), 3.into()])),
        RequestContext::new("x"),
    ];
    for ctx in &requests {
        let outcome = condition.truth(ctx);
        assert_eq!(condition.trace(ctx).outcome, outcome);
    }
});
