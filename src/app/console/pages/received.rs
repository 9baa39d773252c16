//! (filled in by the console work: see the pages module).

use axum::Router;

use crate::app::console::Console;

/// This area's routes.
pub fn routes() -> Router<Console> {
    Router::new()
}
