//! Log events of the library (the `tracing` events of core and facade) bridged to a foreign
//! [`Logger`]. Events below the level the app chose are filtered out before anything is
//! formatted or crosses the boundary.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::error::{FfiResult, QuartierError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn admits(self, level: &Level) -> bool {
        let wanted = match self {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Trace => Level::TRACE,
        };
        // tracing orders levels by verbosity: TRACE > DEBUG > … > ERROR.
        *level <= wanted
    }

    fn from_tracing(level: &Level) -> Self {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// One log event: `target` is the Rust module (e.g. `quartier_core::sync::client`), `message`
/// the text followed by the event's fields as `key=value`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct LogEvent {
    pub level: LogLevel,
    pub target: String,
    pub message: String,
}

/// Implemented by the app (e.g. to Logcat or `os.Logger`). Called on the thread that logged —
/// any library thread — so it must be thread-safe and quick. Never log through the library
/// from inside it.
#[uniffi::export(with_foreign)]
pub trait Logger: Send + Sync {
    fn log(&self, event: LogEvent);
}

struct Sink {
    logger: Arc<dyn Logger>,
    level: LogLevel,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALL: OnceLock<Result<(), String>> = OnceLock::new();

struct ForeignLayer;

impl<S: Subscriber> Layer<S> for ForeignLayer {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        SINK.read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|sink| sink.level.admits(metadata.level()))
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let logger = {
            let sink = SINK.read().unwrap_or_else(|p| p.into_inner());
            match sink.as_ref() {
                Some(sink) if sink.level.admits(event.metadata().level()) => Arc::clone(&sink.logger),
                _ => return,
            }
        };
        let mut text = Fields::default();
        event.record(&mut text);
        let message = match (text.message.is_empty(), text.rest.is_empty()) {
            (_, true) => text.message,
            (true, false) => text.rest,
            (false, false) => format!("{} {}", text.message, text.rest),
        };
        // A throwing foreign logger must not take the library down.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            logger.log(LogEvent {
                level: LogLevel::from_tracing(event.metadata().level()),
                target: event.metadata().target().to_owned(),
                message,
            })
        }));
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.rest.is_empty() {
                self.rest.push(' ');
            }
            let _ = write!(self.rest, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            if !self.rest.is_empty() {
                self.rest.push(' ');
            }
            let _ = write!(self.rest, "{}={value}", field.name());
        }
    }
}

/// Sends the library's log events at `level` and above to `logger`; call again to change the
/// level or the logger. Installs the library's `tracing` subscriber on first call: fails with
/// `Invalid` if the process already has another global `tracing` subscriber.
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn Logger>, level: LogLevel) -> FfiResult<()> {
    // Installed once per process; the outcome is kept, so that a later call fails the same way
    // instead of reporting success with no layer behind it.
    INSTALL
        .get_or_init(|| {
            tracing_subscriber::registry()
                .with(ForeignLayer)
                .try_init()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| QuartierError::invalid("logger", format!("another tracing subscriber is set: {e}")))?;
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = Some(Sink { logger, level });
    // Callsites cache whether they are enabled; a new level must be seen by all of them.
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}

/// Stops forwarding log events.
#[uniffi::export]
pub fn clear_logger() {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = None;
    tracing::callsite::rebuild_interest_cache();
}

/// Emits one event through the library's logging, for apps and tests to check their logger.
#[uniffi::export]
pub fn log_test_event(level: LogLevel, message: String) {
    match level {
        LogLevel::Error => tracing::error!(target: "quartier_ffi", "{message}"),
        LogLevel::Warn => tracing::warn!(target: "quartier_ffi", "{message}"),
        LogLevel::Info => tracing::info!(target: "quartier_ffi", "{message}"),
        LogLevel::Debug => tracing::debug!(target: "quartier_ffi", "{message}"),
        LogLevel::Trace => tracing::trace!(target: "quartier_ffi", "{message}"),
    }
}
