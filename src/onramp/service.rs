//! The onramp's workers: the inbox folder, `FaxIn` routing and `MailOut` delivery (received
//! faxes and offramp reports alike).
//!
//! In the daemon the dispatcher (`crate::app::dispatch`) runs `FaxIn` and `MailOut` jobs
//! through [`Onramp::fax_in`] and [`Onramp::mail_out`] like every other job, and
//! [`OnrampService::run`] only watches the inbox folder: a complete file becomes a `FaxIn`
//! job, which the spool reports to the dispatcher. [`OnrampService::pass`] does one turn of
//! everything at once without a dispatcher (tests drive the onramp alone with it).
//! An attempt in progress at shutdown is finished first (each is bounded by `relay.timeout`).

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinSet;
use tracing::{error, warn};

use super::compose::{ComposeError, Settings};
use super::fax_in;
use super::inbox::{Inbox, InboxError};
use super::route::{RouteError, RouteTable};
use crate::config::Config;
use crate::daemon::Shutdown;
use crate::delivery::mail_out::{self, Notices};
use crate::delivery::{Delivery, DeliveryError};
use crate::scheduler::{Policy, Timestamp};
use crate::spool::{JobId, JobKind, JobState, Spool};

/// How often the inbox folder is scanned (ours): a dropped file is noticed within a second.
pub const INBOX_POLL: Duration = Duration::from_secs(1);
/// Most jobs started in one pass (ours): keeps a pass bounded when thousands are due.
pub const MAX_JOBS_PER_PASS: usize = 256;

/// Why the service could not start (configuration or environment; reported at start-up).
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The route table.
    #[error("routes: {0}")]
    Routes(#[from] RouteError),
    /// A template.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The relay settings.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The inbox folder.
    #[error("inbox: {0}")]
    Inbox(#[from] InboxError),
}

/// Everything the onramp workers share.
#[derive(Debug)]
struct Shared {
    spool: Spool,
    settings: Settings,
    routes: RouteTable,
    delivery: Delivery,
    policy: Policy,
    notices: Notices,
}

/// The running onramp.
#[derive(Debug)]
pub struct OnrampService {
    shared: Arc<Shared>,
    inbox: Inbox,
    render: crate::image::render::Options,
    relay_connections: usize,
}

impl OnrampService {
    /// Sets the service up from `config` over an opened `spool`.
    pub fn new(config: &Config, spool: Spool) -> Result<OnrampService, ServiceError> {
        Ok(OnrampService {
            shared: Arc::new(Shared {
                spool,
                settings: Settings::from_config(config)?,
                routes: RouteTable::new(&config.routes)?,
                delivery: Delivery::from_config(config)?,
                policy: Policy::from(&config.retry),
                notices: Notices::from_config(config),
            }),
            inbox: Inbox::new(
                config.data_path(&config.onramp.inbox),
                config.onramp.inbox_settle,
            )?,
            render: crate::image::render::Options::from_config(&config.offramp),
            relay_connections: config.relay.max_connections.max(1),
        })
    }

    /// The job workers, to hand to the dispatcher.
    pub fn workers(&self) -> Onramp {
        Onramp(Arc::clone(&self.shared))
    }

    /// Watches the inbox folder until `shutdown`: complete files become `FaxIn` jobs.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        loop {
            if shutdown.is_stopping() {
                break;
            }
            self.scan_inbox(crate::spool::now()).await;
            let now = crate::spool::now();
            let wake = self
                .inbox
                .poll_at()
                .unwrap_or(now.plus(INBOX_POLL))
                .min(now.plus(INBOX_POLL));
            tokio::select! {
                _ = tokio::time::sleep(wake.since(now)) => {}
                _ = shutdown.stopped() => break,
            }
        }
    }

    /// Complete inbox files become `FaxIn` jobs (blocking file work off the runtime).
    async fn scan_inbox(&mut self, now: Timestamp) {
        let sh = &self.shared;
        match self.inbox.scan(now) {
            Ok(ready) => {
                for path in ready {
                    let (sp, dir) = (sh.spool.clone(), self.inbox.dir().to_path_buf());
                    let opts = self.render.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || {
                        super::inbox::take_file(&dir, &sp, &path, now, &opts)
                    })
                    .await
                    {
                        error!("inbox task: {e}");
                    }
                }
            }
            Err(e) => error!("inbox scan failed: {e}"),
        }
    }

    /// One turn without a dispatcher: the inbox, then every due `FaxIn` and `MailOut` job;
    /// returns when the next turn is due. (Tests drive the onramp alone with it; the daemon
    /// uses [`OnrampService::run`] and the dispatcher.)
    pub async fn pass(&mut self) -> Timestamp {
        let now = crate::spool::now();

        // 1. Inbox.
        self.scan_inbox(now).await;
        let sh = &self.shared;

        // 2. Due jobs of ours, in priority / due / id order.
        let loaded = {
            let sp = sh.spool.clone();
            match tokio::task::spawn_blocking(move || sp.load()).await {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    error!("spool: {e}");
                    return now.plus(INBOX_POLL);
                }
                Err(e) => {
                    error!("spool task: {e}");
                    return now.plus(INBOX_POLL);
                }
            }
        };
        let mut due: Vec<_> = loaded
            .jobs
            .into_iter()
            .filter(|r| {
                matches!(r.kind, JobKind::FaxIn | JobKind::MailOut)
                    && r.state == JobState::Queued
                    && r.next_due <= now
            })
            .collect();
        due.sort_by(|a, b| (a.priority, a.next_due, &a.id).cmp(&(b.priority, b.next_due, &b.id)));
        due.truncate(MAX_JOBS_PER_PASS);

        // FaxIn first: their mail joins this pass's deliveries.
        let mut new_mail = Vec::new();
        for rec in due.iter().filter(|r| r.kind == JobKind::FaxIn) {
            let (s, id) = (self.shared.clone(), rec.id.clone());
            match tokio::task::spawn_blocking(move || {
                fax_in::process(&s.spool, &s.settings, &s.routes, &s.policy, &id)
            })
            .await
            {
                Ok(Ok((mail, _))) => new_mail.push(mail),
                Ok(Err(e)) => error!(job = %rec.id, "fax routing failed: {e}"),
                Err(e) => error!(job = %rec.id, "fax routing task: {e}"),
            }
        }
        let mut mail: Vec<_> = due
            .iter()
            .filter(|r| r.kind == JobKind::MailOut)
            .map(|r| r.id.clone())
            .collect();
        mail.extend(new_mail);
        mail.dedup();

        let mut set = JoinSet::new();
        for id in mail {
            while set.len() >= self.relay_connections {
                let _ = set.join_next().await;
            }
            let s = self.shared.clone();
            set.spawn(async move {
                match mail_out::attempt(&s.spool, &s.delivery, &s.policy, &s.notices, &id).await {
                    Ok((rec, decision)) => parked_alert(&rec, &decision, &s.delivery),
                    Err(e) => warn!(job = %id, "mail job: {e}"),
                }
            });
        }
        while set.join_next().await.is_some() {}

        self.next_wake().await
    }

    /// The earliest of: next due job of ours, next inbox file settling, next inbox poll.
    async fn next_wake(&self) -> Timestamp {
        let now = crate::spool::now();
        let mut wake = now.plus(INBOX_POLL);
        if let Some(t) = self.inbox.poll_at() {
            wake = wake.min(t);
        }
        let sp = self.shared.spool.clone();
        if let Ok(Ok(l)) = tokio::task::spawn_blocking(move || sp.load()).await {
            for r in l.jobs.iter().filter(|r| {
                matches!(r.kind, JobKind::FaxIn | JobKind::MailOut) && r.state == JobState::Queued
            }) {
                wake = wake.min(r.next_due);
            }
        }
        wake
    }
}

