//! Owns the child processes: spawning buildah and podman in their own process group, streaming
//! stdout and stderr line by line into the run's log as the lines come, and ending a child on a
//! deadline or a stop — SIGTERM to its whole group (buildah then takes down its RUN
//! container), SIGKILL after a grace period. Must never wait on a child without a bound.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::log::RunLog;

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// The longest log line, in bytes.
const MAX_LINE: u64 = 64 * 1024;
/// How long the output of a finished child may still take to drain.
const DRAIN: Duration = Duration::from_secs(2);

/// How a streamed child ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// It exited with this code (a signal counts as `128 + n`, as a shell reports it).
    Code(i32),
    /// The deadline passed; it was ended.
    TimedOut,
    /// The stop token fired; it was ended.
    Stopped,
    /// It could not be started.
    Spawn(std::io::Error),
}

fn command(program: &Path, args: &[String], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).process_group(0).kill_on_drop(true);
    cmd
}

fn code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(-1)
}

/// Runs `program args`, every output line into `log`, until it exits, `deadline` passes or
/// `stop` fires. On the last two, `abort` runs first (it removes the step's container), then
/// the child's process group is ended.
pub(crate) async fn stream(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &RunLog,
    deadline: Instant,
    stop: &CancellationToken,
    abort: impl Future<Output = ()>,
) -> Exit {
    let mut child = match command(program, args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return Exit::Spawn(e),
    };
    let pumps = [child.stdout.take().map(|r| pump(r, log.clone())), child.stderr.take().map(|r| pump(r, log.clone()))];
    let ended = tokio::select! {
        s = child.wait() => Some(s),
        _ = sleep_until(deadline) => None,
        _ = stop.cancelled() => None,
    };
    let exit = match ended {
        Some(Ok(s)) => Exit::Code(code(s)),
        Some(Err(e)) => Exit::Spawn(e),
        None => {
            let timed_out = !stop.is_cancelled();
            abort.await;
            end_group(&mut child).await;
            if timed_out { Exit::TimedOut } else { Exit::Stopped }
        }
    };
    for p in pumps.into_iter().flatten() {
        let abort = p.abort_handle();
        if timeout(DRAIN, p).await.is_err() {
            abort.abort();
        }
    }
    exit
}

/// SIGTERM to the child's group, SIGKILL to it after [`GRACE`].
async fn end_group(child: &mut Child) {
    let Some(pid) = child.id().and_then(|p| Pid::from_raw(p as i32)) else {
        return;
    };
    let _ = kill_process_group(pid, Signal::TERM);
    if timeout(GRACE, child.wait()).await.is_err() {
        let _ = kill_process_group(pid, Signal::KILL);
        let _ = child.kill().await;
    }
    // Stragglers of the group (the child may have exited before them).
    let _ = kill_process_group(pid, Signal::KILL);
}

/// Sends every line (lossily decoded, without its line ending) to `log`; a line longer than
/// [`MAX_LINE`] bytes is sent in pieces of that size.
fn pump(r: impl AsyncRead + Unpin + Send + 'static, log: RunLog) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    log.line(text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    })
}

/// Runs `program args` to completion within `limit` and returns its exit code and stdout
/// (stderr appended). For short housekeeping commands (`--version`, `podman rm`).
pub(crate) async fn quiet(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    limit: Duration,
) -> std::io::Result<(i32, String)> {
    let child = command(program, args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    match timeout(limit, child.wait_with_output()).await {
        Ok(out) => {
            let out = out?;
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Ok((code(out.status), text))
        }
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{} did not finish within {}s", program.display(), limit.as_secs()),
        )),
    }
}

/// A detached helper (`podman logs -f`) whose lines go to `log` until it exits or is aborted.
pub(crate) fn follow(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    log: RunLog,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut child = command(program, args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let pumps = [child.stdout.take().map(|r| pump(r, log.clone())), child.stderr.take().map(|r| pump(r, log))];
    Ok(tokio::spawn(async move {
        // Dropping this task (abort) drops the child, which kills it (`kill_on_drop`).
        let _ = child.wait().await;
        for p in pumps.into_iter().flatten() {
            let _ = timeout(DRAIN, p).await;
        }
    }))
}
