//! `quartier-server`: one binary, subcommands `serve`, `admin`, and the file tasks `import`,
//! `export` and `guide` (docs/standards.md).

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use quartier_server::config::{Allowed, Config, FileConfig, Registration};
use quartier_server::ServerError;

#[derive(Parser)]
#[command(name = "quartier-server", version, about = "Quartier sync server")]
struct Cli {
    /// TOML configuration file (flags and environment variables override it).
    #[arg(long, global = true, env = "QUARTIER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Settings of `serve`. Each overrides the configuration file; the defaults shown in `--help`
/// are [`Config::default`]'s (filled in at start, see [`with_defaults`]).
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8470 (port 0 picks a free port).
    #[arg(long, env = "QUARTIER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Folder for the database and media.
    #[arg(long, env = "QUARTIER_DATA")]
    data: Option<PathBuf>,
    /// Largest blob (media file) accepted, in bytes.
    #[arg(long, env = "QUARTIER_MAX_BLOB_BYTES")]
    max_blob_bytes: Option<u64>,
    /// Blob bytes one space may hold.
    #[arg(long, env = "QUARTIER_SPACE_QUOTA_BYTES")]
    space_quota_bytes: Option<u64>,
    /// Seconds between garbage collections of blobs (0: never).
    #[arg(long, env = "QUARTIER_BLOB_GC_INTERVAL_SECS")]
    blob_gc_interval_secs: Option<u64>,
    /// Seconds a blob stays unreferenced, or an upload untouched, before it is collected.
    #[arg(long, env = "QUARTIER_BLOB_GC_GRACE_SECS")]
    blob_gc_grace_secs: Option<u64>,
    /// Milliseconds a client has to send a request's headers; also how long an idle
    /// connection stays open.
    #[arg(long, env = "QUARTIER_HEADER_TIMEOUT_MS")]
    header_timeout_ms: Option<u64>,
    /// Milliseconds a request body may go without a byte arriving.
    #[arg(long, env = "QUARTIER_BODY_TIMEOUT_MS")]
    body_timeout_ms: Option<u64>,
    /// Milliseconds from a request's headers to its answer.
    #[arg(long, env = "QUARTIER_REQUEST_TIMEOUT_MS")]
    request_timeout_ms: Option<u64>,
    /// Requests per client address per minute (0: no limit).
    #[arg(long, env = "QUARTIER_RATE_PER_ADDRESS_PER_MINUTE")]
    rate_per_address_per_minute: Option<u32>,
    /// Requests per device per minute (0: no limit).
    #[arg(long, env = "QUARTIER_RATE_PER_DEVICE_PER_MINUTE")]
    rate_per_device_per_minute: Option<u32>,
    /// Registrations per client address per hour (0: no limit).
    #[arg(long, env = "QUARTIER_REGISTRATIONS_PER_HOUR")]
    registrations_per_hour: Option<u32>,
    /// Invite redemptions per client address and per device per hour (0: no limit).
    #[arg(long, env = "QUARTIER_REDEMPTIONS_PER_HOUR")]
    redemptions_per_hour: Option<u32>,
    /// Take the client's address from the last `X-Forwarded-For` entry (only behind a reverse
    /// proxy that sets it).
    #[arg(long, env = "QUARTIER_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: Option<bool>,
    /// Whether new devices may register.
    #[arg(long, env = "QUARTIER_REGISTRATION")]
    registration: Option<Registration>,
    /// Who may register spaces: anyone, or persons an admin approved (`admin approve`).
    #[arg(long, env = "QUARTIER_SPACE_CREATION")]
    space_creation: Option<Allowed>,
    /// Which coordinators may create invites: anyone (every coordinator), or approved ones.
    #[arg(long, env = "QUARTIER_INVITE_CREATION")]
    invite_creation: Option<Allowed>,
    /// Serve HTTPS: certificate chain (PEM). Reloaded with the key on SIGHUP.
    #[arg(long, env = "QUARTIER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Serve HTTPS: private key (PEM).
    #[arg(long, env = "QUARTIER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl ServeArgs {
    fn into_overrides(self) -> FileConfig {
        FileConfig {
            listen: self.listen,
            data_dir: self.data,
            max_blob_bytes: self.max_blob_bytes,
            space_quota_bytes: self.space_quota_bytes,
            blob_gc_interval_secs: self.blob_gc_interval_secs,
            blob_gc_grace_secs: self.blob_gc_grace_secs,
            header_timeout_ms: self.header_timeout_ms,
            body_timeout_ms: self.body_timeout_ms,
            request_timeout_ms: self.request_timeout_ms,
            rate_per_address_per_minute: self.rate_per_address_per_minute,
            rate_per_device_per_minute: self.rate_per_device_per_minute,
            registrations_per_hour: self.registrations_per_hour,
            redemptions_per_hour: self.redemptions_per_hour,
            trust_forwarded_for: self.trust_forwarded_for,
            registration: self.registration,
            space_creation: self.space_creation,
            invite_creation: self.invite_creation,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            ..FileConfig::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve sync, devices and membership (embedded SQLite in the data folder).
    Serve(Box<ServeArgs>),
    /// Imports a file into a space as one of its members (run while `serve` is stopped): each
    /// record becomes an item, or updates the one an earlier import of it made. Prints what
    /// was created, updated, left unchanged and skipped (with the reason).
    Import {
        #[arg(long, env = "QUARTIER_DATA")]
        data: Option<PathBuf>,
        #[arg(value_enum)]
        standard: StandardArg,
        /// The space to import into.
        #[arg(long)]
        space: uuid::Uuid,
        /// The member the items are written by (a person id; see `admin persons`).
        #[arg(long = "as")]
        person: uuid::Uuid,
        /// Language (BCP 47) of texts the file gives without one.
        #[arg(long, default_value = "de")]
        language: String,
        /// The file (a folder for hsds-csv).
        input: PathBuf,
    },
    /// Exports what everyone in a space may read (published, audience everyone).
    Export {
        #[arg(long, env = "QUARTIER_DATA")]
        data: Option<PathBuf>,
        #[arg(value_enum)]
        standard: StandardArg,
        #[arg(long)]
        space: uuid::Uuid,
        /// Language of the texts written where the standard holds one.
        #[arg(long, default_value = "de")]
        language: String,
        /// The file to write (a folder for hsds-csv).
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes the printed neighbourhood guide of a space (guide.pdf and guide.html).
    Guide {
        #[arg(long, env = "QUARTIER_DATA")]
        data: Option<PathBuf>,
        #[arg(long)]
        space: uuid::Uuid,
        #[arg(long, default_value = "de")]
        language: String,
        /// First day covered, YYYY-MM-DD ("open this week" is the week from it).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day covered.
        #[arg(long)]
        to: chrono::NaiveDate,
        /// This server's public address: each QR code leads to <link-base>/i/<item>.
        #[arg(long)]
        link_base: String,
        #[arg(long, value_enum, default_value = "a4")]
        paper: PaperArg,
        #[arg(long)]
        large_print: bool,
        #[arg(long)]
        easy_language: bool,
        /// The folder to write into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Administrative tasks on an existing data folder.
    Admin {
        /// The data folder of a server (must exist).
        #[arg(long, env = "QUARTIER_DATA")]
        data: Option<PathBuf>,
        #[command(subcommand)]
        task: AdminTask,
    },
}

/// The standards of `import` and `export`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum StandardArg {
    /// Open Referral HSDS 3.0 JSON (offers).
    Hsds,
    /// HSDS 3.0 tables: a folder of CSV files and datapackage.json (offers).
    HsdsCsv,
    /// iCalendar .ics (events; exports add offers' opening hours).
    Ical,
    /// GeoJSON (places and observations).
    Geojson,
}

impl From<StandardArg> for quartier_server::files::Standard {
    fn from(s: StandardArg) -> Self {
        use quartier_server::files::Standard;
        match s {
            StandardArg::Hsds => Standard::Hsds,
            StandardArg::HsdsCsv => Standard::HsdsTables,
            StandardArg::Ical => Standard::Ical,
            StandardArg::Geojson => Standard::Geojson,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PaperArg {
    /// A4 booklet, two columns.
    A4,
    /// A3 notice-board poster, three columns.
    A3,
}

#[derive(Subcommand)]
enum AdminTask {
    /// Prints counts of persons, devices, spaces, members and logged changes.
    Stats,
    /// Collects blobs no item references and uploads abandoned for the grace period, now (the
    /// same collection `serve` runs periodically). Best run while the server is stopped.
    Gc {
        /// Seconds a blob stays unreferenced, or an upload untouched, before it is collected
        /// (default: the configured `blob_gc_grace_secs`, 7 days).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
    /// Lists persons: id, approved or not, organisation admin or not, devices, display name.
    Persons,
    /// Approves a person (by person id or by the id of one of their devices): they may then
    /// register spaces and create invites where the server restricts these to approved persons.
    Approve { id: uuid::Uuid },
    /// Withdraws an approval (spaces already registered stay).
    Unapprove { id: uuid::Uuid },
    /// Makes a person (by person id or by the id of one of their devices) an organisation
    /// admin: the only people who may appoint caseworkers (invite as, or make a member,
    /// caseworker), in any space of this server.
    GrantOrgAdmin { id: uuid::Uuid },
    /// Withdraws organisation admin (caseworkers already appointed stay).
    RevokeOrgAdmin { id: uuid::Uuid },
    /// Lists the counselling erasure log: conversation, team, who asked, why, when. No content.
    Erasures,
    /// Erases now every closed counselling conversation past its team's retention (what
    /// `serve` does periodically).
    Retention,
}

/// `Cli`'s command with `serve`'s defaults written into the help of each flag, from
/// [`Config::default`], so `--help` never disagrees with what the server does.
fn with_defaults(command: clap::Command) -> clap::Command {
    let d = Config::default();
    fn value<T: clap::ValueEnum>(v: &T) -> String {
        v.to_possible_value()
            .map(|p| p.get_name().to_owned())
            .unwrap_or_default()
    }
    let defaults: Vec<(&str, String)> = vec![
        ("listen", d.listen.to_string()),
        ("data", d.data_dir.display().to_string()),
        ("max_blob_bytes", d.max_blob_bytes.to_string()),
        ("space_quota_bytes", d.space_quota_bytes.to_string()),
        ("blob_gc_interval_secs", d.blob_gc_interval_secs.to_string()),
        ("blob_gc_grace_secs", d.blob_gc_grace_secs.to_string()),
        ("header_timeout_ms", d.header_timeout_ms.to_string()),
        ("body_timeout_ms", d.body_timeout_ms.to_string()),
        ("request_timeout_ms", d.request_timeout_ms.to_string()),
        (
            "rate_per_address_per_minute",
            d.rate.per_address_per_minute.to_string(),
        ),
        (
            "rate_per_device_per_minute",
            d.rate.per_device_per_minute.to_string(),
        ),
        (
            "registrations_per_hour",
            d.rate.registrations_per_hour.to_string(),
        ),
        ("redemptions_per_hour", d.rate.redemptions_per_hour.to_string()),
        ("trust_forwarded_for", d.trust_forwarded_for.to_string()),
        ("registration", value(&d.registration)),
        ("space_creation", value(&d.space_creation)),
        ("invite_creation", value(&d.invite_creation)),
    ];
    command.mut_subcommand("serve", move |mut serve| {
        for (id, default) in defaults {
            serve = serve.mut_arg(id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {default}]"))
            });
        }
        serve
    })
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUARTIER_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = with_defaults(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quartier-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), ServerError> {
    let mut config = Config::default();
    if let Some(path) = &cli.config {
        config = FileConfig::read(path)?.apply(config);
    }
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_overrides().apply(config);
            let runtime = tokio::runtime::Runtime::new().map_err(|e| ServerError::Startup(e.to_string()))?;
            runtime.block_on(quartier_server::serve(config, shutdown_signal()))
        }
        Command::Import {
            data,
            standard,
            space,
            person,
            language,
            input,
        } => {
            let data = data.unwrap_or(config.data_dir);
            let db = quartier_server::storage::Db::open_existing(&data)?;
            let _lock = quartier_server::files::DataLock::acquire(&data, "an import")?;
            let done =
                quartier_server::files::import(&db, space, person, standard.into(), &language, &input)?;
            for (what, ids) in [
                ("created", &done.created),
                ("updated", &done.updated),
                ("unchanged", &done.unchanged),
            ] {
                println!("{what}: {}", ids.len());
                for id in ids {
                    println!("  {id}");
                }
            }
            println!("skipped: {}", done.skipped.len());
            for s in &done.skipped {
                println!("  {}\t{}", s.record, s.reason);
            }
            Ok(())
        }
        Command::Export {
            data,
            standard,
            space,
            language,
            out,
        } => {
            let db = quartier_server::storage::Db::open_existing(&data.unwrap_or(config.data_dir))?;
            let skipped = quartier_server::files::export(&db, space, standard.into(), &language, &out)?;
            println!("wrote {}", out.display());
            println!("not written: {}", skipped.len());
            for s in &skipped {
                println!("  {}\t{}", s.record, s.reason);
            }
            Ok(())
        }
        Command::Guide {
            data,
            space,
            language,
            from,
            to,
            link_base,
            paper,
            large_print,
            easy_language,
            out,
        } => {
            let db = quartier_server::storage::Db::open_existing(&data.unwrap_or(config.data_dir))?;
            let task = quartier_server::files::GuideTask {
                space,
                language,
                first_day: from,
                last_day: to,
                link_base,
                paper: match paper {
                    PaperArg::A4 => quartier_guide::PaperFormat::A4Booklet,
                    PaperArg::A3 => quartier_guide::PaperFormat::A3Poster,
                },
                large_print,
                easy_language,
                out: out.clone(),
            };
            let summary = quartier_server::files::guide(&db, &task)?;
            println!(
                "wrote {}/guide.pdf and guide.html: {} offers, {} events, {} phone numbers ({} left out)",
                out.display(),
                summary.offers_printed,
                summary.events_printed,
                summary.numbers_printed,
                summary.offers_left_out + summary.events_left_out
            );
            for (item, why) in &summary.problems {
                println!("  {item}\t{why}");
            }
            Ok(())
        }
        Command::Admin { data, task } => {
            if let Some(data) = data {
                config.data_dir = data;
            }
            // Never create a database here: a mistyped folder would give an empty one.
            let db = quartier_server::storage::Db::open_existing(&config.data_dir)?;
            if let AdminTask::Gc { grace_secs } = task {
                drop(db);
                let grace = grace_secs.unwrap_or(config.blob_gc_grace_secs);
                let report = quartier_server::blobs::gc::collect_in(&config, grace)?;
                println!("abandoned_uploads: {}", report.abandoned_uploads);
                println!("released_claims: {}", report.released_claims);
                println!("deleted_blobs: {}", report.deleted_blobs);
                println!("freed_bytes: {}", report.freed_bytes);
                return Ok(());
            }
            admin(&db, task)
        }
    }
}

fn admin(db: &quartier_server::storage::Db, task: AdminTask) -> Result<(), ServerError> {
    use quartier_server::storage::{self, accounts};
    let conn = db.lock();
    match task {
        AdminTask::Stats => {
            for table in ["persons", "devices", "spaces", "members", "docs", "log"] {
                let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
                println!("{table}: {n}");
            }
        }
        AdminTask::Persons => {
            for p in accounts::persons(&conn)? {
                println!(
                    "{}\t{}\t{}\t{} device(s)\t{}",
                    p.person,
                    if p.approved { "approved" } else { "-" },
                    if p.org_admin { "org-admin" } else { "-" },
                    p.devices,
                    p.display_name.unwrap_or_default()
                );
            }
        }
        AdminTask::Approve { id } => {
            let person = accounts::set_approved(&conn, id, true)?;
            println!("approved {person}");
        }
        AdminTask::Unapprove { id } => {
            let person = accounts::set_approved(&conn, id, false)?;
            println!("no longer approved: {person}");
        }
        AdminTask::GrantOrgAdmin { id } => {
            let person = accounts::set_org_admin(&conn, id, true)?;
            println!("organisation admin: {person}");
        }
        AdminTask::RevokeOrgAdmin { id } => {
            let person = accounts::set_org_admin(&conn, id, false)?;
            println!("no longer organisation admin: {person}");
        }
        AdminTask::Erasures => {
            for e in storage::counselling::erasures(&conn)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    e.conversation, e.team, e.requested_by, e.reason, e.erased_at
                );
            }
        }
        AdminTask::Retention => {
            let n = storage::counselling::erase_due(&conn, storage::now_ms())?;
            println!("erased {n} conversation(s) past their retention");
        }
        AdminTask::Gc { .. } => {}
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish in-flight requests, exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_help_shows_every_default() {
        let help = with_defaults(Cli::command())
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        let d = Config::default();
        for shown in [
            format!("[default: {}]", d.listen),
            format!("[default: {}]", d.data_dir.display()),
            format!("[default: {}]", d.header_timeout_ms),
            format!("[default: {}]", d.rate.registrations_per_hour),
            "[default: approved]".to_owned(),
            "[default: open]".to_owned(),
        ] {
            assert!(help.contains(&shown), "{shown} missing from:\n{help}");
        }
    }
}
