//! Routes outside the app: a member's secret calendar feed (`/calendar/<token>.ics`, made and
//! ended through `/v1/spaces/{space}/calendar-feed`), and the plain web page of a public item
//! (`/i/<item>`) that the printed guide's QR codes lead to when the app is not installed. What
//! they show is `crate::public`'s: what everyone in the space may read.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use quartier_domain::model::{Item, ItemDetails, ItemKind};
use quartier_protocol::CalendarFeed;
use uuid::Uuid;

use super::auth::Device;
use super::{blocking, Ids, Wire};
use crate::error::ServerError;
use crate::public;
use crate::state::AppState;
use crate::storage::{calendar_feeds, spaces};

/// The scheme the apps register: `quartier://item/<id>` opens the item in the app.
pub const APP_LINK_SCHEME: &str = "quartier://item/";

fn require_member(conn: &rusqlite::Connection, space: Uuid, person: Uuid) -> Result<(), ServerError> {
    match spaces::role_of(conn, space, person)? {
        Some(_) => Ok(()),
        None => Err(ServerError::Forbidden(
            "you are not a member of this space".into(),
        )),
    }
}

/// Makes the member's new calendar feed (an earlier one stops working).
pub async fn renew_feed(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
) -> Result<Wire<CalendarFeed>, ServerError> {
    let device = device.active()?;
    let token = blocking(move || {
        let conn = state.db.lock();
        require_member(&conn, space, device.person)?;
        calendar_feeds::renew(&conn, device.person, space)
    })
    .await?;
    Ok(Wire(CalendarFeed {
        path: format!("/calendar/{token}.ics"),
    }))
}

/// Ends the member's calendar feed.
pub async fn revoke_feed(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
) -> Result<StatusCode, ServerError> {
    let device = device.active()?;
    blocking(move || {
        let conn = state.db.lock();
        require_member(&conn, space, device.person)?;
        if calendar_feeds::revoke(&conn, device.person, space)? {
            Ok(())
        } else {
            Err(ServerError::NotFound("no calendar feed to end".into()))
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The feed: the space's public events and offers' opening hours as iCalendar. An unknown or
/// ended token, or one of a person no longer a member, is `404` (nothing tells which).
pub async fn feed(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
) -> Result<Response, ServerError> {
    let gone = || ServerError::NotFound("no such calendar".into());
    let token = file.strip_suffix(".ics").ok_or_else(gone)?.to_owned();
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(gone());
    }
    let ics = blocking(move || {
        let conn = state.db.read()?;
        let (person, space) = calendar_feeds::owner(&conn, &token)?.ok_or_else(gone)?;
        if spaces::role_of(&conn, space, person)?.is_none() {
            return Err(gone());
        }
        let now = chrono::Utc::now();
        let space_doc = public::space(&conn, space)?.ok_or_else(gone)?;
        let (items, _) = public::items(&conn, space, &[ItemKind::Event, ItemKind::Offer], now)?;
        let options = quartier_standards::IcalExportOptions {
            now,
            languages: vec![space_doc.meta.default_language.clone()],
            item_link_base: None,
        };
        Ok(quartier_standards::export_ics(&space_doc, &items, &options).ics)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=900"),
        ],
        ics,
    )
        .into_response())
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>body{font-family:sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;line-height:1.5;font-size:1.15rem}a.app{display:inline-block;padding:.6rem 1rem;border:2px solid #234;border-radius:.4rem}</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
{% for line in facts %}<p>{{ line }}</p>
{% endfor %}{% for paragraph in body %}<p>{{ paragraph }}</p>
{% endfor %}<p><a class="app" href="{{ app_link }}">Open in the Quartier app</a></p>
</main>
</body>
</html>
"#
)]
struct ItemPage<'a> {
    lang: &'a str,
    dir: &'a str,
    title: &'a str,
    facts: Vec<String>,
    body: Vec<&'a str>,
    app_link: String,
}

/// The facts a page shows beside the text: where, and how to reach an offer.
fn facts_of(item: &Item) -> Vec<String> {
    let mut facts = Vec::new();
    match &item.content.details {
        ItemDetails::Event(event) => facts.extend(event.venue.clone()),
        ItemDetails::Offer(offer) => {
            if let Some(location) = &offer.location {
                facts.push(location.name.clone());
                facts.extend(location.address.as_ref().map(|a| {
                    [a.street.as_str(), a.postal_code.as_str(), a.city.as_str()]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                }));
            }
            for contact in &offer.contacts {
                facts.extend(contact.phone.clone());
            }
        }
        _ => {}
    }
    facts.retain(|f| !f.trim().is_empty());
    facts
}

/// The plain page of a public offer or event: `404` for anything else (or unknown: nothing tells
/// which).
pub async fn item_page(
    State(state): State<Arc<AppState>>,
    Ids(id): Ids<Uuid>,
) -> Result<Response, ServerError> {
    let item = blocking(move || public::item(&*state.db.read()?, id, chrono::Utc::now()))
        .await?
        .ok_or_else(|| ServerError::NotFound("no such public item".into()))?;
    let (lang, title) = item.content.title.iter().next().unwrap_or(("und", ""));
    let body = item.content.body.get(lang).unwrap_or_default();
    let page = ItemPage {
        lang,
        dir: if lang.starts_with("ar") { "rtl" } else { "ltr" },
        title,
        facts: facts_of(&item),
        body: body.split("\n\n").filter(|p| !p.trim().is_empty()).collect(),
        app_link: format!("{APP_LINK_SCHEME}{}", item.id),
    };
    let html = page
        .render()
        .map_err(|e| ServerError::Internal(format!("item page: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Not kept by shared caches: a page hidden or erased must go at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response())
}
