//! Send a fax: `GET /send`, a form of one or more numbers, one or more files (PDF, TIFF,
//! images, text), an optional cover text, the resolution and an optional notification
//! address. The script (`static/console.js`) posts it as multipart to the API's
//! `POST /api/v1/faxes` with the page's CSRF token in `X-CSRF-Token`, shows the API's error
//! sentence on the page, and opens the new job (`/jobs/<id>`) on success: the same dial plan,
//! size limits and sender authorization as every other way in.
//!
//! The fields' ids (`#to`, `#file`, `#cover`, `#resolution`, `#notify`, `#send`) are stable:
//! the browser test finds them by id.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;

use super::{csrf_action, layout};
use crate::app::console::Console;
use crate::app::console::auth::Who;

/// The file types the form offers (the API decides what it takes).
pub const ACCEPT: &str = ".pdf,.tif,.tiff,.png,.jpg,.jpeg,.gif,.bmp,.webp,.pnm,.pbm,.pgm,.txt,\
application/pdf,image/tiff,image/png,image/jpeg,image/gif,image/bmp,image/webp,text/plain";

/// This area's routes.
pub fn routes() -> Router<Console> {
    Router::new().route("/send", get(form))
}

async fn form(axum::Extension(who): axum::Extension<Who>) -> Response {
    let scope = &who.user.scope;
    let body = html! {
        h1 { "Send a fax" }
        // Without the script the form still posts (one number per field) to the API, which
        // answers in JSON.
        form #send-form method="post" enctype="multipart/form-data"
            action=(csrf_action("/api/v1/faxes", &who)) {
            p {
                label for="to" { "Fax number(s)" }
                br;
                input #to name="to" type="text" required size="40"
                    placeholder="+12125550123, +12125550142" autocomplete="off";
                br;
                small.muted {
                    "One or more numbers, separated by commas or spaces; "
                    "international form (+country code) or as dialled here."
                    @if !scope.numbers.is_empty() { " You may send to: " (scope.numbers.join(", ")) "." }
                }
            }
            p {
                label for="file" { "Document(s)" }
                br;
                input #file name="file" type="file" multiple required accept=(ACCEPT);
                br;
                small.muted { "PDF, TIFF, PNG, JPEG, GIF, BMP, WebP or plain text; several files are faxed in order." }
            }
            p {
                label for="cover" { "Cover page text (optional)" }
                br;
                textarea #cover name="cover" rows="4" cols="60" {}
            }
            p {
                label for="resolution" { "Resolution" }
                " "
                select #resolution name="resolution" {
                    option value="standard" { "standard (204 × 98 dpi)" }
                    option value="fine" selected { "fine (204 × 196 dpi)" }
                    option value="superfine" { "superfine (204 × 391 dpi)" }
                }
            }
            p {
                label for="notify" { "Tell this address how it went (optional)" }
                br;
                input #notify name="notify" type="email" size="40" autocomplete="email";
            }
            p {
                button #send type="submit" { "Send" }
                " "
                span #send-status role="status" {}
            }
            p #send-error.bad role="alert" hidden {}
        }
    };
    layout("Send a fax", "/send", &who, body).into_response()
}
