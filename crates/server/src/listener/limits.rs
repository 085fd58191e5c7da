//! Admission of connections: the cap on open connections per client address and in total
//! (over every listener), the file-descriptor budget behind the total, and the bookkeeping of
//! whether each open connection has a request in progress.
//!
//! Owns counting connections by client, choosing which idle connection gives way when the
//! server is full, and reading (and raising) `RLIMIT_NOFILE`. It never reads requests and never
//! closes a connection that has a request in progress.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::sync::Notify;
use tokio::time::Instant as TokioInstant;

use crate::config::ConnectionSettings;

/// File descriptors kept back from connections: standard streams, the log, the metadata
/// database (database, WAL, shared memory, journal), the runtime's epoll and wake-up
/// descriptors, the public and private-endpoint listeners, and temporary files.
pub const FD_RESERVE: u64 = 128;
/// Descriptors one connection may hold: its socket and a blob file it reads or writes.
pub const FDS_PER_CONNECTION: u64 = 2;

/// What the process may open, read at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit in force (`None`: unlimited).
    pub soft: Option<u64>,
    /// The soft limit before Wharf raised it, if it did.
    pub raised_from: Option<u64>,
}

impl FdLimit {
    /// Connections the limit leaves room for, after [`FD_RESERVE`], at
    /// [`FDS_PER_CONNECTION`] each (at least 1).
    pub fn connection_budget(self) -> usize {
        match self.soft {
            None => usize::MAX,
            Some(n) => {
                usize::try_from((n.saturating_sub(FD_RESERVE) / FDS_PER_CONNECTION).max(1)).unwrap_or(usize::MAX)
            }
        }
    }
}

/// Reads `RLIMIT_NOFILE` and raises the soft limit to the hard limit when that is allowed
/// (it always is for an unprivileged process; only the hard limit needs privileges).
pub fn raise_fd_limit() -> FdLimit {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    if current == maximum {
        return FdLimit { soft: current, raised_from: None };
    }
    match setrlimit(Resource::Nofile, Rlimit { current: maximum, maximum }) {
        Ok(()) => FdLimit { soft: getrlimit(Resource::Nofile).current, raised_from: current },
        Err(e) => {
            tracing::warn!(error = %e, soft = ?current, hard = ?maximum, "cannot raise the open-file limit");
            FdLimit { soft: current, raised_from: None }
        }
    }
}

/// A client, as the caps count it: an IPv4 address, or an IPv6 /64 (one host's usual share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpNet);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        let net = match wharf_netrules::normalise_ip(ip) {
            IpAddr::V4(v4) => IpNet::from(ipnet::Ipv4Net::new(v4, 32).expect("a /32")),
            IpAddr::V6(v6) => IpNet::from(ipnet::Ipv6Net::new(v6, 64).expect("a /64").trunc()),
        };
        ClientKey(net)
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpNet::V4(n) => write!(f, "{}", n.addr()),
            IpNet::V6(n) => write!(f, "{n}"),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client already holds `max_per_client` connections.
    PerClient,
    /// The server holds `max_total` connections and every one has a request in progress.
    Total,
}

