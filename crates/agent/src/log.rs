//! Owns the run's log: every line goes out through [`RunLog::line`], which masks the plan's
//! secrets first, and the ACR-style lines the engine writes itself (step headers, step results,
//! pushed images, the final run line). Must never send a line that has not been masked.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{LogSink, PushedImage};

/// Replaces every secret in `text` with `***`. The one place masking happens, so that the
/// tasks crate's masker can replace it.
pub(crate) fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// The sink of one run, with the secrets it masks.
#[derive(Clone)]
pub(crate) struct RunLog {
    sink: LogSink,
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl RunLog {
    pub(crate) fn new(sink: LogSink, secrets: &[String]) -> RunLog {
        let mut secrets: Vec<String> = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        RunLog { sink, secrets }
    }

    pub(crate) fn mask(&self, text: &str) -> String {
        mask(text, &self.secrets)
    }

    /// Sends `text`, masked, one message per line. A closed sink is not an error: the run goes
    /// on without a reader.
    pub(crate) fn line(&self, text: &str) {
        let masked = self.mask(text);
        for l in masked.split('\n') {
            let _ = self.sink.send(l.strip_suffix('\r').unwrap_or(l).to_string());
        }
    }

    /// A line the engine writes, with ACR's timestamp prefix (`2026/12/04 18:30:00 …`).
    pub(crate) fn event(&self, text: &str) {
        self.line(&format!("{} {text}", timestamp(Utc::now())));
    }
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y/%m/%d %H:%M:%S").to_string()
}

/// `Executing step ID: acb_step_0. Timeout(sec): 600, Working directory: '', Network: 'host'`.
pub(crate) fn step_header(id: &str, timeout: Duration, working_directory: &str, network: &str) -> String {
    format!(
        "Executing step ID: {id}. Timeout(sec): {}, Working directory: '{working_directory}', Network: '{network}'",
        timeout.as_secs()
    )
}

pub(crate) fn step_succeeded(id: &str, elapsed: Duration) -> String {
    format!("Step ID: {id} marked as successful (elapsed time in seconds: {:.2})", elapsed.as_secs_f64())
}

pub(crate) fn step_failed(id: &str, elapsed: Duration, why: &str) -> String {
    format!("Step ID: {id} marked as failed (elapsed time in seconds: {:.2}), {why}", elapsed.as_secs_f64())
}

/// `- image: registry: r, repository: p, tag: t, digest: sha256:…`.
pub(crate) fn pushed_image(i: &PushedImage) -> String {
    format!(
        "- image: registry: {}, repository: {}, tag: {}, digest: {}",
        i.registry,
        i.repository,
        i.tag.as_deref().unwrap_or(""),
        i.digest
    )
}

/// A duration as Go prints a rounded one: `3s`, `1m5s`, `2h0m1s`.
pub(crate) fn go_seconds(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_longest_first() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let log = RunLog::new(tx, &["ab".into(), "abcd".into(), String::new()]);
        log.line("x abcd y ab\nsecond abc\r");
        assert_eq!(rx.try_recv().unwrap(), "x *** y ***");
        assert_eq!(rx.try_recv().unwrap(), "second ***c");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn formats_like_acr() {
        assert_eq!(
            step_header("acb_step_0", Duration::from_secs(600), "", "host"),
            "Executing step ID: acb_step_0. Timeout(sec): 600, Working directory: '', Network: 'host'"
        );
        assert_eq!(
            step_succeeded("s", Duration::from_millis(520)),
            "Step ID: s marked as successful (elapsed time in seconds: 0.52)"
        );
        assert_eq!(go_seconds(Duration::from_millis(2600)), "3s");
        assert_eq!(go_seconds(Duration::from_secs(65)), "1m5s");
        assert_eq!(go_seconds(Duration::from_secs(7201)), "2h0m1s");
        let t = DateTime::parse_from_rfc3339("2026-12-04T18:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(timestamp(t), "2026/12/04 18:30:00");
    }
}