/// The onramp's job workers, shared with the dispatcher.
#[derive(Debug, Clone)]
pub struct Onramp(Arc<Shared>);

impl Onramp {
    /// Routes and mails `FaxIn` job `id`. Returns false when it should be held off (our
    /// trouble, and its record could not say so).
    pub async fn fax_in(&self, id: &JobId) -> bool {
        let (s, i) = (Arc::clone(&self.0), id.clone());
        match tokio::task::spawn_blocking(move || {
            fax_in::process(&s.spool, &s.settings, &s.routes, &s.policy, &i)
        })
        .await
        {
            Ok(Ok(_)) => true,
            // The attempt was recorded (and its retry set) before the error came back.
            Ok(Err(fax_in::FaxInError::Spool(e))) => {
                error!(job = %id, "fax routing failed: {e}");
                false
            }
            Ok(Err(e)) => {
                error!(job = %id, "fax routing failed: {e}");
                true
            }
            Err(e) => {
                error!(job = %id, "fax routing task: {e}");
                false
            }
        }
    }

    /// One delivery attempt of `MailOut` job `id`. Returns false when it should be held off.
    pub async fn mail_out(&self, id: &JobId) -> bool {
        let s = &self.0;
        match mail_out::attempt(&s.spool, &s.delivery, &s.policy, &s.notices, id).await {
            Ok((rec, decision)) => {
                parked_alert(&rec, &decision, &s.delivery);
                true
            }
            Err(e) => {
                warn!(job = %id, "mail job: {e}");
                !matches!(e, mail_out::MailOutError::Spool(_))
            }
        }
    }
}

/// A received fax whose email could not be handed to its destination through our own fault
/// (the Maildir not writable, the disk full) is parked: its mail job stays in the spool's
/// `queue/` with the fax inside and is retried with backoff, then kept in `failed/` with a
/// notice to `gateway.admin` at give-up. The first failure is logged at error at once, naming
/// the destination and the job, because a notice by mail may have to go the same broken way:
/// the log is the alert that always arrives.
fn parked_alert(
    rec: &crate::spool::JobRecord,
    decision: &crate::scheduler::Decision,
    delivery: &Delivery,
) {
    let crate::scheduler::Decision::RetryAt(at) = decision else {
        return;
    };
    let crate::job::JobData::MailOut(d) = &rec.data else {
        return;
    };
    if !matches!(d.purpose, mail_out::Purpose::Fax { .. }) {
        return;
    }
    let Some(last) = rec.attempts.last() else {
        return;
    };
    if last.cause != Some(crate::scheduler::CauseClass::LocalTemporary) {
        return;
    }
    // Once per job: at its first local failure (later ones are logged as retries).
    let local_failures = rec
        .attempts
        .iter()
        .filter(|a| a.cause == Some(crate::scheduler::CauseClass::LocalTemporary))
        .count();
    if local_failures == 1 {
        error!(
            job = %rec.id,
            "a received fax could not be delivered to {}: {}; the fax is parked in the spool's \
             queue/ and retried at {at} (`faxgate queue retry {}` tries now)",
            delivery.describe(),
            crate::logging::untrusted(&last.detail),
            rec.id
        );
    }
}