/// What one connection is doing, as far as timeouts and eviction care.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    requests: u64,
    /// Since when no request has been in progress (accept, or the end of the last one).
    idle_since: TokioInstant,
    evicted: bool,
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// No first request within the header-read timeout.
    NoRequest,
    /// No new request within the idle timeout.
    Idle,
    /// Closed to admit another client while the server was full.
    Evicted,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                requests: 0,
                idle_since: TokioInstant::now(),
                evicted: false,
            }),
            changed: Notify::new(),
        }
    }

    /// A request started; it counts as in progress until the guard drops (when its response
    /// has been sent, or abandoned).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        let mut s = self.state.lock().expect("activity lock");
        s.in_flight += 1;
        s.requests += 1;
        drop(s);
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    fn is_idle(&self) -> bool {
        let s = self.state.lock().expect("activity lock");
        s.in_flight == 0 && !s.evicted
    }

    fn idle_since(&self) -> TokioInstant {
        self.state.lock().expect("activity lock").idle_since
    }

    /// Marks the connection to be closed if it is still idle; false if a request started
    /// since it was picked.
    fn try_evict(&self) -> bool {
        let mut s = self.state.lock().expect("activity lock");
        if s.in_flight > 0 || s.evicted {
            return false;
        }
        s.evicted = true;
        drop(s);
        self.changed.notify_waiters();
        true
    }

    /// When to close the connection, from what it is doing: `Ok(None)` while a request is in
    /// progress, `Err` when it must close now.
    fn deadline(&self, header_read: Duration, idle: Duration) -> Result<Option<(TokioInstant, Close)>, Close> {
        let s = self.state.lock().expect("activity lock");
        // A request that started as the connection was picked is served first.
        if s.in_flight > 0 {
            return Ok(None);
        }
        if s.evicted {
            return Err(Close::Evicted);
        }
        Ok(Some(match s.requests {
            0 => (s.idle_since + header_read, Close::NoRequest),
            _ => (s.idle_since + idle, Close::Idle),
        }))
    }

    /// Resolves when the connection must close: no first request within `header_read`, no
    /// request for `idle` after the last one ended, or evicted. Never while a request is in
    /// progress.
    pub async fn watchdog(&self, header_read: Duration, idle: Duration) -> Close {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.deadline(header_read, idle) {
                Err(why) => return why,
                Ok(None) => changed.await,
                Ok(Some((at, why))) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {
                            if let Ok(Some((again, _))) = self.deadline(header_read, idle)
                                && again <= TokioInstant::now()
                            {
                                return why;
                            }
                        }
                        _ = changed => {}
                    }
                }
            }
        }
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("activity lock");
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = TokioInstant::now();
        }
        drop(s);
        self.0.changed.notify_waiters();
    }
}

/// The caps, shared by every listener of the process.
#[derive(Debug)]
pub struct ConnectionLimits {
    pub settings: ConnectionSettings,
    /// The total cap in force: the configured one, lowered to the fd budget.
    pub max_total: usize,
    /// Peers that are not counted per client (trusted proxies carry many clients).
    exempt: Vec<IpNet>,
    inner: Mutex<Inner>,
    refused: RateLimited,
    evicted: RateLimited,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    per_client: HashMap<ClientKey, usize>,
    open: HashMap<u64, (ClientKey, Arc<Activity>)>,
    /// Connections told to close to make room that have not closed yet.
    evicting: usize,
}

impl ConnectionLimits {
    /// The caps for `settings`, with the total lowered to what `fd` leaves room for.
    pub fn new(settings: ConnectionSettings, fd: FdLimit, exempt: Vec<IpNet>) -> ConnectionLimits {
        let max_total = settings.max_total.min(fd.connection_budget());
        ConnectionLimits {
            settings,
            max_total,
            exempt,
            inner: Mutex::new(Inner::default()),
            refused: RateLimited::new(Duration::from_secs(10)),
            evicted: RateLimited::new(Duration::from_secs(10)),
        }
    }

    /// Admits a connection from `peer`, or refuses it (and logs that, at most every 10 s).
    /// When the server is full, the oldest idle connection of the client holding the most
    /// connections is told to close, and the new one is admitted in its place.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refusal> {
        let key = ClientKey::of(peer);
        let exempt = self.exempt.iter().any(|n| n.contains(&wharf_netrules::normalise_ip(peer)));
        let mut inner = self.inner.lock().expect("limits lock");
        let held = inner.per_client.get(&key).copied().unwrap_or(0);
        let refusal = if !exempt && held >= self.settings.max_per_client {
            Some(Refusal::PerClient)
        } else if inner.open.len() - inner.evicting >= self.max_total {
            let victim = inner.pick_victim().and_then(|id| inner.open.get(&id).cloned()).filter(|(_, a)| a.try_evict());
            match victim {
                Some((victim_key, _)) => {
                    inner.evicting += 1;
                    let (open, max_total) = (inner.open.len(), self.max_total);
                    self.evicted.log(|suppressed| {
                        tracing::warn!(
                            closed = %victim_key, admitted = %key, open, max_total, suppressed,
                            "the server holds the most connections allowed: closed an idle connection to admit a new one \
                             (suppressed: such closings not logged since the last message)"
                        )
                    });
                    None
                }
                None => Some(Refusal::Total),
            }
        } else {
            None
        };
        if let Some(refusal) = refusal {
            let open = inner.open.len();
            drop(inner);
            let (max_client, max_total) = (self.settings.max_per_client, self.max_total);
            self.refused.log(|suppressed| match refusal {
                Refusal::PerClient => tracing::warn!(
                    client = %key, max_per_client = max_client, suppressed,
                    "refused a connection: the client holds the most connections allowed per client \
                     (suppressed: refusals not logged since the last message)"
                ),
                Refusal::Total => tracing::warn!(
                    client = %key, open, max_total, suppressed,
                    "refused a connection: the server holds the most connections allowed and every one is busy"
                ),
            });
            return Err(refusal);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let activity = Arc::new(Activity::new());
        inner.open.insert(id, (key, activity.clone()));
        *inner.per_client.entry(key).or_insert(0) += 1;
        Ok(Admitted { limits: self.clone(), id, activity })
    }

