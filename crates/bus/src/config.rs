//! Where the broker is and how the bus names things on it.

use std::time::Duration;

use crate::error::{BusError, Result};

/// Default broker URL; `MIDPLANE_AMQP_URL` overrides it.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The one durable topic exchange every Midplane event goes through.
pub const DEFAULT_EXCHANGE: &str = "midplane.events";
/// Environment variable naming the broker.
pub const AMQP_URL_ENV: &str = "MIDPLANE_AMQP_URL";

/// Connection settings shared by publishers, subscribers and the operator tools.
#[derive(Clone, Debug)]
pub struct BusConfig {
    /// `amqp://user:pass@host:port/vhost`
    pub url: String,
    /// Topic exchange name. Tests use a unique one each so they can run in parallel.
    pub exchange: String,
    /// CloudEvents `source` of events this process publishes, e.g. `/midplane/plugin-svc`.
    pub source: String,
    /// How long a publish keeps retrying (reconnects included) before the caller sees an error.
    pub publish_timeout: Duration,
    /// Upper bound on waiting for one broker confirm.
    pub confirm_timeout: Duration,
    /// Reconnect back-off: first delay and cap; every delay is jittered.
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_AMQP_URL.to_owned(),
            exchange: DEFAULT_EXCHANGE.to_owned(),
            source: "/midplane".to_owned(),
            publish_timeout: Duration::from_secs(60),
            confirm_timeout: Duration::from_secs(15),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

impl BusConfig {
    /// Defaults, with the broker URL from `MIDPLANE_AMQP_URL` when set.
    pub fn from_env() -> Result<Self> {
        let mut cfg = Self::default();
        if let Ok(url) = std::env::var(AMQP_URL_ENV) {
            cfg.url = url;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Same settings, with `source` set (each service names itself).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Same settings, with another exchange.
    pub fn with_exchange(mut self, exchange: impl Into<String>) -> Self {
        self.exchange = exchange.into();
        self
    }

    /// Rejects URLs lapin could not parse, naming where the URL came from.
    pub fn validate(&self) -> Result<()> {
        self.url
            .parse::<lapin::uri::AMQPUri>()
            .map_err(|reason| BusError::InvalidUrl {
                source_name: AMQP_URL_ENV.to_owned(),
                reason,
            })?;
        if self.exchange.is_empty() {
            return Err(BusError::InvalidUrl {
                source_name: "exchange".to_owned(),
                reason: "exchange name must not be empty".to_owned(),
            });
        }
        Ok(())
    }

    /// The URL with any password masked, for logs and errors.
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &self.url[scheme_end + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                format!(
                    "{}{}:***{}",
                    &self.url[..scheme_end + 3],
                    user,
                    &self.url[at..]
                )
            }
            _ => self.url.clone(),
        }
    }
}
