//! The neighbourhood scenario continued with a server: four phones (a coordinator, a volunteer,
//! two residents) and a `quartier-server` in this process, on loopback with its embedded
//! SQLite in a scratch folder. A resident reports a post, the coordinator hides it, and it
//! leaves the others' feeds; a request for help gets two responses, its author chooses one and
//! the two of them get each other's contact; each person's notifications tell them what is new.
//!
//! `cargo run -p quartier-server --example neighbourhood_life`
//! (the core alone: `cargo run -p quartier-core --example neighbourhood`).

use quartier_core::help::HelpStatus;
use quartier_core::model::*;
use quartier_core::moderation::{ModerationAction, ReportReason};
use quartier_core::notifications::FollowTarget;
use quartier_core::query::FeedQuery;
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Phone {
    name: &'static str,
    role: Role,
    store: Store,
    client: SyncClient,
    person: PersonId,
}

impl Phone {
    async fn new(
        dir: &std::path::Path,
        url: &str,
        name: &'static str,
        role: Role,
    ) -> Result<Phone, BoxError> {
        let store = Store::open(dir.join(format!("{name}.db")), StoreOptions::default())?;
        let client = SyncClient::new(url)?;
        let person = client.register(&store, Some(name)).await?.person;
        Ok(Phone {
            name,
            role,
            store,
            client,
            person,
        })
    }

    async fn sync(&self) -> Result<(), BoxError> {
        self.client.sync_now(&self.store, |_| {}).await?;
        Ok(())
    }

    fn feed(&self, space: SpaceId) -> Result<Vec<String>, BoxError> {
        let page = self
            .store
            .feed(&FeedQuery::new(space, Viewer::new(self.person, self.role)))?;
        Ok(page
            .items
            .iter()
            .map(|i| i.content.title.get("de").unwrap_or("").to_owned())
            .collect())
    }

    fn write(&self, space: SpaceId, title: &str, details: ItemDetails) -> Result<Item, BoxError> {
        let content = ItemContent::new(LocalizedText::single("de", title), details);
        Ok(self
            .store
            .create_item(NewItem::new(space, self.person, content))?)
    }
}

fn news() -> ItemDetails {
    ItemDetails::Post(Post {
        post_type: PostType::News,
    })
}

