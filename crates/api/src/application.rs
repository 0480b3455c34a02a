use std::{net::TcpListener, sync::Arc};

use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context;
use larder_http::{AccessTokens, AppState, Limits};
use larder_redis::{RedisEventStore, RedisJobQueue, RedisOnlineStore};
use larder_usecases::{EventClock, IngestService, LookupService};

use crate::Settings;

/// The HTTP server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Wires adapters, use cases and routes, and binds `server.bind` (port 0: any free port).
    ///
    /// # Errors
    /// When the feature views or Redis settings are unusable or the address cannot be bound.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        let views = Arc::new(settings.features.load_views()?);
        let clock = Arc::new(EventClock::default());
        let pool = larder_redis::connect(&settings.redis).map_err(anyhow::Error::msg)?;
        let event_store = Arc::new(RedisEventStore::new(pool.clone(), &settings.redis));
        // Raw hashes expire through the ingest calls (docs/ingestion.md); between them, here.
        if settings.redis.raw_hashes_queued() {
            let store = event_store.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    every.tick().await;
                    if let Err(error) = store.sweep_expired_raw_hashes().await {
                        tracing::warn!(%error, "sweeping expired raw hashes failed");
                    }
                }
            });
        }
        let online_store = Arc::new(RedisOnlineStore::new(pool.clone(), &settings.redis));
        let jobs = Arc::new(RedisJobQueue::new(pool, &settings.redis).map_err(anyhow::Error::msg)?);
        let tokens = AccessTokens::new(
            settings.auth.read_tokens.clone(),
            settings.auth.write_tokens.clone(),
        );
        if tokens.is_open() {
            tracing::warn!(
                "no auth tokens configured: every route is open (set auth.write_tokens and auth.read_tokens)"
            );
        }
        let state = web::Data::new(AppState {
            ingest: Arc::new(IngestService::new(
                event_store,
                views.clone(),
                clock.clone(),
                settings.server.max_batch_events,
            )),
            lookup: Arc::new(LookupService::new(
                online_store.clone(),
                views,
                clock,
                settings.server.max_lookup_entities,
                settings.server.lookup_cache_entities,
            )),
            readiness: online_store,
            jobs,
            tokens,
            limits: Limits {
                max_event_bytes: settings.server.max_event_bytes,
                max_batch_bytes: settings.server.max_batch_bytes,
            },
        });

        let listener = TcpListener::bind(&settings.server.bind)
            .with_context(|| format!("binding server.bind = {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .configure(larder_http::configure(state.clone()))
                .default_service(web::to(larder_http::not_found))
        });
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(port, "larder-api listening");
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM: graceful shutdown).
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
