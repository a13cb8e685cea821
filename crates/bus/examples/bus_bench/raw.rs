//! The baseline: lapin alone, same broker, same queue type, same message, same acks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Confirmation, Connection, ConnectionProperties, ExchangeKind};
use midplane_bus::catalogue::{Event, PluginUpdated};
use midplane_bus::{BusConfig, Envelope};
use std::sync::Mutex;

use crate::measure::{CpuMeter, Figures, Latency, latency_of, paced, wait_for};
use crate::{PREFETCH, WINDOW, bus_config, fresh};

/// The baseline: lapin alone, same broker, same queue type, same message, same acks.
pub(crate) struct Raw {
    publish_conn: Connection,
    consume_conn: Connection,
    publish: lapin::Channel,
    exchange: String,
    queue: String,
}

impl Raw {
    pub(crate) async fn setup(cfg: &BusConfig) -> Result<Self> {
        let publish_conn = Connection::connect(&cfg.url, ConnectionProperties::default()).await?;
        let consume_conn = Connection::connect(&cfg.url, ConnectionProperties::default()).await?;
        let publish = publish_conn.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let exchange = cfg.exchange.clone();
        let queue = format!("{exchange}.raw");
        publish
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        publish
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            )
            .await?;
        publish
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                PluginUpdated::TYPE.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            publish_conn,
            consume_conn,
            publish,
            exchange,
            queue,
        })
    }

    /// Consumes and acks; `on_message` sees each body.
    pub(crate) async fn consumer(
        &self,
        on_message: impl Fn(&[u8]) + Send + Sync + 'static,
    ) -> Result<()> {
        let ch = self.consume_conn.create_channel().await?;
        ch.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let mut consumer = ch
            .basic_consume(
                self.queue.as_str().into(),
                "raw".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tokio::spawn(async move {
            // Acks are sent without holding up the next delivery, as the bus does.
            while let Some(Ok(d)) = consumer.next().await {
                on_message(&d.data);
                tokio::spawn(async move {
                    let _ = d.acker.ack(BasicAckOptions::default()).await;
                });
            }
        });
        Ok(())
    }

    pub(crate) async fn publish(&self, env: &Envelope) -> Result<lapin::PublisherConfirm> {
        Ok(self
            .publish
            .basic_publish(
                self.exchange.as_str().into(),
                env.event_type.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &env.to_bytes()?,
                env.amqp_properties(),
            )
            .await?)
    }

    pub(crate) async fn teardown(self) -> Result<()> {
        self.publish
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
        self.publish
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await?;
        self.consume_conn.close(200, "done".into()).await?;
        self.publish_conn.close(200, "done".into()).await?;
        Ok(())
    }
}

pub(crate) async fn raw_throughput(events: u64, template: &Envelope) -> Result<Figures> {
    let raw = Raw::setup(&bus_config("raw")?).await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let c = consumed.clone();
    raw.consumer(move |_| {
        c.fetch_add(1, Ordering::Relaxed);
    })
    .await?;
    let cpu = CpuMeter::start();
    let start = Instant::now();
    // Same pipelining as the bus: up to WINDOW publishes awaiting their confirm at once.
    let raw_ref = &raw;
    let results: Vec<Result<()>> = futures::stream::iter(0..events)
        .map(|_| {
            let env = fresh(template);
            async move {
                let confirm = raw_ref.publish(&env).await?;
                check_confirm(Some(confirm.await))
            }
        })
        .buffer_unordered(WINDOW)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    wait_for(&consumed, events, "raw consume").await?;
    let figures = cpu.finish(events, start.elapsed());
    raw.teardown().await?;
    Ok(figures)
}

pub(crate) fn check_confirm(c: Option<lapin::Result<Confirmation>>) -> Result<()> {
    match c {
        Some(Ok(Confirmation::Ack(None))) => Ok(()),
        other => bail!("raw publish not confirmed: {other:?}"),
    }
}

pub(crate) async fn raw_latency(rate: u64, secs: u64, template: &Envelope) -> Result<Latency> {
    let raw = Arc::new(Raw::setup(&bus_config("rawlat")?).await?);
    let samples = Arc::new(Mutex::new(Vec::with_capacity((rate * secs) as usize)));
    let count = Arc::new(AtomicU64::new(0));
    let (s, c) = (samples.clone(), count.clone());
    raw.consumer(move |body| {
        if let Ok(env) = Envelope::from_bytes(body) {
            let lat = (chrono::Utc::now() - env.time).to_std().unwrap_or_default();
            if let Ok(mut v) = s.lock() {
                v.push(lat);
            }
            c.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await?;
    let template = template.clone();
    let r = raw.clone();
    let achieved = paced(rate, secs, move || {
        let (r, env) = (r.clone(), fresh(&template));
        async move {
            let confirm = r.publish(&env).await?;
            check_confirm(Some(confirm.await))
        }
    })
    .await?;
    wait_for(&count, rate * secs, "raw latency consume").await?;
    let samples = std::mem::take(&mut *samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    if let Ok(raw) = Arc::try_unwrap(raw) {
        raw.teardown().await?;
    }
    Ok(latency_of(samples, achieved))
}
