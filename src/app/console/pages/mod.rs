//! The console's web pages: plain HTML (maud, checked at compile time), one stylesheet and a
//! little JavaScript served from the binary — no build step, no CDN.
//!
//! Each area has its own module and routes: [`dashboard`] (lines and calls live, queue counts,
//! failures of the last 24 h; the event stream), [`jobs`] (the queue, one job's timeline and
//! page thumbnails), [`received`] (received faxes, page viewer, downloads, re-delivery),
//! [`send`] (upload and send a fax), [`system`] (modems, effective config). They share
//! [`layout`], so every page has the same head, navigation and user line.

pub mod dashboard;
pub mod jobs;
pub mod received;
pub mod send;
pub mod system;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};

use super::Console;
use super::auth::{Via, Who};

/// The stylesheet, served at `/static/console.css`.
pub const CSS: &str = include_str!("../static/console.css");
/// The script, served at `/static/console.js`.
pub const JS: &str = include_str!("../static/console.js");

/// Every page route.
pub fn routes() -> Router<Console> {
    Router::new()
        .route(
            "/static/console.css",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
            }),
        )
        .route(
            "/static/console.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    JS,
                )
                    .into_response()
            }),
        )
        .merge(dashboard::routes())
        .merge(jobs::routes())
        .merge(received::routes())
        .merge(send::routes())
        .merge(system::routes())
}

/// The navigation: (path, label).
pub const NAV: [(&str, &str); 6] = [
    ("/", "Dashboard"),
    ("/queue", "Queue"),
    ("/received", "Received"),
    ("/send", "Send a fax"),
    ("/modems", "Modems"),
    ("/config", "Config"),
];

/// A whole page: head, navigation (with `active` marked), the user line with logout, `body`.
/// The CSRF token is in `<meta name="csrf">` for the script's requests; forms put it in their
/// action's `?csrf=` themselves ([`csrf_action`]).
pub fn layout(title: &str, active: &str, who: &Who, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf" content=(who.csrf());
                title { (title) " — faxgate" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                header {
                    span.brand { "faxgate" }
                    nav {
                        @for (path, label) in NAV {
                            a href=(path) class=[(path == active).then_some("active")] { (label) }
                        }
                    }
                    span.who {
                        (who.user.name) " (" (who.user.role.word()) ")"
                        @if matches!(who.via, Via::Session { .. }) {
                            form.inline method="post" action=(csrf_action("/logout", who)) {
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// `path` with the CSRF token as its query, for a form's `action`.
pub fn csrf_action(path: &str, who: &Who) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}csrf={}", who.csrf())
}
