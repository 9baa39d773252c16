//! `GET /metrics`: the Prometheus exposition ([`crate::metrics`]), behind the console's gate
//! like the API (a token or a login when a users file exists; any role may read it).
//!
//! The queue depth and the lines' states are read here, at scrape, from what the daemon keeps
//! in memory — the dispatcher's [`Live`](super::super::dispatch::Live) figures and the modem
//! board — so a scrape costs the same whatever the backlog and never touches the spool.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::control::modems_now;
use super::super::status::ModemState;
use super::{Console, api_error};
use crate::metrics::{self, Scrape};

/// The states a live line can be in (`stopped` is only ever shown for a daemon that is not
/// running, which cannot be scraped).
const LINE_STATES: [ModemState; 4] = [
    ModemState::Idle,
    ModemState::Sending,
    ModemState::Receiving,
    ModemState::Offline,
];

/// What the daemon knows now, from memory.
fn now(c: &Console) -> Scrape {
    let queue = {
        let f = c.live.lock().unwrap_or_else(|p| p.into_inner());
        f.counts()
    };
    Scrape {
        queue: queue
            .into_iter()
            .map(|(kind, n)| (kind, (n.queued, n.running)))
            .collect(),
        lines: modems_now(&c.board)
            .into_iter()
            .map(|m| (m.name, m.state.word()))
            .collect(),
        line_states: LINE_STATES.iter().map(|s| s.word()).collect(),
    }
}

/// `GET /metrics`: OpenMetrics text when the scraper asks for it (Prometheus does), else the
/// classic Prometheus text format 0.0.4.
pub async fn scrape(State(c): State<Console>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(metrics::wants_openmetrics);
    match metrics::encode(&now(&c), openmetrics) {
        Ok(body) => {
            let ct = if openmetrics {
                metrics::OPENMETRICS
            } else {
                metrics::CLASSIC
            };
            ([(header::CONTENT_TYPE, ct)], body).into_response()
        }
        // Writing into a String fails only if a metric's own encoder does.
        Err(_) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics",
            "the metrics could not be encoded",
        ),
    }
}