    /// Open connections (tests and logs).
    pub fn open(&self) -> usize {
        self.inner.lock().expect("limits lock").open.len()
    }
}

impl Inner {
    /// An idle connection not already evicted: of the client with the most connections, the
    /// one idle the longest.
    fn pick_victim(&self) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, (_, a))| a.is_idle())
            .max_by_key(|(_, (key, a))| {
                (self.per_client.get(key).copied().unwrap_or(0), std::cmp::Reverse(a.idle_since()))
            })
            .map(|(id, _)| *id)
    }
}

/// An admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    limits: Arc<ConnectionLimits>,
    id: u64,
    pub activity: Arc<Activity>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.limits.inner.lock().expect("limits lock");
        if let Some((key, activity)) = inner.open.remove(&self.id) {
            if activity.state.lock().expect("activity lock").evicted {
                inner.evicting -= 1;
            }
            match inner.per_client.get_mut(&key) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    inner.per_client.remove(&key);
                }
            }
        }
    }
}

/// At most one log line per `every`, reporting how many were suppressed in between.
#[derive(Debug)]
pub struct RateLimited {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimited {
    pub fn new(every: Duration) -> RateLimited {
        RateLimited { every, state: Mutex::new((None, 0)) }
    }

    /// Calls `emit(suppressed)` unless a line was emitted less than `every` ago.
    pub fn log(&self, emit: impl FnOnce(u64)) {
        let mut s = self.state.lock().expect("rate limit lock");
        let now = Instant::now();
        match s.0 {
            Some(last) if now.duration_since(last) < self.every => s.1 += 1,
            _ => {
                let suppressed = s.1;
                *s = (Some(now), 0);
                drop(s);
                emit(suppressed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_client: usize, total: usize) -> ConnectionSettings {
        ConnectionSettings { max_per_client: per_client, max_total: total, ..ConnectionSettings::default() }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_fd_budget_leaves_the_reserve_and_two_descriptors_per_connection() {
        assert_eq!(FdLimit { soft: Some(256), raised_from: None }.connection_budget(), 64);
        assert_eq!(FdLimit { soft: Some(100), raised_from: None }.connection_budget(), 1);
        assert_eq!(FdLimit { soft: None, raised_from: None }.connection_budget(), usize::MAX);
        let fd = FdLimit { soft: Some(256), raised_from: None };
        assert_eq!(ConnectionLimits::new(settings(8, 1000), fd, vec![]).max_total, 64);
        assert_eq!(ConnectionLimits::new(settings(8, 10), fd, vec![]).max_total, 10);
    }

    #[test]
    fn ipv6_clients_count_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ClientKey::of(ip("2001:db8:1:2::1")), ClientKey::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(ClientKey::of(ip("2001:db8:1:2::1")), ClientKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(ClientKey::of(ip("::ffff:127.0.0.5")), ClientKey::of(ip("127.0.0.5")));
        assert_ne!(ClientKey::of(ip("127.0.0.5")), ClientKey::of(ip("127.0.0.6")));
    }

    #[tokio::test]
    async fn per_client_cap_refuses_and_a_closed_connection_frees_its_place() {
        let fd = FdLimit { soft: None, raised_from: None };
        let limits = Arc::new(ConnectionLimits::new(settings(2, 100), fd, vec!["10.0.0.0/8".parse().unwrap()]));
        let a = limits.admit(ip("127.0.0.5")).unwrap();
        let _b = limits.admit(ip("127.0.0.5")).unwrap();
        assert_eq!(limits.admit(ip("127.0.0.5")).unwrap_err(), Refusal::PerClient);
        let _other = limits.admit(ip("127.0.0.6")).unwrap();
        drop(a);
        let _c = limits.admit(ip("127.0.0.5")).unwrap();
        // A trusted proxy counts only towards the total.
        let proxy: Vec<_> = (0..5).map(|_| limits.admit(ip("10.1.1.1")).unwrap()).collect();
        assert_eq!(limits.open(), 3 + proxy.len());
    }

    #[tokio::test]
    async fn when_full_the_busiest_clients_idle_connection_gives_way_and_busy_ones_never_do() {
        let fd = FdLimit { soft: None, raised_from: None };
        let limits = Arc::new(ConnectionLimits::new(settings(10, 3), fd, vec![]));
        let normal = limits.admit(ip("127.0.0.1")).unwrap();
        let attacker1 = limits.admit(ip("127.0.0.9")).unwrap();
        let attacker2 = limits.admit(ip("127.0.0.9")).unwrap();
        let _request = normal.activity.begin();
        let newcomer = limits.admit(ip("127.0.0.1")).unwrap();
        // One of the attacker's connections was told to close; the busy one was not.
        let evicted = [&attacker1, &attacker2]
            .iter()
            .filter(|a| a.activity.deadline(Duration::ZERO, Duration::ZERO) == Err(Close::Evicted))
            .count();
        assert_eq!(evicted, 1);
        assert_eq!(normal.activity.deadline(Duration::ZERO, Duration::ZERO), Ok(None));
        // Until it closes, it is not picked again; then every connection is busy or evicted.
        let _busy1 = newcomer.activity.begin();
        let survivor = if attacker1.activity.is_idle() { &attacker1 } else { &attacker2 };
        let _busy2 = survivor.activity.begin();
        assert_eq!(limits.admit(ip("127.0.0.7")).unwrap_err(), Refusal::Total);
    }

    #[test]
    fn a_request_that_starts_as_its_connection_is_picked_is_served_first() {
        let activity = Arc::new(Activity::new());
        assert!(activity.try_evict());
        assert!(!activity.try_evict(), "evicted once");
        let request = activity.begin();
        assert_eq!(activity.deadline(Duration::ZERO, Duration::ZERO), Ok(None));
        drop(request);
        assert_eq!(activity.deadline(Duration::ZERO, Duration::ZERO), Err(Close::Evicted));
        let busy = Arc::new(Activity::new());
        let _request = busy.begin();
        assert!(!busy.try_evict(), "a busy connection is never evicted");
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_waits_for_requests_to_end() {
        let activity = Arc::new(Activity::new());
        let (header, idle) = (Duration::from_secs(5), Duration::from_secs(20));
        let started = tokio::time::Instant::now();
        assert_eq!(activity.watchdog(header, idle).await, Close::NoRequest);
        assert_eq!(started.elapsed(), header);
        let req = activity.begin();
        let watch = tokio::spawn({
            let a = activity.clone();
            async move { a.watchdog(header, idle).await }
        });
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!watch.is_finished(), "a request in progress is never timed out by the watchdog");
        let ended = tokio::time::Instant::now();
        drop(req);
        assert_eq!(watch.await.unwrap(), Close::Idle);
        assert_eq!(ended.elapsed(), idle);
    }

    #[test]
    fn rate_limited_logs_once_per_period_and_counts_the_rest() {
        let r = RateLimited::new(Duration::from_secs(3600));
        let mut emitted = vec![];
        for _ in 0..5 {
            r.log(|n| emitted.push(n));
        }
        assert_eq!(emitted, vec![0]);
        r.state.lock().unwrap().0 = Some(Instant::now() - Duration::from_secs(7200));
        r.log(|n| emitted.push(n));
        assert_eq!(emitted, vec![0, 4]);
    }
}
