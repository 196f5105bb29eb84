//! `firewatch dev`: every router on one port, over the embedded store in a
//! data directory, with a dev admin key.

use axum::Router;
use firewatch_domain::{auth, Services};
use firewatch_types::{Role, TenantId};
use firewatch_web::{Config, LogFormat};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct DevArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the embedded store and blobs live.
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// A JSON file of routing rules for tenant `default`, applied at start:
    /// `[{"id": "...", "match": {...}, "destinations": [...]}]` (docs/CHAT.md).
    #[arg(long)]
    routes: Option<PathBuf>,
    /// The directory of playbook definitions (`*.yaml`), read at start;
    /// `./playbooks` when it exists.
    #[arg(long)]
    playbooks: Option<PathBuf>,
    /// The directory of smoke check definitions (`*.yaml`, `*.json`) for
    /// tenant `default`, synced at start; `./smoke-checks` when it exists.
    #[arg(long)]
    smoke_checks: Option<PathBuf>,
    /// Local targets playbook steps and smoke checks may reach beside public
    /// addresses: `HOST`, `HOST:PORT` or CIDR entries, comma-separated
    /// (added to FIREWATCH_EGRESS_ALLOW).
    #[arg(long, value_name = "LIST")]
    egress_allow: Option<String>,
}

/// The chat platforms configured in the environment.
#[derive(Default)]
pub struct ChatConfig {
    pub slack: Option<firewatch_slack::SlackConfig>,
    pub telegram: Option<firewatch_telegram::TelegramConfig>,
    pub discord: Option<firewatch_discord::DiscordConfig>,
}

impl ChatConfig {
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok();
        Ok(Self {
            slack: firewatch_slack::SlackConfig::from_vars(var)?,
            telegram: firewatch_telegram::TelegramConfig::from_vars(var)?,
            discord: firewatch_discord::DiscordConfig::from_vars(var)?,
        })
    }
}

/// Every router of every family, merged: what one port serves in dev.
/// A chat platform's endpoints are mounted when it is configured.
pub fn app(
    services: Services,
    chat: &ChatConfig,
    catalog: Arc<firewatch_domain::playbooks::Catalog>,
) -> Router {
    let mut app = Router::new()
        .merge(firewatch_web::ops::router(services.clone()))
        .merge(firewatch_ingest::router(services.clone()))
        .merge(firewatch_incidents::with_playbooks(
            services.clone(),
            Arc::new(firewatch_domain::playbooks::LazyCatalog::ready(
                catalog.clone(),
            )),
        ))
        .merge(firewatch_admin::router(services.clone()))
        .merge(firewatch_schedules::router(services.clone()))
        .merge(firewatch_pipelines::router(services.clone()))
        .merge(firewatch_dossier::router(services.clone()))
        .merge(firewatch_silences::router(services.clone()))
        .merge(firewatch_escalation::router(services.clone()))
        .merge(firewatch_playbooks::router(
            services.clone(),
            catalog.clone(),
        ));
    if let Some(cfg) = &chat.slack {
        let inbound = firewatch_slack::SlackInbound::new(cfg.signing_secret.clone())
            .allowing_origin_of(&cfg.api_url);
        app = app.merge(firewatch_slack::router(
            services.clone(),
            inbound,
            catalog.clone(),
        ));
    }
    if let Some(cfg) = &chat.telegram {
        let inbound = firewatch_telegram::TelegramInbound {
            webhook_secret: cfg.webhook_secret.clone(),
            bot: Arc::new(firewatch_telegram::TelegramChat::new(cfg.clone())),
        };
        app = app.merge(firewatch_telegram::router(
            services.clone(),
            inbound,
            catalog.clone(),
        ));
    }
    if let Some(cfg) = &chat.discord {
        let inbound = firewatch_discord::DiscordInbound {
            public_key: cfg.public_key,
        };
        app = app.merge(firewatch_discord::router(
            services,
            inbound,
            catalog.clone(),
        ));
    }
    app.fallback(firewatch_web::not_found)
}

const DEV_TOKEN_FILE: &str = "dev-token";

