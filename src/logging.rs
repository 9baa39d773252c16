//! Logging set-up with `tracing`.
//!
//! Under systemd (`JOURNAL_STREAM` set: stderr is the journal) lines are plain, without
//! timestamps, because journald stamps them itself; otherwise each line carries a timestamp.
//! `format = "json"` gives one JSON object per line for log shippers. The filter is
//! `RUST_LOG` when set, else `[log] filter`.

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// The format actually used for `format`, given whether stderr goes to the journal.
pub fn effective_format(format: LogFormat, under_journal: bool) -> LogFormat {
    match format {
        LogFormat::Auto if under_journal => LogFormat::Plain,
        LogFormat::Auto => LogFormat::Full,
        f => f,
    }
}

/// True when stderr is connected to journald (systemd sets `JOURNAL_STREAM` for the service).
pub fn under_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Installs the global subscriber. Safe to call once; later calls are ignored.
pub fn init(cfg: &Log) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.is_empty())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .or_else(|| EnvFilter::try_new(&cfg.filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match effective_format(cfg.format, under_journal()) {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Plain => builder.without_time().with_ansi(false).try_init(),
        _ => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_format_follows_journal() {
        assert_eq!(effective_format(LogFormat::Auto, true), LogFormat::Plain);
        assert_eq!(effective_format(LogFormat::Auto, false), LogFormat::Full);
        assert_eq!(effective_format(LogFormat::Json, true), LogFormat::Json);
    }
}