fn describe(status: &HelpStatus, names: &[(PersonId, &str)]) -> String {
    let name = |p: &PersonId| names.iter().find(|(q, _)| q == p).map_or("someone", |(_, n)| *n);
    let responses: Vec<&str> = status.responses.iter().map(|r| name(&r.person)).collect();
    format!(
        "{:?}; responses seen: {:?}; chosen: {}; contact: {}",
        status.state,
        responses,
        match (&status.agreed_with, status.chosen) {
            (Some(p), _) => name(p),
            (None, Some(false)) => "someone else",
            (None, _) => "-",
        },
        status.contact.as_deref().unwrap_or("-")
    )
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let scratch = tempfile::tempdir()?;
    // A free port on loopback for the server in this process.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = quartier_server::Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: scratch.path().join("server"),
        space_creation: quartier_server::config::Allowed::Anyone,
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(quartier_server::serve(config, async move {
        let _ = stopped.await;
    }));
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let dir = scratch.path();
    let coord = Phone::new(dir, &url, "Koordination", Role::Coordinator).await?;
    let vera = Phone::new(dir, &url, "Vera", Role::Volunteer).await?;
    let anna = Phone::new(dir, &url, "Anna", Role::Resident).await?;
    let ben = Phone::new(dir, &url, "Ben", Role::Resident).await?;
    let meta = SpaceMeta {
        name: LocalizedText::single("de", "Nippes"),
        description: LocalizedText::single("de", "Unser Veedel"),
        time_zone: "Europe/Berlin".into(),
        default_language: "de".into(),
        categories: Default::default(),
        layers: Default::default(),
    };
    let space = coord
        .client
        .create_shared_space(&coord.store, meta)
        .await?
        .space
        .id;
    let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
    for phone in [&vera, &anna, &ben] {
        let code = coord
            .client
            .create_invite(&coord.store, space, phone.role, expires, 1)
            .await?;
        phone.client.redeem_invite(&phone.store, &code).await?;
    }
    let phones = [&coord, &vera, &anna, &ben];
    let names: Vec<(PersonId, &str)> = phones.iter().map(|p| (p.person, p.name)).collect();
    // Twice round: what the last phone pushed reaches the first.
    let sync_all = || async {
        for phone in phones.iter().chain(phones.iter()) {
            phone.sync().await?;
        }
        Ok::<_, BoxError>(())
    };
    sync_all().await?;
    println!("# Neighbourhood life in Nippes: four phones and a server at {url}");

    println!("\n## Moderation");
    let spam = ben.write(space, "Billige Uhren, nur heute!", news())?;
    anna.write(space, "Hoffest am Samstag", news())?;
    sync_all().await?;
    println!("Anna's feed: {:?}", anna.feed(space)?);
    anna.store.report_item(spam.id, ReportReason::Spam, "Werbung")?;
    anna.sync().await?;
    coord.sync().await?;
    for entry in coord.store.moderation_queue(space)? {
        let reporter = entry.reports[0]
            .reporter
            .map_or("?", |p| names.iter().find(|(q, _)| *q == p).map_or("?", |n| n.1));
        println!(
            "The coordinator's queue: {:?} reported by {reporter} ({:?}: {})",
            entry.title.unwrap_or_default(),
            entry.reports[0].reason,
            entry.reports[0].text
        );
    }
    coord
        .store
        .moderate_item(spam.id, ModerationAction::Hide, "Werbung ist hier nicht erlaubt")?;
    sync_all().await?;
    println!("After the hide, Anna's feed: {:?}", anna.feed(space)?);
    println!("Ben, its author, still sees it: {:?}", ben.feed(space)?);

    println!("\n## The help board");
    anna.store.follow(FollowTarget::Tag {
        tag: "flohmarkt".into(),
    })?;
    let wanted = anna.write(
        space,
        "Wer kann für mich einkaufen?",
        ItemDetails::Request(Request {
            direction: RequestDirection::Need,
            category: "einkauf".into(),
            state: RequestState::Open,
        }),
    )?;
    sync_all().await?;
    let on_board: Vec<String> = vera
        .store
        .help_board(space, Viewer::new(vera.person, vera.role))?
        .iter()
        .map(|i| i.content.title.get("de").unwrap_or("").to_owned())
        .collect();
    println!("Vera's help board: {on_board:?}");
    vera.store
        .respond_to_request(wanted.id, "Ich fahre morgen zum Markt", "Vera, 0171 2222")?;
    ben.store
        .respond_to_request(wanted.id, "Ich kann am Freitag", "Ben, 0171 3333")?;
    sync_all().await?;
    println!(
        "Anna sees: {}",
        describe(&anna.store.help_status(wanted.id)?, &names)
    );
    anna.store
        .agree_to_help(wanted.id, vera.person, "Anna, Hausnr. 4, 0221 4444")?;
    sync_all().await?;
    for phone in [&anna, &vera, &ben, &coord] {
        println!(
            "{} sees: {}",
            phone.name,
            describe(&phone.store.help_status(wanted.id)?, &names)
        );
    }
    let mut post = ItemContent::new(LocalizedText::single("de", "Flohmarkt im Hof"), news());
    post.tags.insert("flohmarkt".into());
    coord.store.create_item(NewItem::new(space, coord.person, post))?;
    sync_all().await?;

    println!("\n## Notifications");
    for phone in phones {
        let told: Vec<String> = phone
            .store
            .notifications(false, 20)?
            .iter()
            .rev()
            .map(|n| {
                format!(
                    "{:?}{}",
                    n.kind,
                    n.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
                )
            })
            .collect();
        println!("{}: {told:?}", phone.name);
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}