/// The dev admin key: `FIREWATCH_DEV_TOKEN`, else the one kept in the data
/// dir, else a new one written there (mode 0600).
fn dev_token(dir: &Path) -> Result<(String, &'static str), String> {
    if let Ok(t) = std::env::var("FIREWATCH_DEV_TOKEN") {
        if t.trim().len() < 16 {
            return Err("FIREWATCH_DEV_TOKEN must be at least 16 characters".into());
        }
        // Kept in the data dir too, so the client commands find the key
        // in use (not one this start revokes).
        let path = dir.join(DEV_TOKEN_FILE);
        if read_dev_token(dir).as_deref() != Some(t.trim()) {
            let _ = std::fs::remove_file(&path);
            write_private(&path, t.trim())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        return Ok((t.trim().to_owned(), "from FIREWATCH_DEV_TOKEN"));
    }
    let path = dir.join(DEV_TOKEN_FILE);
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok((t.trim().to_owned(), "kept in the data dir"));
    }
    let token = auth::generate_token();
    write_private(&path, &token).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((token, "generated"))
}

/// The dev ingest key: what an alert sender gets (post alerts, pings and
/// run events, nothing else), generated once and kept in the data dir.
fn dev_ingest_token(dir: &Path) -> Result<String, String> {
    let path = dir.join("dev-ingest-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_owned());
    }
    let token = auth::generate_token();
    write_private(&path, &token).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(token)
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(content.as_bytes())
}

/// Reads the dev key of a data dir, for client commands.
pub fn read_dev_token(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(DEV_TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_owned())
}

async fn open_services(
    data_dir: &Path,
    mut config: Config,
    chat_config: &ChatConfig,
) -> Result<Services, String> {
    // Threads always go to the terminal too, so the flow is visible with no
    // chat platform configured (FIREWATCH_CONSOLE_CHAT=false turns it off).
    if std::env::var("FIREWATCH_CONSOLE_CHAT").as_deref() != Ok("false") {
        config
            .settings
            .default_destinations
            .push(firewatch_types::Destination::Console);
    }
    let chat = firewatch_domain::chat::ChatHub {
        console: Some(Arc::new(firewatch_local::ConsoleChat::default())),
        slack: chat_config.slack.clone().map(|c| {
            Arc::new(firewatch_slack::SlackChat::new(c))
                as Arc<dyn firewatch_domain::chat::ChatClient>
        }),
        discord: chat_config.discord.clone().map(|c| {
            Arc::new(firewatch_discord::DiscordChat::new(c))
                as Arc<dyn firewatch_domain::chat::ChatClient>
        }),
        telegram: chat_config.telegram.clone().map(|c| {
            Arc::new(firewatch_telegram::TelegramChat::new(c))
                as Arc<dyn firewatch_domain::chat::ChatClient>
        }),
    };
    let egress_allow = config.settings.egress_allow.clone();
    Ok(firewatch_local::services(data_dir)?
        .with_settings(config.settings)
        .with_chat(Arc::new(chat))
        .with_sns(Arc::new(firewatch_ingest::HttpSnsConfirmer::new()))
        .with_egress(Arc::new(firewatch_egress::HttpEgress::new(egress_allow)))
        .with_llm(assisted_model().await?)
        .with_tracker(firewatch_egress::tracker_from_env()?)
        .with_pager(Some(firewatch_egress::pager_from_env())))
}

/// The model assisted triage asks (`ASSISTED_TRIAGE_PROVIDER`, `OPENAI_*`,
/// `BEDROCK_*`), if one is configured. Bedrock needs the AWS SDK: a build
/// with `--features aws`.
async fn assisted_model() -> Result<Option<Arc<dyn firewatch_domain::ports::Llm>>, String> {
    use firewatch_domain::triage::assisted::ModelConfig;
    let config = ModelConfig::from_vars(|k| std::env::var(k).ok())?;
    let llm: Option<Arc<dyn firewatch_domain::ports::Llm>> = match config {
        ModelConfig::None => None,
        #[cfg(feature = "aws")]
        ModelConfig::Bedrock { .. } => {
            let sdk = firewatch_aws::sdk_config_from_profile(None).await;
            firewatch_aws::assisted_model(&sdk).await?
        }
        #[cfg(not(feature = "aws"))]
        ModelConfig::Bedrock { .. } => {
            return Err(
                "BEDROCK_MODEL_ID is set, but this build has no AWS SDK: build with \
                 `--features aws` (cargo run --profile local -p firewatch --features aws -- dev), \
                 or point OPENAI_BASE_URL and OPENAI_MODEL at an OpenAI-compatible server \
                 such as Ollama"
                    .into(),
            )
        }
        ModelConfig::OpenAi {
            base_url,
            api_key,
            model,
        } => Some(Arc::new(firewatch_egress::OpenAiCompatibleLlm::new(
            &base_url, api_key, &model,
        ))),
    };
    if let Some(l) = &llm {
        println!("assisted triage: {} model {}", l.provider(), l.model());
    }
    Ok(llm)
}

