//! The onramp's workers as one service: the inbox folder, `FaxIn` routing and `MailOut`
//! delivery (received faxes and offramp reports alike), driven from the spool.
//!
//! Each pass ([`OnrampService::pass`]) scans the inbox and commits complete files, then runs
//! every due `FaxIn` job (routing and composing: local CPU work, one at a time) and every due
//! `MailOut` job (up to `relay.max_connections` deliveries at once). Retry times come from the
//! spool records, which the scheduler's `decide` set after each attempt; the service sleeps
//! until the earliest of: the next due job, the next inbox file settling, the inbox poll
//! interval — or until shutdown. An attempt in progress at shutdown is finished first (each
//! is bounded by `relay.timeout`).

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
use crate::spool::{JobKind, JobState, Spool};

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

    /// One pass at the current time; returns when the next pass is due.
    pub async fn pass(&mut self) -> Timestamp {
        let now = crate::spool::now();
        let sh = &self.shared;

        // 1. Inbox: complete files become FaxIn jobs (blocking file work off the runtime).
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
                if let Err(e) =
                    mail_out::attempt(&s.spool, &s.delivery, &s.policy, &s.notices, &id).await
                {
                    warn!(job = %id, "mail job: {e}");
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

    /// Runs passes until `shutdown`.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        loop {
            if shutdown.is_stopping() {
                break;
            }
            let wake = self.pass().await;
            let wait = wake.since(crate::spool::now());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.stopped() => break,
            }
        }
    }
}
