//! What a subscriber's handler is given and returns.

use std::future::Future;

use crate::envelope::Envelope;

/// One delivery as the handler sees it.
#[derive(Clone, Debug)]
pub struct Received {
    pub event: Envelope,
    /// 1 on the first run, 2 on the first retry, …
    pub attempt: u32,
    /// The broker flagged it as delivered before (e.g. after a consumer died without acking).
    pub redelivered: bool,
}

/// A handler's failure; the event is retried and finally dead-lettered with this message.
#[derive(Debug, Clone)]
pub struct HandlerError(pub String);

impl HandlerError {
    pub fn new(msg: impl std::fmt::Display) -> Self {
        Self(msg.to_string())
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// Handles one event. Implemented for `Fn(Received) -> impl Future<Output = Result<(), HandlerError>>`.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, event: Received) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn handle(&self, event: Received) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(event)
    }
}