/// Loads the playbooks: the directory given, or `./playbooks` when it
/// exists. Refused files are printed with file, line, field and why.
fn load_playbooks(dir: Option<&Path>) -> Result<firewatch_domain::playbooks::Catalog, String> {
    let default = Path::new("playbooks");
    let dir = match dir {
        Some(d) => d,
        None if default.is_dir() => default,
        None => return Ok(Default::default()),
    };
    let loaded = firewatch_domain::playbooks::definition::load_dir(dir)
        .map_err(|e| format!("cannot read playbooks from {}: {e}", dir.display()))?;
    println!(
        "playbooks: {} loaded from {}",
        loaded.playbooks.len(),
        dir.display()
    );
    // From the repository root, ./playbooks holds only the examples.
    let examples = dir.join("examples");
    if loaded.playbooks.is_empty() && examples.is_dir() {
        println!(
            "  the examples are in {}: start with --playbooks {}",
            examples.display(),
            examples.display()
        );
    }
    for e in &loaded.errors {
        println!("  refused {e}");
    }
    Ok(firewatch_domain::playbooks::Catalog::new(loaded))
}

/// The local dispatcher: delivers the outbox as soon as a change enqueues
/// something, and every second regardless (for retries that come due).
async fn dispatch_loop(services: Services) {
    loop {
        if let Err(e) = firewatch_domain::dispatch::drain(&services).await {
            tracing::warn!(error = %e, "dispatcher pass failed");
        }
        tokio::select! {
            _ = services.outbox_signal.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

/// The scheduled checks, as EventBridge Scheduler runs them on AWS: what is
/// due is looked at every second. Smoke checks (which wait on their
/// targets) have their own loop.
async fn schedules_loop(services: Services) {
    use firewatch_domain::pipelines::sla;
    use firewatch_domain::schedules::{freshness, heartbeats, Budget};
    let mut tick: u64 = 0;
    loop {
        // Pipeline SLAs are judged to the minute: every 15 s is plenty.
        if tick.is_multiple_of(15) {
            let budget = Budget::new(std::time::Duration::from_secs(5));
            if let Err(e) = sla::run(&services, &budget).await {
                tracing::warn!(error = %e, "pipelines check failed");
            }
        }
        tick += 1;
        let budget = Budget::new(std::time::Duration::from_millis(800));
        if let Err(e) = heartbeats::run_due(&services, &budget).await {
            tracing::warn!(error = %e, "heartbeats check failed");
        }
        if let Err(e) = freshness::run(&services, &budget).await {
            tracing::warn!(error = %e, "freshness check failed");
        }
        if let Err(e) = firewatch_domain::silence_ends::run_due(&services, &budget).await {
            tracing::warn!(error = %e, "silences job failed");
        }
        if let Err(e) = firewatch_domain::escalation::reminders::run(&services, &budget).await {
            tracing::warn!(error = %e, "reminders job failed");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn smoke_loop(services: Services) {
    use firewatch_domain::schedules::{smoke, Budget};
    loop {
        let budget = Budget::new(std::time::Duration::from_secs(30));
        if let Err(e) = smoke::run_due(&services, &budget).await {
            tracing::warn!(error = %e, "smoke checks failed");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Syncs the smoke checks of tenant `default` defined in files (the
/// directory given, or `./smoke-checks` when it exists) and, with
/// `FIREWATCH_PUBLIC_URL`, firewatch's own `/health` and `/version`.
async fn sync_smoke_checks(services: &Services, dir: Option<&Path>) -> Result<(), String> {
    use firewatch_domain::schedules::smoke::{self, Origin};
    let tenant = TenantId::default_tenant();
    let default = Path::new("smoke-checks");
    let dir = match dir {
        Some(d) => Some(d),
        None if default.is_dir() => Some(default),
        None => None,
    };
    let files = match dir {
        Some(d) => smoke::load_dir(d)
            .map_err(|e| format!("cannot read smoke checks from {}: {e}", d.display()))?,
        None => smoke::Files::default(),
    };
    if let Some(d) = dir {
        println!(
            "smoke checks: {} loaded from {}",
            files.defs.len(),
            d.display()
        );
    }
    for e in &files.errors {
        println!("  refused {e}");
    }
    smoke::sync_defined(services, &tenant, Origin::File, files.defs)
        .await
        .map_err(|e| format!("cannot sync smoke checks: {e}"))?;
    let own = services
        .settings
        .public_url
        .as_deref()
        .map(smoke::builtin)
        .unwrap_or_default();
    smoke::sync_defined(services, &tenant, Origin::Builtin, own)
        .await
        .map_err(|e| format!("cannot sync firewatch's own smoke checks: {e}"))?;
    Ok(())
}

pub async fn run(args: DevArgs) -> Result<(), String> {
    let mut config = Config::from_env(LogFormat::Pretty)?;
    if let Some(list) = &args.egress_allow {
        let more = firewatch_domain::egress::EgressAllow::parse(list)
            .map_err(|e| e.replace("FIREWATCH_EGRESS_ALLOW", "--egress-allow"))?;
        config.settings.egress_allow.extend(more);
    }
    firewatch_web::init_tracing(&config);
    let catalog = Arc::new(load_playbooks(args.playbooks.as_deref())?);
    // The example restart-service playbook runs against a demo target of
    // this process's own, unless ADMIN_API names a real one.
    let demo =
        if catalog.get("restart-service").is_some() && !crate::demo::admin_api_configured().await {
            let demo = crate::demo::start().await?;
            let allow = firewatch_domain::egress::EgressAllow::parse(&demo.allow)?;
            config.settings.egress_allow.extend(allow);
            Some(demo)
        } else {
            None
        };
    let egress = config.settings.egress_allow.to_string();
    let chat = ChatConfig::from_env()?;
    let mut services = open_services(&args.data_dir, config, &chat).await?;
    if let Some(d) = &demo {
        services = services.with_secrets(d.secrets());
    }
    let (token, origin) = dev_token(&args.data_dir)?;
    // The dev key is the one key named dev-admin: a changed
    // FIREWATCH_DEV_TOKEN revokes the one it replaces.
    let revoked = auth::replace_named_key(
        &services,
        &TenantId::default_tenant(),
        "dev-admin",
        Role::Admin,
        &token,
    )
    .await
    .map_err(|e| format!("cannot register the dev key: {e}"))?;
    if revoked > 0 {
        eprintln!("revoked {revoked} earlier dev key(s): the dev token changed");
    }
    let ingest_token = dev_ingest_token(&args.data_dir)?;
    auth::replace_named_key(
        &services,
        &TenantId::default_tenant(),
        "dev-ingest",
        Role::Ingest,
        &ingest_token,
    )
    .await
    .map_err(|e| format!("cannot register the dev ingest key: {e}"))?;

    if let Some(path) = &args.routes {
        load_routes(&services, path, &token).await?;
    }
    sync_smoke_checks(&services, args.smoke_checks.as_deref()).await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}");
    println!("firewatch dev listening on {url}");
    println!("data dir: {}", args.data_dir.display());
    println!("dev admin key ({origin}): {token}");
    println!("dev ingest key (for alert senders: posts alerts, pings and run events only): {ingest_token}");
    println!("egress (playbook steps, smoke checks): {egress}");
    if let Some(d) = &demo {
        println!(
            "demo target for the restart-service playbook: {} (its ADMIN_API and ADMIN_TOKEN; \
             set FIREWATCH_SECRET_ADMIN_API for a real one)",
            d.url
        );
    }
    println!();
    // The client commands find the dev key in the data dir: name it when
    // it is not the one they look in by default.
    let mut flags = format!("--url {url}");
    if args.data_dir != Path::new(crate::DEFAULT_DATA_DIR) {
        // Absolute, so the commands work from any directory; quoted when
        // it has to be.
        let dir = std::fs::canonicalize(&args.data_dir).unwrap_or(args.data_dir.clone());
        let dir = dir.display().to_string();
        if dir.contains(|c: char| "'\"$`\\".contains(c)) {
            flags.push_str(&format!(" --data-dir '{}'", dir.replace('\'', "'\\''")));
        } else if dir.contains(char::is_whitespace) {
            flags.push_str(&format!(" --data-dir \"{dir}\""));
        } else {
            flags.push_str(&format!(" --data-dir {dir}"));
        }
    }
    println!("Send a first alert:");
    println!("  firewatch send-test-alert {flags}");
    println!("or with curl:");
    println!("  curl -s -X POST {url}/v1/alerts/generic \\");
    println!(
        "    -H 'Authorization: Bearer {ingest_token}' -H 'Content-Type: application/json' \\"
    );
    println!("    -d '{{\"title\":\"disk almost full\",\"severity\":\"sev2\",\"labels\":{{\"host\":\"db-1\"}}}}'");
    println!("Then: firewatch incidents list {flags}");
    println!();

    tokio::spawn(dispatch_loop(services.clone()));
    tokio::spawn(schedules_loop(services.clone()));
    tokio::spawn(smoke_loop(services.clone()));
    if chat.discord.is_some() {
        println!("Discord: threads go to DISCORD_DEFAULT_CHANNEL_ID; set the interactions endpoint to {url}/v1/chat/discord/interactions");
    }
    if chat.telegram.is_some() {
        println!("Telegram: threads go to TELEGRAM_DEFAULT_CHAT_ID; setWebhook to {url}/v1/chat/telegram/webhook with your secret_token");
    }
    if chat.slack.is_some() {
        println!("Slack: threads go to SLACK_DEFAULT_CHANNEL; point slash commands at {url}/v1/chat/slack/commands and interactivity at {url}/v1/chat/slack/interactions");
    }
    axum::serve(listener, app(services, &chat, catalog))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| e.to_string())
}

/// Applies a routing file as the dev admin.
async fn load_routes(services: &Services, path: &Path, token: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let rules: Vec<firewatch_domain::routing::routes::Route> = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a list of routes: {e}", path.display()))?;
    let admin = auth::authenticate_token(services, token)
        .await
        .map_err(|e| e.to_string())?;
    for rule in rules {
        let id = rule.id.clone();
        // The routes file is the operator's own configuration: its channels
        // are linked to the dev tenant without a code.
        for dest in &rule.destinations {
            firewatch_domain::routing::links::link_destination_directly(
                services,
                &admin.tenant,
                dest,
            )
            .await
            .map_err(|e| format!("{}: route {id:?}: {e}", path.display()))?;
        }
        firewatch_domain::routing::routes::put(services, &admin, &id, rule)
            .await
            .map_err(|e| format!("{}: route {id:?}: {e}", path.display()))?;
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
    tracing::info!("shutting down");
}

/// Where `create-key` writes.
pub enum KeyStore {
    Local(PathBuf),
    #[cfg(feature = "aws")]
    Aws,
}

pub async fn create_key(
    target: KeyStore,
    tenant: &str,
    name: &str,
    role: &str,
) -> Result<(), String> {
    let role = Role::parse(role).ok_or_else(|| {
        format!("unknown role {role:?}; use ingest, viewer, responder, approver or admin")
    })?;
    let tenant = TenantId::parse(tenant).map_err(|e| e.to_string())?;
    let services = match target {
        KeyStore::Local(dir) => firewatch_local::services(&dir)?,
        #[cfg(feature = "aws")]
        KeyStore::Aws => {
            firewatch_aws::bootstrap(firewatch_domain::Settings::default())
                .await?
                .services
        }
    };
    let token = auth::create_api_key(&services, &tenant, name, role)
        .await
        .map_err(|e| e.to_string())?;
    println!("{token}");
    eprintln!("created {role} key {name:?} for tenant {tenant}; it is shown only once");
    Ok(())
}
