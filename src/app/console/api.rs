//! The REST API under `/api/v1/` (filled in by the console work).

use axum::Router;

use super::Console;

/// The API's routes.
pub fn routes() -> Router<Console> {
    Router::new()
}
