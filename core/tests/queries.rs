//! Every query through the public API, on a real store: feed (filters, visibility, keyset
//! pagination), full-text search (folding, ranking, snippets, hostile input), map (viewport,
//! radius), offers open at a moment, events in a range, and item detail with history.

use crate::common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use common::*;
use quartier_core::model::*;
use quartier_core::query::{
    EventsQuery, FeedCursor, FeedQuery, Limit, OpenOffersQuery, RadiusQuery, SearchHit, SearchRequest,
    ViewportQuery, RANKED_MATCHES,
};
use quartier_core::schedule::{OpeningRule, ScheduleError};
use quartier_core::search::SearchSyntaxError;
use quartier_core::{Error, Store};

fn ids(items: &[Item]) -> Vec<ItemId> {
    items.iter().map(|i| i.id).collect()
}

fn id_set<'a>(items: impl IntoIterator<Item = &'a Item>) -> BTreeSet<ItemId> {
    items.into_iter().map(|i| i.id).collect()
}

fn feed_ids(store: &Store, q: &FeedQuery) -> Vec<ItemId> {
    ids(&store.feed(q).expect("feed").items)
}

fn search(fx: &Fixture, viewer: Viewer, text: &str) -> Vec<SearchHit> {
    fx.store
        .search(&SearchRequest::new(fx.space, viewer, text))
        .unwrap_or_else(|e| panic!("search {text:?}: {e}"))
}

fn hit_ids(hits: &[SearchHit]) -> Vec<ItemId> {
    hits.iter().map(|h| h.item.id).collect()
}

fn with_audience(content: ItemContent, audience: Audience) -> ItemContent {
    ItemContent { audience, ..content }
}

fn with_status(content: ItemContent, status: Status) -> ItemContent {
    ItemContent { status, ..content }
}

fn with_tags(content: ItemContent, tags: &[&str]) -> ItemContent {
    ItemContent {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..content
    }
}

// ---------------------------------------------------------------------------------------------
// Feed
// ---------------------------------------------------------------------------------------------

#[test]
fn feed_is_newest_first_and_filters_by_kind_tag_author_and_audience() {
    let fx = Fixture::new();
    let neighbour = PersonId::new();
    let p1 = fx.post("Hoffest", "Am Samstag im Hof");
    let r1 = fx.create(with_tags(
        request("Wer hilft beim Einkaufen?", "einkauf"),
        &["hilfe"],
    ));
    let p2 = fx.create_by(
        neighbour,
        with_tags(post("Leiter gesucht", "Für den Keller"), &["hilfe", "werkzeug"]),
    );
    let v1 = fx.create(with_audience(
        post("Helferrunde", "Nur für Ehrenamtliche"),
        Audience::Volunteers,
    ));
    let o1 = fx.create(offer("Sozialberatung", vec![]));
    let pl = fx.create(place("Bücherschrank", 50.9413, 6.9583));

    let resident = fx.viewer(Role::Resident);
    let all = FeedQuery::new(fx.space, resident);
    // Newest first; the volunteers-only post is not for residents.
    assert_eq!(feed_ids(&fx.store, &all), vec![pl.id, o1.id, p2.id, r1.id, p1.id]);

    let q = FeedQuery {
        kinds: vec![ItemKind::Request],
        ..all.clone()
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![r1.id]);
    let q = FeedQuery {
        kinds: vec![ItemKind::Post, ItemKind::Place],
        ..all.clone()
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![pl.id, p2.id, p1.id]);

    let q = FeedQuery {
        tag: Some("hilfe".into()),
        ..all.clone()
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![p2.id, r1.id]);
    let q = FeedQuery {
        tag: Some("werkzeug".into()),
        ..all.clone()
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![p2.id]);
    let q = FeedQuery {
        tag: Some("gibt-es-nicht".into()),
        ..all.clone()
    };
    assert!(feed_ids(&fx.store, &q).is_empty());

    let q = FeedQuery {
        author: Some(neighbour),
        ..all.clone()
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![p2.id]);
    let q = FeedQuery {
        author: Some(fx.author),
        kinds: vec![ItemKind::Post],
        ..all.clone()
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![p1.id]);

    // Filtering by audience narrows, it never widens what a viewer may see.
    let volunteer = fx.viewer(Role::Volunteer);
    let q = FeedQuery {
        audiences: vec![Audience::Volunteers],
        ..FeedQuery::new(fx.space, volunteer)
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![v1.id]);
    let q = FeedQuery {
        audiences: vec![Audience::Volunteers],
        ..all.clone()
    };
    assert!(feed_ids(&fx.store, &q).is_empty());
    let q = FeedQuery {
        audiences: vec![Audience::Everyone],
        ..FeedQuery::new(fx.space, volunteer)
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![pl.id, o1.id, p2.id, r1.id, p1.id]);

    // Items read back exactly as created.
    let page = fx.store.feed(&all).unwrap();
    assert_eq!(page.items[2], p2);
    assert_eq!(page.next, None);

    // Another space's feed is separate.
    let other = fx.other_space("Ehrenfeld");
    assert!(feed_ids(&fx.store, &FeedQuery::new(other, resident)).is_empty());
    let elsewhere = fx
        .store
        .create_item(NewItem::new(other, fx.author, post("Anderswo", "")))
        .unwrap();
    assert_eq!(
        feed_ids(&fx.store, &FeedQuery::new(other, resident)),
        vec![elsewhere.id]
    );
    assert_eq!(feed_ids(&fx.store, &all).len(), 5);
}

#[test]
fn feed_pages_walk_every_item_once_even_when_items_arrive_while_paging() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(fx.post(&format!("Beitrag {i}"), "Text").id);
    }
    // A comment and a hidden post in between must not disturb the pages.
    fx.create(comment(created[3], "Kommentar"));
    fx.create(with_status(post("Versteckt", ""), Status::Hidden));
    let newest_first: Vec<ItemId> = created.iter().rev().copied().collect();

    let mut q = FeedQuery {
        limit: 5.into(),
        ..FeedQuery::new(fx.space, resident)
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut added = Vec::new();
    loop {
        let page = fx.store.feed(&q).unwrap();
        pages += 1;
        assert!(page.items.len() <= 5);
        seen.extend(ids(&page.items));
        if pages == 2 {
            // New items arrive while the person scrolls: they are newer than the cursor and
            // must not shift the following pages.
            for i in 0..3 {
                added.push(fx.post(&format!("Neu {i}"), "").id);
            }
        }
        match page.next {
            Some(cursor) => {
                // The cursor survives a round trip through its text form.
                let text = cursor.to_string();
                let parsed: FeedCursor = text.parse().unwrap();
                assert_eq!(parsed, cursor);
                q.after = Some(parsed);
            }
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, newest_first, "pages skipped, repeated or reordered items");

    // A fresh walk sees the new items first, then everything else, once.
    let mut all = Vec::new();
    let mut q = FeedQuery {
        limit: 13.into(),
        ..FeedQuery::new(fx.space, resident)
    };
    loop {
        let page = fx.store.feed(&q).unwrap();
        all.extend(ids(&page.items));
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let mut expected: Vec<ItemId> = added.iter().rev().copied().collect();
    expected.extend(newest_first.iter().copied());
    assert_eq!(all, expected);
    // 26 items in pages of 13: the second page is the last one, with no cursor.
    assert_eq!(all.len(), 26);

    // Pages of one item, with a filter.
    let mut q = FeedQuery {
        limit: 1.into(),
        author: Some(fx.author),
        ..FeedQuery::new(fx.space, resident)
    };
    let mut count = 0;
    loop {
        let page = fx.store.feed(&q).unwrap();
        assert_eq!(page.items.len(), 1);
        count += 1;
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    assert_eq!(count, 26);

    // A limit of 0 is clamped to 1, not an empty page.
    let q = FeedQuery {
        limit: 0.into(),
        ..FeedQuery::new(fx.space, resident)
    };
    assert_eq!(fx.store.feed(&q).unwrap().items.len(), 1);
}

#[test]
fn feed_cursor_text_that_is_not_a_cursor_is_a_typed_error() {
    for bad in [
        "",
        "abc",
        "12",
        "1.2.3",
        ".",
        "1.",
        ".1",
        "x.1",
        "1.y",
        "99999999999999999999.1",
    ] {
        let err = bad.parse::<FeedCursor>().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "feed cursor",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn feed_shows_each_viewer_only_what_their_role_admits() {
    let fx = Fixture::new();
    let everyone = fx.post("Für alle", "");
    let volunteers = fx.create(with_audience(post("Für Ehrenamtliche", ""), Audience::Volunteers));
    let caseworkers = fx.create(with_audience(post("Fallbesprechung", ""), Audience::Caseworkers));
    let author_only = fx.create(with_audience(post("Notiz für mich", ""), Audience::AuthorOnly));
    let draft = fx.create(with_status(post("Entwurf", ""), Status::Draft));
    let hidden = fx.create(with_status(post("Ausgeblendet", ""), Status::Hidden));
    let deleted = fx.post("Gelöscht", "");
    fx.store.delete_item(deleted.id, fx.author).unwrap();

    let set = |viewer: Viewer, statuses: Vec<Status>| -> BTreeSet<ItemId> {
        let q = FeedQuery {
            statuses,
            ..FeedQuery::new(fx.space, viewer)
        };
        id_set(&fx.store.feed(&q).unwrap().items)
    };
    let every_status = Status::ALL.to_vec();

    let resident = fx.viewer(Role::Resident);
    assert_eq!(set(resident, vec![]), id_set([&everyone]));
    assert_eq!(set(resident, every_status.clone()), id_set([&everyone]));
    assert!(set(resident, vec![Status::Draft, Status::Hidden]).is_empty());

    let volunteer = fx.viewer(Role::Volunteer);
    assert_eq!(
        set(volunteer, every_status.clone()),
        id_set([&everyone, &volunteers])
    );

    let caseworker = fx.viewer(Role::Caseworker);
    assert_eq!(
        set(caseworker, every_status.clone()),
        id_set([&everyone, &volunteers, &caseworkers])
    );

    // Coordinators see hidden items, but not caseworkers' items (professional secrecy), nor
    // others' drafts.
    let coordinator = fx.viewer(Role::Coordinator);
    assert_eq!(set(coordinator, vec![]), id_set([&everyone, &volunteers]));
    assert_eq!(set(coordinator, vec![Status::Hidden]), id_set([&hidden]));
    assert_eq!(
        set(coordinator, every_status.clone()),
        id_set([&everyone, &volunteers, &hidden])
    );
    assert!(set(coordinator, vec![Status::Draft]).is_empty());

    // The author sees everything of their own but the deleted item; drafts and hidden items
    // only when asking for those statuses.
    let author = fx.author_viewer();
    assert_eq!(
        set(author, vec![]),
        id_set([&everyone, &volunteers, &caseworkers, &author_only])
    );
    assert_eq!(set(author, vec![Status::Draft]), id_set([&draft]));
    assert_eq!(set(author, vec![Status::Hidden]), id_set([&hidden]));
    assert!(set(author, vec![Status::Deleted]).is_empty());
    assert_eq!(
        set(author, every_status),
        id_set([
            &everyone,
            &volunteers,
            &caseworkers,
            &author_only,
            &draft,
            &hidden
        ])
    );
    // Nobody else sees drafts, whatever their role.
    assert!(set(caseworker, vec![Status::Draft]).is_empty());
}

#[test]
fn expired_items_are_shown_only_when_asked_for() {
    let fx = Fixture::new();
    let now = Utc::now();
    let expired = fx.create(ItemContent {
        valid_until: Some(now - Duration::hours(1)),
        ..post("Flohmarkt letzte Woche", "")
    });
    let current = fx.create(ItemContent {
        valid_until: Some(now + Duration::days(3)),
        ..post("Flohmarkt nächste Woche", "")
    });
    let timeless = fx.post("Hausordnung", "");
    let resident = fx.viewer(Role::Resident);
    let q = |statuses: Vec<Status>, at: Option<DateTime<Utc>>| FeedQuery {
        statuses,
        at,
        ..FeedQuery::new(fx.space, resident)
    };
    assert_eq!(
        feed_ids(&fx.store, &q(vec![], None)),
        vec![timeless.id, current.id]
    );
    assert_eq!(
        feed_ids(&fx.store, &q(vec![Status::Expired], None)),
        vec![expired.id]
    );
    assert_eq!(
        feed_ids(&fx.store, &q(vec![Status::Published, Status::Expired], None)),
        vec![timeless.id, current.id, expired.id]
    );
    // Judged at a moment before it expired, it is published.
    let earlier = Some(now - Duration::hours(2));
    assert_eq!(
        feed_ids(&fx.store, &q(vec![], earlier)),
        vec![timeless.id, current.id, expired.id]
    );
    assert!(feed_ids(&fx.store, &q(vec![Status::Expired], earlier)).is_empty());
    // And later, the current one has expired too.
    let later = Some(now + Duration::days(4));
    assert_eq!(
        feed_ids(&fx.store, &q(vec![Status::Expired], later)),
        vec![current.id, expired.id]
    );
    // Expired items stay out of search, too.
    assert!(search(&fx, resident, "letzte Woche").is_empty());
    assert_eq!(hit_ids(&search(&fx, resident, "Flohmarkt")), vec![current.id]);
}

#[test]
fn comments_are_left_out_of_the_feed_unless_asked_for() {
    let fx = Fixture::new();
    let parent = fx.post("Neue Bank im Park", "");
    let c1 = fx.create(comment(parent.id, "Endlich!"));
    let c2 = fx.create_by(PersonId::new(), comment(parent.id, "Schön"));
    let resident = fx.viewer(Role::Resident);
    assert_eq!(
        feed_ids(&fx.store, &FeedQuery::new(fx.space, resident)),
        vec![parent.id]
    );
    let q = FeedQuery {
        kinds: vec![ItemKind::Comment],
        ..FeedQuery::new(fx.space, resident)
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![c2.id, c1.id]);
    let q = FeedQuery {
        kinds: vec![ItemKind::Comment, ItemKind::Post],
        ..FeedQuery::new(fx.space, resident)
    };
    assert_eq!(feed_ids(&fx.store, &q), vec![c2.id, c1.id, parent.id]);
    // Comments are not search results either, unless asked for.
    assert_eq!(hit_ids(&search(&fx, resident, "endlich")), Vec::<ItemId>::new());
    let mut req = SearchRequest::new(fx.space, resident, "endlich");
    req.kinds = vec![ItemKind::Comment];
    assert_eq!(hit_ids(&fx.store.search(&req).unwrap()), vec![c1.id]);
}

// ---------------------------------------------------------------------------------------------
// Full-text search
// ---------------------------------------------------------------------------------------------

#[test]
fn search_ignores_case_diacritics_and_transliterations() {
    let fx = Fixture::new();
    let strasse = fx.post(
        "Sperrung der Hauptstraße",
        "Die Bauarbeiten in der Straße dauern bis Mai.",
    );
    let muenchen = fx.post("Ausflug nach München", "Wir fahren mit dem Zug.");
    let cafe = fx.post("Café Müller", "Frühstück für alle");
    let resident = fx.viewer(Role::Resident);

    for query in ["Strasse", "STRASSE", "straße", "STRAẞE", "strasse"] {
        let hits = search(&fx, resident, query);
        assert_eq!(hit_ids(&hits), vec![strasse.id], "{query}");
        assert!(
            hits[0].body.marked("[", "]").contains("[Straße]"),
            "{query}: {}",
            hits[0].body.marked("[", "]")
        );
    }
    for query in ["Muenchen", "München", "MÜNCHEN", "munchen", "MUENCHEN"] {
        let hits = search(&fx, resident, query);
        assert_eq!(hit_ids(&hits), vec![muenchen.id], "{query}");
        assert_eq!(
            hits[0].title.marked("[", "]"),
            "Ausflug nach [München]",
            "{query}"
        );
        assert!(hits[0].body.matches.is_empty());
    }
    for query in ["cafe", "CAFÉ", "Mueller", "muller", "fruhstuck", "Fruehstueck"] {
        let hits = search(&fx, resident, query);
        assert_eq!(hit_ids(&hits), vec![cafe.id], "{query}");
    }
    let hits = search(&fx, resident, "Mueller");
    assert_eq!(hits[0].title.marked("<b>", "</b>"), "Café <b>Müller</b>");
    let hits = search(&fx, resident, "fruehstueck");
    assert_eq!(hits[0].body.marked("[", "]"), "[Frühstück] für alle");
    // Words are ANDed.
    assert_eq!(hit_ids(&search(&fx, resident, "Cafe Fruhstuck")), vec![cafe.id]);
    assert!(search(&fx, resident, "Cafe München").is_empty());
    // A word that is nowhere finds nothing.
    assert!(search(&fx, resident, "Zeppelin").is_empty());
}

#[test]
fn search_matches_word_prefixes() {
    let fx = Fixture::new();
    let item = fx.post(
        "Nachbarschaftshilfe in der Hauptstraße",
        "Ehrenamtliche begleiten zu Arztterminen.",
    );
    let resident = fx.viewer(Role::Resident);
    for query in [
        "Nach",
        "nachbar",
        "Nachbarschafts",
        "haupt",
        "Hauptstr",
        "ehrenamt",
        "arzt",
        "Arztt",
    ] {
        let hits = search(&fx, resident, query);
        assert_eq!(hit_ids(&hits), vec![item.id], "{query}");
    }
    let hits = search(&fx, resident, "Hauptstr");
    assert_eq!(
        hits[0].title.marked("[", "]"),
        "Nachbarschaftshilfe in der [Hauptstraße]"
    );
    let hits = search(&fx, resident, "arzt");
    assert!(hits[0].body.marked("[", "]").contains("[Arztterminen]"));
    // Only prefixes: the middle of a word does not match.
    assert!(search(&fx, resident, "schaftshilfe").is_empty());
    assert!(search(&fx, resident, "straße").is_empty());
    // A quoted phrase is exact, not a prefix.
    assert!(search(&fx, resident, "\"Nachbar\"").is_empty());
    assert_eq!(
        hit_ids(&search(&fx, resident, "\"in der Hauptstraße\"")),
        vec![item.id]
    );
    assert!(search(&fx, resident, "\"der in\"").is_empty());
}

#[test]
fn a_single_character_matches_only_itself_and_two_are_a_prefix() {
    let fx = Fixture::new();
    let word = fx.post("Hier gibt es Kuchen", "Am Sonntag, Haus 5.");
    let longer = fx.post("Hier gibt essen", "Am Sonntag, Haus 55.");
    let letter = fx.post("Vitamin K", "für k und kk");
    let turkish = fx.post("Evler kiralık", "Kalk");
    let chinese = fx.post("花园活动", "周末");
    let resident = fx.viewer(Role::Resident);
    let found = |text: &str| {
        let mut ids = hit_ids(&search(&fx, resident, text));
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<ItemId>| {
        ids.sort();
        ids
    };
    // One character is a whole word, alone or beside others; two are a prefix (the
    // two-character prefix index of schema 28 answers them).
    assert_eq!(found("haus 5"), vec![word.id]);
    assert_eq!(found("haus 55"), vec![longer.id]);
    assert_eq!(found("k"), vec![letter.id]);
    assert_eq!(found("kk"), vec![letter.id]);
    assert_eq!(found("es"), sorted(vec![word.id, longer.id]));
    assert_eq!(found("hier gibt es"), sorted(vec![word.id, longer.id]));
    assert_eq!(found("ev kiralık"), vec![turkish.id]);
    assert_eq!(found("ka"), vec![turkish.id]);
    // A script without spaces indexes runs: one character is still a prefix of the run.
    assert_eq!(found("花"), vec![chinese.id]);
    // Marks follow the match: `5` marks the number 5, not the start of 55.
    let hits = search(&fx, resident, "sonntag 5");
    assert_eq!(hit_ids(&hits), vec![word.id]);
    assert_eq!(hits[0].body.marked("[", "]"), "Am [Sonntag], Haus [5].");
    let hits = search(&fx, resident, "gibt es");
    assert_eq!(hits.len(), 2);
    for hit in hits {
        let marked = hit.title.marked("[", "]");
        assert!(
            marked == "Hier [gibt] [es] Kuchen" || marked == "Hier [gibt] [essen]",
            "{marked}"
        );
    }
}

#[test]
fn search_ranks_title_matches_above_body_matches_and_marks_them() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    // Body-only match first, so that insertion order cannot produce the expected ranking.
    let body_only = fx.post(
        "Offener Treff",
        "Jeden Dienstag Kaffee, Kuchen und eine Fahrradwerkstatt für Kinder.",
    );
    let unrelated = fx.post("Kochkurs", "Wir kochen zusammen.");
    let in_title = fx.post(
        "Fahrradwerkstatt im Hinterhof",
        "Wir reparieren zusammen Räder, Werkzeug ist da.",
    );
    let tagged = fx.create(with_tags(
        post("Reparaturcafé", "Alles wird heil."),
        &["fahrradwerkstatt"],
    ));

    let hits = search(&fx, resident, "fahrradwerkstatt");
    assert_eq!(hit_ids(&hits), vec![in_title.id, tagged.id, body_only.id]);
    assert!(!hit_ids(&hits).contains(&unrelated.id));
    assert!(
        hits.windows(2).all(|w| w[0].score <= w[1].score),
        "scores not ordered: {:?}",
        hits.iter().map(|h| h.score).collect::<Vec<_>>()
    );
    assert!(hits[0].score < hits[2].score);
    let mut top_two = SearchRequest::new(fx.space, resident, "fahrradwerkstatt");
    top_two.limit = 2.into();
    assert_eq!(
        hit_ids(&fx.store.search(&top_two).unwrap()),
        vec![in_title.id, tagged.id]
    );
    assert_eq!(hits[0].title.marked("[", "]"), "[Fahrradwerkstatt] im Hinterhof");
    assert!(hits[0].body.matches.is_empty());
    assert_eq!(
        hits[0].body.text,
        "Wir reparieren zusammen Räder, Werkzeug ist da."
    );
    let body_hit = &hits[2];
    assert!(body_hit.title.matches.is_empty());
    assert_eq!(body_hit.title.text, "Offener Treff");
    assert!(body_hit.body.marked("[", "]").contains("[Fahrradwerkstatt]"));
    // Every match range lies on the original text.
    for hit in &hits {
        for snippet in [&hit.title, &hit.body] {
            for r in &snippet.matches {
                assert!(
                    snippet.text.get(r.clone()).is_some(),
                    "{r:?} in {:?}",
                    snippet.text
                );
            }
        }
    }

    // A long body is cut around the match, which stays marked.
    let long_body = format!(
        "{} Am Ende steht der Flohmarkt im Hof. {}",
        "Einleitung mit vielen Wörtern. ".repeat(40),
        "Nachwort mit noch mehr Wörtern. ".repeat(40)
    );
    let long = fx.post("Programm", &long_body);
    let hits = search(&fx, resident, "flohmarkt");
    assert_eq!(hit_ids(&hits), vec![long.id]);
    let body = &hits[0].body;
    assert!(body.text.chars().count() < 250, "{}", body.text.chars().count());
    assert!(body.marked("[", "]").contains("[Flohmarkt]"), "{}", body.text);
    assert!(body.text.contains('…'));
}

#[test]
fn search_finds_german_english_turkish_arabic_and_ukrainian_text() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let german = fx.post("Hilfe bei Behördengängen", "Wir begleiten Sie zum Bürgeramt.");
    let english = fx.create(ItemContent {
        body: LocalizedText::single("en", "Bring your own gloves and seedlings."),
        ..ItemContent::new(
            LocalizedText::single("en", "Community garden opening"),
            ItemDetails::Post(Post {
                post_type: PostType::Notice,
            }),
        )
    });
    let turkish = fx.create(ItemContent {
        body: LocalizedText::single("tr", "Her Perşembe İstanbul usulü kahvaltı ve çay."),
        ..ItemContent::new(
            LocalizedText::single("tr", "Çay ve sohbet buluşması"),
            ItemDetails::Post(Post {
                post_type: PostType::Notice,
            }),
        )
    });
    let arabic = fx.create(ItemContent {
        body: LocalizedText::single("ar", "دروس مجانية في المَدْرَسَة كل يوم سبت"),
        ..ItemContent::new(
            LocalizedText::single("ar", "دروس اللغة الألمانية"),
            ItemDetails::Post(Post {
                post_type: PostType::Notice,
            }),
        )
    });
    let ukrainian = fx.create(ItemContent {
        body: LocalizedText::single(
            "uk",
            "Консультації для людей з Києва та Київської області. М'ясо і хліб.",
        ),
        ..ItemContent::new(
            LocalizedText::single("de", "Beratung für Geflüchtete").with("uk", "Допомога з документами"),
            ItemDetails::Post(Post {
                post_type: PostType::Notice,
            }),
        )
    });

    let cases: &[(&str, &Item, &str)] = &[
        ("behörde", &german, "[Behördengängen]"),
        ("BEHOERDENGAENGE", &german, "[Behördengängen]"),
        ("burgeramt", &german, "[Bürgeramt]"),
        ("garden", &english, "[garden]"),
        ("GLOVES", &english, "[gloves]"),
        ("seed", &english, "[seedlings]"),
        ("cay", &turkish, "[Çay]"),
        ("ÇAY", &turkish, "[Çay]"),
        ("istanbul", &turkish, "[İstanbul]"),
        ("ISTANBUL", &turkish, "[İstanbul]"),
        ("ıstanbul", &turkish, "[İstanbul]"),
        ("persembe", &turkish, "[Perşembe]"),
        ("kahvalti", &turkish, "[kahvaltı]"),
        ("المدرسة", &arabic, "[المَدْرَسَة]"),
        ("المدرسه", &arabic, "[المَدْرَسَة]"),
        ("الالمانية", &arabic, "[الألمانية]"),
        ("اللغة", &arabic, "[اللغة]"),
        ("документ", &ukrainian, "[документами]"),
        ("ДОПОМОГА", &ukrainian, "[Допомога]"),
        ("києва", &ukrainian, "[Києва]"),
        ("мясо", &ukrainian, "[М'ясо]"),
        ("м'ясо", &ukrainian, "[М'ясо]"),
        ("мʼясо", &ukrainian, "[М'ясо]"),
        ("geflüchtete", &ukrainian, "[Geflüchtete]"),
    ];
    assert_each_finds(&fx, resident, cases);
    // The title snippet shows the language variant that matched.
    let hits = search(&fx, resident, "допомога");
    assert_eq!(hits[0].title.marked("[", "]"), "[Допомога] з документами");
    let hits = search(&fx, resident, "beratung");
    assert_eq!(hits[0].title.marked("[", "]"), "[Beratung] für Geflüchtete");
    // й and и are different letters in Ukrainian: no false match.
    assert!(search(&fx, resident, "киів").is_empty());
}

/// Each query finds exactly its item, with the marked word in the title or body snippet.
fn assert_each_finds(fx: &Fixture, viewer: Viewer, cases: &[(&str, &Item, &str)]) {
    for (query, item, marked) in cases {
        let hits = search(fx, viewer, query);
        assert_eq!(hit_ids(&hits), vec![item.id], "{query}");
        let title = hits[0].title.marked("[", "]");
        let body = hits[0].body.marked("[", "]");
        assert!(
            title.contains(marked) || body.contains(marked),
            "{query}: expected {marked} in {title:?} / {body:?}"
        );
    }
}

#[test]
fn arabic_words_are_found_without_their_attached_proclitics() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let neighbours = fx.post("لقاء بالجيران", "نلتقي يوم السبت مع سارة وآمنة");
    let school = fx.post("مساعدة في الواجبات", "نساعد فالمدرسة قريبة");
    let home = fx.post("مقهى دافئ كالبيت", "ألعاب للأطفال");
    let short = fx.post("بل هذا ولد", "نص قصير");
    let german = fx.post("Hilfe bei Behördengängen", "Wir begleiten Sie zum Bürgeramt.");

    let cases: &[(&str, &Item, &str)] = &[
        ("الجيران", &neighbours, "[بالجيران]"),
        ("جيران", &neighbours, "[بالجيران]"),
        ("بالجيران", &neighbours, "[بالجيران]"),
        ("آمنة", &neighbours, "[وآمنة]"),
        ("المدرسة", &school, "[فالمدرسة]"),
        ("مدرسة", &school, "[فالمدرسة]"),
        ("البيت", &home, "[كالبيت]"),
        ("بيت", &home, "[كالبيت]"),
        ("الأطفال", &home, "[للأطفال]"),
        ("أطفال", &home, "[للأطفال]"),
        ("بل", &short, "[بل]"),
        ("ولد", &short, "[ولد]"),
        ("behörde", &german, "[Behördengängen]"),
    ];
    assert_each_finds(&fx, resident, cases);
    // The query is not stemmed: a prefixed form finds only itself.
    assert!(search(&fx, resident, "بالمدرسة").is_empty());
}

#[test]
fn an_emoji_alone_is_a_search() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let cake = fx.post("Kuchen 🎂 heute", "Im Hof 👍🏽");
    fx.post("Kaffee heute", "Im Hof");
    let hits = search(&fx, resident, "🎂");
    assert_eq!(hit_ids(&hits), vec![cake.id]);
    assert_eq!(hits[0].title.marked("[", "]"), "Kuchen [🎂] heute");
    assert_eq!(hit_ids(&search(&fx, resident, "👍")), vec![cake.id]);
    assert!(
        search(&fx, resident, "🎉").is_empty(),
        "no item has it, and no error"
    );
}

#[test]
fn any_typed_string_is_searched_or_refused_with_a_search_error() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let strasse = fx.post(
        "Straßenfest",
        "Musik (live) und \"Essen\" in der Straße: 9:30 bis 22 Uhr",
    );
    let long = "a".repeat(501);
    let many_words: String = (0..40).map(|i| format!("wort{i} ")).collect();
    let nested = "(".repeat(200);
    let hyphenated = "a-".repeat(40);
    let umlauts_ok = "ä".repeat(500);
    let umlauts_too_long = "ä".repeat(501);
    let hostile: Vec<&str> = vec![
        "",
        "   ",
        "\t\n",
        "\"",
        "\"\"",
        "\"\"\"",
        "\"unclosed phrase",
        "closed\" \"open",
        "„Straße“",
        "«Straße»",
        "*",
        "**",
        "Stra*",
        "*Stra",
        "NEAR",
        "NEAR(",
        "NEAR(a b)",
        "NEAR(\"a\" \"b\", 2)",
        "Straße NEAR/2 Musik",
        "a NEAR b",
        "-",
        "--",
        "- -",
        "-Straße",
        "-\"Musik live\"",
        "Straße -Musik",
        "(",
        ")",
        "((",
        "(Straße OR Musik",
        "Straße)",
        &nested,
        "AND",
        "OR",
        "NOT",
        "Straße AND",
        "OR Straße",
        "NOT Straße",
        "title:Straße",
        "body:Straße",
        "{title body}: Straße",
        "^Straße",
        "Straße^",
        "+Straße",
        "'",
        "'; DROP TABLE items; --",
        "\"; DELETE FROM items_fts; --",
        "\\",
        "%",
        "_",
        "%Stra%",
        "Straße\0Musik",
        "\0",
        "🙂",
        "🏳️‍🌈 Straße",
        "\u{202E}ßarts",
        "\u{00AD}",
        "ﷺ",
        "9:30",
        "e-mail",
        "[a]",
        "{a}",
        "a:b:c",
        "rank:",
        "rowid=1",
        "items_fts",
        "\"\" -\"\"",
        "-- Straße",
        &long,
        &many_words,
        &hyphenated,
        &umlauts_ok,
        &umlauts_too_long,
    ];
    assert!(hostile.len() >= 30);
    for text in &hostile {
        match fx.store.search(&SearchRequest::new(fx.space, resident, *text)) {
            Ok(hits) => {
                for hit in &hits {
                    assert_eq!(hit.item.id, strasse.id);
                }
            }
            Err(err) => {
                assert!(!matches!(err, Error::Storage(_)), "{text:?}: storage error {err}");
                assert!(matches!(err, Error::Search(_)), "{text:?}: {err:?}");
                assert!(!err.to_string().is_empty());
            }
        }
    }
    let err = |text: &str| {
        fx.store
            .search(&SearchRequest::new(fx.space, resident, text))
            .unwrap_err()
    };
    assert!(matches!(err(""), Error::Search(SearchSyntaxError::Empty)));
    assert!(matches!(err("*"), Error::Search(SearchSyntaxError::Empty)));
    assert!(matches!(err("((("), Error::Search(SearchSyntaxError::Empty)));
    assert!(matches!(
        err("-Straße"),
        Error::Search(SearchSyntaxError::OnlyExclusions)
    ));
    assert!(matches!(
        err(&long),
        Error::Search(SearchSyntaxError::TooLong { .. })
    ));
    assert!(matches!(
        err(&many_words),
        Error::Search(SearchSyntaxError::TooManyTerms { .. })
    ));
    assert!(matches!(
        err(&hyphenated),
        Error::Search(SearchSyntaxError::TooManyTerms { .. })
    ));
    assert!(matches!(
        err(&umlauts_too_long),
        Error::Search(SearchSyntaxError::TooLong { .. })
    ));
    // Operators are plain words or ignored punctuation, so these still find the item.
    let found = |text: &str| {
        hit_ids(
            &fx.store
                .search(&SearchRequest::new(fx.space, resident, text))
                .unwrap_or_else(|e| panic!("{text:?}: {e}")),
        )
    };
    for text in [
        "Stra*",
        "(Straße",
        "Straße)",
        "^Straße",
        "9:30",
        "\"Essen\"",
        "„Straße“",
    ] {
        assert_eq!(found(text), vec![strasse.id], "{text:?}");
    }
    // Exclusions and NEAR as a word.
    assert!(found("Straße -Musik").is_empty());
    assert_eq!(found("Straße -Kuchen"), vec![strasse.id]);
    assert!(found("Straße NEAR Musik").is_empty(), "NEAR must be a plain word");
    assert!(found("Straße AND Musik").is_empty(), "AND must be a plain word");
    // The store is intact afterwards.
    fx.store.integrity_check().unwrap();
    assert_eq!(found("Musik"), vec![strasse.id]);
}

#[test]
fn search_respects_visibility_space_and_kind() {
    let fx = Fixture::new();
    let public = fx.post("Schuldnerberatung offen", "Jeden Montag");
    let secret = fx.create(with_audience(
        post("Schuldnerberatung Fall Meier", "Termin vereinbart"),
        Audience::Caseworkers,
    ));
    let hidden = fx.create(with_status(post("Schuldnerberatung Spam", ""), Status::Hidden));
    let draft = fx.create(with_status(post("Schuldnerberatung Entwurf", ""), Status::Draft));
    let own = fx.create(with_audience(
        post("Schuldnerberatung Notiz", ""),
        Audience::AuthorOnly,
    ));
    let other_space = fx.other_space("Ehrenfeld");
    let elsewhere = fx
        .store
        .create_item(NewItem::new(
            other_space,
            fx.author,
            post("Schuldnerberatung Ehrenfeld", ""),
        ))
        .unwrap();

    let set = |viewer: Viewer| id_set(search(&fx, viewer, "schuldnerberatung").iter().map(|h| &h.item));
    assert_eq!(set(fx.viewer(Role::Resident)), id_set([&public]));
    assert_eq!(set(fx.viewer(Role::Volunteer)), id_set([&public]));
    assert_eq!(set(fx.viewer(Role::Caseworker)), id_set([&public, &secret]));
    assert_eq!(set(fx.viewer(Role::Coordinator)), id_set([&public]));
    assert_eq!(set(fx.author_viewer()), id_set([&public, &secret, &own]));
    // Hidden and draft items are not search results, not even for who may see them in the feed.
    assert!(!set(fx.author_viewer()).contains(&hidden.id));
    assert!(!set(fx.author_viewer()).contains(&draft.id));
    // A resident searching the exact words of the caseworkers' item finds nothing.
    assert!(search(&fx, fx.viewer(Role::Resident), "Meier").is_empty());
    assert!(search(&fx, fx.viewer(Role::Coordinator), "Fall Meier").is_empty());

    // Across every space.
    let mut everywhere = SearchRequest::new(fx.space, fx.viewer(Role::Resident), "schuldnerberatung");
    everywhere.space = None;
    assert_eq!(
        id_set(fx.store.search(&everywhere).unwrap().iter().map(|h| &h.item)),
        id_set([&public, &elsewhere])
    );
    // Kinds.
    let mut offers_only = SearchRequest::new(fx.space, fx.viewer(Role::Resident), "schuldnerberatung");
    offers_only.kinds = vec![ItemKind::Offer];
    assert!(fx.store.search(&offers_only).unwrap().is_empty());
    // Organisation names, tags and categories are searched too.
    let offer_item = fx.create(offer("Sozialberatung", vec![]));
    assert_eq!(
        hit_ids(&search(&fx, fx.viewer(Role::Resident), "caritas")),
        vec![offer_item.id]
    );
    let req = fx.create(request("Wer kann helfen?", "Umzugshilfe"));
    assert_eq!(
        hit_ids(&search(&fx, fx.viewer(Role::Resident), "umzug")),
        vec![req.id]
    );
}

#[test]
fn search_follows_updates_and_forgets_deleted_items() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let item = fx.create(with_tags(
        post("Kinderflohmarkt im Hof", "Spielzeug und Kleidung"),
        &["tauschen"],
    ));
    assert_eq!(hit_ids(&search(&fx, resident, "kinderflohmarkt")), vec![item.id]);
    assert_eq!(hit_ids(&search(&fx, resident, "tauschen")), vec![item.id]);
    fx.store
        .update_item(
            item.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Bücherflohmarkt im Hof")),
                body: Some(LocalizedText::single("de", "Romane und Sachbücher")),
                tags: Some(["lesen".to_owned()].into()),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    assert!(search(&fx, resident, "kinderflohmarkt").is_empty());
    assert!(search(&fx, resident, "spielzeug").is_empty());
    assert!(search(&fx, resident, "tauschen").is_empty());
    let hits = search(&fx, resident, "buecherflohmarkt");
    assert_eq!(hit_ids(&hits), vec![item.id]);
    assert_eq!(hits[0].title.marked("[", "]"), "[Bücherflohmarkt] im Hof");
    assert_eq!(hits[0].item.content.body.get("de"), Some("Romane und Sachbücher"));
    assert_eq!(hit_ids(&search(&fx, resident, "roman")), vec![item.id]);
    assert_eq!(hit_ids(&search(&fx, resident, "lesen")), vec![item.id]);
    // Changing the audience takes it out of residents' results at once.
    fx.store
        .update_item(
            item.id,
            &ItemPatch {
                audience: Some(Audience::Volunteers),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    assert!(search(&fx, resident, "roman").is_empty());
    assert_eq!(
        hit_ids(&search(&fx, fx.viewer(Role::Volunteer), "roman")),
        vec![item.id]
    );
    fx.store.delete_item(item.id, fx.author).unwrap();
    for viewer in [
        fx.viewer(Role::Volunteer),
        fx.author_viewer(),
        fx.viewer(Role::Coordinator),
    ] {
        assert!(search(&fx, viewer, "roman").is_empty());
        assert!(search(&fx, viewer, "bucherflohmarkt").is_empty());
    }
}

/// Rounds of edits of every item: FTS5 merges a segment only once a quarter of its rows were
/// replaced (schema 31), so every item is still found by its current words only, each once, the
/// index checks out, and the replaced rows it keeps stay bounded (with no merge at deletion at
/// all it grew to more than three times its size here).
#[test]
fn search_finds_only_the_current_words_after_many_rounds_of_edits() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let items: Vec<Item> = (0..400)
        .map(|n| {
            let body = format!("Runde anfang neuer Text über das Leben im Hof {n}");
            fx.create(post(&format!("Zettel {n}"), &body))
        })
        .collect();
    assert_eq!(search(&fx, resident, "anfang").len(), 20);
    let fresh = search_index_bytes(&fx.store);
    let rounds = ["eins", "zwei", "drei", "vier"];
    for round in rounds {
        for (n, item) in items.iter().enumerate() {
            let body = format!("Runde {round} neuer Text über das Leben im Hof {n}");
            fx.store
                .update_item(
                    item.id,
                    &ItemPatch {
                        body: Some(LocalizedText::single("de", body)),
                        ..Default::default()
                    },
                    fx.author,
                )
                .unwrap();
        }
        let hits = fx
            .store
            .search(&SearchRequest {
                limit: Limit(1000),
                ..SearchRequest::new(fx.space, resident, round)
            })
            .unwrap();
        assert_eq!(hits.len(), items.len(), "each once");
        let size = search_index_bytes(&fx.store);
        assert!(
            size < fresh * 2,
            "round {round}: {size} bytes, {fresh} before the edits"
        );
    }
    for old in ["anfang", "eins", "zwei", "drei"] {
        assert!(search(&fx, resident, old).is_empty(), "{old} is gone");
    }
    let merge_at: i64 = rusqlite::Connection::open(fx.store.path())
        .unwrap()
        .query_row(
            "SELECT v FROM items_fts_config WHERE k = 'deletemerge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(merge_at, 25);
    fx.store.integrity_check().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Map
// ---------------------------------------------------------------------------------------------

const DOM: (f64, f64) = (50.9413, 6.9583);
const HAUPTBAHNHOF: (f64, f64) = (50.9430, 6.9589);
const RATHAUS: (f64, f64) = (50.9380, 6.9590);
const NEUMARKT: (f64, f64) = (50.9363, 6.9470);
const DEUTZ: (f64, f64) = (50.9375, 6.9750);
const BONN: (f64, f64) = (50.7374, 7.0982);

fn viewport_query(
    fx: &Fixture,
    viewer: Viewer,
    south: f64,
    west: f64,
    north: f64,
    east: f64,
) -> ViewportQuery {
    ViewportQuery {
        space: fx.space,
        viewer,
        south,
        west,
        north,
        east,
        kinds: vec![],
        limit: 100.into(),
        at: None,
    }
}

fn radius_query(fx: &Fixture, viewer: Viewer, (lat, lon): (f64, f64), radius_m: f64) -> RadiusQuery {
    RadiusQuery {
        space: fx.space,
        viewer,
        center: Location::new(lat, lon),
        radius_m,
        kinds: vec![],
        limit: 100.into(),
        at: None,
    }
}

fn located(title: &str, (lat, lon): (f64, f64)) -> ItemContent {
    place(title, lat, lon)
}

#[test]
fn viewport_returns_the_items_inside_the_box() {
    let fx = Fixture::new();
    let dom = fx.create(located("Dom", DOM));
    let hbf = fx.create(located("Hauptbahnhof", HAUPTBAHNHOF));
    let rathaus = fx.create(located("Rathaus", RATHAUS));
    let neumarkt = fx.create(located("Neumarkt", NEUMARKT));
    let deutz = fx.create(located("Deutz", DEUTZ));
    let bonn = fx.create(located("Bonn", BONN));
    let event_at_dom = fx.create(ItemContent {
        location: Some(Location::gps(DOM.0, DOM.1, 12.0)),
        ..offer("Beratung am Dom", vec![])
    });
    let secret = fx.create(with_audience(located("Schutzraum", DOM), Audience::Caseworkers));
    let unlocated = fx.post("Ohne Ort", "");
    let resident = fx.viewer(Role::Resident);

    let inner = viewport_query(&fx, resident, 50.93, 6.94, 50.95, 6.97);
    let found = id_set(&fx.store.viewport(&inner).unwrap());
    assert_eq!(found, id_set([&dom, &hbf, &rathaus, &neumarkt, &event_at_dom]));
    assert!(!found.contains(&deutz.id) && !found.contains(&bonn.id) && !found.contains(&unlocated.id));
    // Caseworkers see their item on the map, residents do not.
    let for_caseworker = viewport_query(&fx, fx.viewer(Role::Caseworker), 50.93, 6.94, 50.95, 6.97);
    assert!(id_set(&fx.store.viewport(&for_caseworker).unwrap()).contains(&secret.id));
    // A box around the whole region.
    let region = viewport_query(&fx, resident, 50.5, 6.5, 51.2, 7.5);
    assert_eq!(fx.store.viewport(&region).unwrap().len(), 7);
    // A box just east of the Rhine: only Deutz.
    let east = viewport_query(&fx, resident, 50.93, 6.97, 50.95, 6.99);
    assert_eq!(ids(&fx.store.viewport(&east).unwrap()), vec![deutz.id]);
    // Edges are inclusive; a box that is a point.
    let point = viewport_query(&fx, resident, BONN.0, BONN.1, BONN.0, BONN.1);
    assert_eq!(ids(&fx.store.viewport(&point).unwrap()), vec![bonn.id]);
    // A box with nothing in it.
    let empty = viewport_query(&fx, resident, 50.0, 8.0, 50.1, 8.1);
    assert!(fx.store.viewport(&empty).unwrap().is_empty());
    // Kinds.
    let offers = ViewportQuery {
        kinds: vec![ItemKind::Offer],
        ..inner.clone()
    };
    assert_eq!(ids(&fx.store.viewport(&offers).unwrap()), vec![event_at_dom.id]);
    // Limit.
    let limited = ViewportQuery {
        limit: 2.into(),
        ..region
    };
    assert_eq!(fx.store.viewport(&limited).unwrap().len(), 2);
    // A moved item leaves the box; a deleted one disappears.
    fx.store
        .update_item(
            hbf.id,
            &ItemPatch {
                location: Some(Location::new(BONN.0, BONN.1)),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    fx.store.delete_item(rathaus.id, fx.author).unwrap();
    assert_eq!(
        id_set(&fx.store.viewport(&inner).unwrap()),
        id_set([&dom, &neumarkt, &event_at_dom])
    );
    // Removing the location removes it from the map.
    fx.store
        .update_item(
            event_at_dom.id,
            &ItemPatch {
                clear_location: true,
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    assert_eq!(
        id_set(&fx.store.viewport(&inner).unwrap()),
        id_set([&dom, &neumarkt])
    );
}

#[test]
fn viewport_across_the_antimeridian() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let suva = fx.create(located("Suva", (-18.1416, 178.4419)));
    let east_of_line = fx.create(located("Taveuni", (-16.80, 179.99)));
    let west_of_line = fx.create(located("Östlich der Datumsgrenze", (-16.80, -179.99)));
    let apia = fx.create(located("Apia", (-13.8333, -171.7667)));
    let too_far_west = fx.create(located("Vanuatu", (-16.5, 168.0)));
    let too_far_east = fx.create(located("Östlich von Samoa", (-14.0, -165.0)));
    let greenwich = fx.create(located("Greenwich", (51.4779, -0.0015)));

    // West edge 170°E, east edge 170°W: the box crosses 180°.
    let q = viewport_query(&fx, resident, -20.0, 170.0, -10.0, -170.0);
    let found = id_set(&fx.store.viewport(&q).unwrap());
    assert_eq!(found, id_set([&suva, &east_of_line, &west_of_line, &apia]));
    for item in [&too_far_west, &too_far_east, &greenwich] {
        assert!(!found.contains(&item.id));
    }
    // The same longitudes the usual way round span the rest of the world.
    let q = viewport_query(&fx, resident, -60.0, -170.0, 60.0, 170.0);
    assert_eq!(
        id_set(&fx.store.viewport(&q).unwrap()),
        id_set([&too_far_west, &too_far_east, &greenwich])
    );
    // Limits hold across both halves.
    let q = ViewportQuery {
        limit: 3.into(),
        ..viewport_query(&fx, resident, -20.0, 170.0, -10.0, -170.0)
    };
    assert_eq!(fx.store.viewport(&q).unwrap().len(), 3);
    // A radius around a point near 180° reaches across.
    let near = fx
        .store
        .near(&radius_query(&fx, resident, (-16.80, 179.995), 5_000.0))
        .unwrap();
    assert_eq!(
        near.iter().map(|n| n.item.id).collect::<Vec<_>>(),
        vec![east_of_line.id, west_of_line.id]
    );
    let near = fx
        .store
        .near(&radius_query(&fx, resident, (-16.80, -179.995), 5_000.0))
        .unwrap();
    assert_eq!(
        near.iter().map(|n| n.item.id).collect::<Vec<_>>(),
        vec![west_of_line.id, east_of_line.id]
    );
}

#[test]
fn invalid_viewports_and_radii_are_typed_errors() {
    let fx = Fixture::new();
    fx.create(located("Dom", DOM));
    let resident = fx.viewer(Role::Resident);
    let bad_coordinates = [
        (91.0, 6.9, 50.95, 6.97),
        (50.93, 6.94, 90.5, 6.97),
        (-90.1, 6.94, 50.95, 6.97),
        (50.93, -180.5, 50.95, 6.97),
        (50.93, 6.94, 50.95, 181.0),
        (f64::NAN, 6.94, 50.95, 6.97),
        (50.93, f64::NAN, 50.95, 6.97),
        (50.93, 6.94, f64::INFINITY, 6.97),
        (50.93, f64::NEG_INFINITY, 50.95, 6.97),
    ];
    for (s, w, n, e) in bad_coordinates {
        let err = fx
            .store
            .viewport(&viewport_query(&fx, resident, s, w, n, e))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidCoordinates { .. }),
            "{s} {w} {n} {e}: {err}"
        );
    }
    // South of north is not a box (there is no wrapping over the poles).
    let err = fx
        .store
        .viewport(&viewport_query(&fx, resident, 50.95, 6.94, 50.93, 6.97))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                field: "viewport",
                ..
            }
        ),
        "{err}"
    );

    for radius in [0.0, -5.0, f64::NAN, f64::INFINITY, 100_000.5, 1e9] {
        let err = fx
            .store
            .near(&radius_query(&fx, resident, DOM, radius))
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid { field: "radius", .. }),
            "{radius}: {err}"
        );
    }
    for center in [(90.5, 6.9), (50.9, 200.0), (f64::NAN, 6.9), (50.9, f64::INFINITY)] {
        let err = fx
            .store
            .near(&radius_query(&fx, resident, center, 1_000.0))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidCoordinates { .. }),
            "{center:?}: {err}"
        );
    }
    // The largest radius is allowed.
    assert_eq!(
        fx.store
            .near(&radius_query(&fx, resident, DOM, 100_000.0))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn near_sorts_by_distance_and_leaves_out_what_is_just_beyond_the_radius() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    // Created far-to-near, so that creation order cannot be mistaken for distance order.
    let bonn = fx.create(located("Bonn", BONN));
    let deutz = fx.create(located("Deutz", DEUTZ));
    let neumarkt = fx.create(located("Neumarkt", NEUMARKT));
    let rathaus = fx.create(located("Rathaus", RATHAUS));
    let hbf = fx.create(located("Hauptbahnhof", HAUPTBAHNHOF));
    let dom = fx.create(located("Dom", DOM));
    let hidden = fx.create(with_status(located("Versteckt", DOM), Status::Hidden));
    let _expired = fx.create(ItemContent {
        valid_until: Some(Utc::now() - Duration::days(1)),
        ..located("Vorbei", DOM)
    });

    let distance = |p: (f64, f64)| haversine_m(DOM.0, DOM.1, p.0, p.1);
    let to_neumarkt = distance(NEUMARKT);
    assert!((800.0..1_200.0).contains(&to_neumarkt), "{to_neumarkt}");

    let found = fx.store.near(&radius_query(&fx, resident, DOM, 2_000.0)).unwrap();
    assert_eq!(
        found.iter().map(|n| n.item.id).collect::<Vec<_>>(),
        vec![dom.id, hbf.id, rathaus.id, neumarkt.id, deutz.id]
    );
    assert!(found.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
    for n in &found {
        let loc = n.item.content.location.unwrap();
        let expected = distance((loc.lat, loc.lon));
        assert!(
            (n.distance_m - expected).abs() < 0.01,
            "{}: {} vs {expected}",
            n.item.content.title.get("de").unwrap(),
            n.distance_m
        );
    }
    assert!(found[0].distance_m < 1.0);

    // Just beyond the radius is out, just within is in.
    let ids_within = |radius: f64| -> Vec<ItemId> {
        fx.store
            .near(&radius_query(&fx, resident, DOM, radius))
            .unwrap()
            .iter()
            .map(|n| n.item.id)
            .collect()
    };
    assert_eq!(ids_within(to_neumarkt - 3.0), vec![dom.id, hbf.id, rathaus.id]);
    assert_eq!(
        ids_within(to_neumarkt + 3.0),
        vec![dom.id, hbf.id, rathaus.id, neumarkt.id]
    );
    // Bonn is about 25 km away.
    assert_eq!(ids_within(30_000.0).last(), Some(&bonn.id));
    assert!(!ids_within(20_000.0).contains(&bonn.id));

    // The map shows published items only: hidden and expired ones are off it for everyone,
    // coordinators and the author included (the feed is where coordinators review them).
    for viewer in [fx.viewer(Role::Coordinator), fx.author_viewer(), resident] {
        let found = fx.store.near(&radius_query(&fx, viewer, DOM, 10.0)).unwrap();
        assert_eq!(id_set(found.iter().map(|n| &n.item)), id_set([&dom]));
    }
    let coordinator_feed = FeedQuery {
        statuses: vec![Status::Hidden],
        ..FeedQuery::new(fx.space, fx.viewer(Role::Coordinator))
    };
    assert_eq!(feed_ids(&fx.store, &coordinator_feed), vec![hidden.id]);
    // Limit keeps the nearest.
    let q = RadiusQuery {
        limit: 2.into(),
        ..radius_query(&fx, resident, DOM, 2_000.0)
    };
    assert_eq!(
        fx.store
            .near(&q)
            .unwrap()
            .iter()
            .map(|n| n.item.id)
            .collect::<Vec<_>>(),
        vec![dom.id, hbf.id]
    );
    // Kinds.
    let q = RadiusQuery {
        kinds: vec![ItemKind::Post],
        ..radius_query(&fx, resident, DOM, 2_000.0)
    };
    assert!(fx.store.near(&q).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Offers open at a moment
// ---------------------------------------------------------------------------------------------

fn open_at(fx: &Fixture, viewer: Viewer, at: DateTime<Utc>) -> BTreeSet<ItemId> {
    id_set(
        &fx.store
            .open_offers(&OpenOffersQuery {
                space: fx.space,
                viewer,
                at: Some(at),
            })
            .unwrap(),
    )
}

#[test]
fn offers_open_at_a_moment_in_the_space_time_zone() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let weekly = fx.create(offer(
        "Sozialberatung",
        vec![opening(
            "FREQ=WEEKLY;BYDAY=MO,WE",
            hm(9, 0),
            hm(12, 0),
            Some(date(2026, 1, 5)),
        )],
    ));
    let monthly = fx.create(offer(
        "Rentenberatung",
        vec![opening(
            "FREQ=MONTHLY;BYDAY=1TU",
            hm(14, 0),
            hm(16, 0),
            Some(date(2026, 1, 1)),
        )],
    ));
    let mut rule = opening(
        "FREQ=WEEKLY;BYDAY=MO",
        hm(10, 0),
        hm(18, 0),
        Some(date(2026, 3, 2)),
    );
    rule.valid_until = Some(date(2026, 6, 29));
    rule.closed_on = vec![date(2026, 4, 6)]; // Ostermontag
    let seasonal = fx.create(offer("Fahrradwerkstatt", vec![rule]));
    let no_hours = fx.create(offer("Ohne Öffnungszeiten", vec![]));
    let _post = fx.post("Kein Angebot", "");
    let none = BTreeSet::new();

    // Wednesday 2026-03-04, CET (UTC+1): 09:00–12:00 local is 08:00–11:00Z.
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 4, 7, 59)), none);
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 4, 8, 0)), id_set([&weekly]));
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 4, 8, 30)), id_set([&weekly]));
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 4, 10, 59)), id_set([&weekly]));
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 4, 11, 0)), none);
    // Tuesday: closed.
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 3, 8, 30)), none);
    // Before the rule's first day.
    assert_eq!(open_at(&fx, resident, utc(2025, 12, 31, 8, 30)), none);

    // Monday 2026-03-23 (still CET), 09:30Z = 10:30 local: weekly and seasonal are open.
    assert_eq!(
        open_at(&fx, resident, utc(2026, 3, 23, 9, 30)),
        id_set([&weekly, &seasonal])
    );
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 23, 7, 30)), none);

    // DST: the clocks went forward on Sunday 2026-03-29. On Monday 2026-03-30, 09:30 local is
    // 07:30Z (it would be 08:30 local under CET).
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 30, 7, 30)), id_set([&weekly]));
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 30, 7, 0)), id_set([&weekly]));
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 30, 6, 59)), none);
    assert_eq!(
        open_at(&fx, resident, utc(2026, 3, 30, 9, 59)),
        id_set([&weekly, &seasonal])
    );
    assert_eq!(
        open_at(&fx, resident, utc(2026, 3, 30, 10, 0)),
        id_set([&seasonal])
    );
    assert_eq!(
        open_at(&fx, resident, utc(2026, 3, 30, 15, 59)),
        id_set([&seasonal])
    );
    assert_eq!(open_at(&fx, resident, utc(2026, 3, 30, 16, 0)), none);

    // Monthly on the first Tuesday, 14:00–16:00 local: 2026-05-05 is the first Tuesday of May
    // (CEST, 12:00–14:00Z); 2026-05-12 is the second.
    assert_eq!(
        open_at(&fx, resident, utc(2026, 5, 5, 12, 30)),
        id_set([&monthly])
    );
    assert_eq!(open_at(&fx, resident, utc(2026, 5, 5, 11, 59)), none);
    assert_eq!(open_at(&fx, resident, utc(2026, 5, 5, 14, 0)), none);
    assert_eq!(open_at(&fx, resident, utc(2026, 5, 12, 12, 30)), none);
    assert_eq!(
        open_at(&fx, resident, utc(2026, 6, 2, 12, 30)),
        id_set([&monthly])
    );
    // In winter (CET) the same local hours are an hour later in UTC: 2026-02-03.
    assert_eq!(
        open_at(&fx, resident, utc(2026, 2, 3, 13, 30)),
        id_set([&monthly])
    );
    assert_eq!(open_at(&fx, resident, utc(2026, 2, 3, 12, 30)), none);

    // Closed on Easter Monday, open the Monday after; validity ends on 2026-06-29 (inclusive).
    assert_eq!(open_at(&fx, resident, utc(2026, 4, 6, 9, 0)), id_set([&weekly]));
    assert_eq!(open_at(&fx, resident, utc(2026, 4, 6, 12, 0)), none);
    assert_eq!(
        open_at(&fx, resident, utc(2026, 4, 13, 12, 0)),
        id_set([&seasonal])
    );
    assert_eq!(
        open_at(&fx, resident, utc(2026, 6, 29, 12, 0)),
        id_set([&seasonal])
    );
    assert_eq!(open_at(&fx, resident, utc(2026, 7, 6, 12, 0)), none);
    // Before its first day (Monday 2026-02-23).
    assert_eq!(open_at(&fx, resident, utc(2026, 2, 23, 12, 0)), none);

    assert!(!open_at(&fx, resident, utc(2026, 3, 4, 8, 30)).contains(&no_hours.id));
}

#[test]
fn open_offers_respect_visibility_validity_and_the_space_time_zone() {
    let fx = Fixture::new();
    let monday_morning = opening("FREQ=WEEKLY;BYDAY=MO", hm(9, 0), hm(12, 0), None);
    let public = fx.create(offer("Beratung", vec![monday_morning.clone()]));
    let for_caseworkers = fx.create(with_audience(
        offer("Fallkonferenz", vec![monday_morning.clone()]),
        Audience::Caseworkers,
    ));
    let ended = fx.create(ItemContent {
        valid_until: Some(utc(2026, 3, 1, 0, 0)),
        ..offer("Winterhilfe", vec![monday_morning.clone()])
    });
    // Monday 2026-03-02, 10:00 CET = 09:00Z; and Monday 2026-02-23.
    let at = utc(2026, 3, 2, 9, 0);
    assert_eq!(open_at(&fx, fx.viewer(Role::Resident), at), id_set([&public]));
    assert_eq!(
        open_at(&fx, fx.viewer(Role::Caseworker), at),
        id_set([&public, &for_caseworkers])
    );
    assert_eq!(
        open_at(&fx, fx.viewer(Role::Resident), utc(2026, 2, 23, 9, 0)),
        id_set([&public, &ended])
    );

    // The same rule in a space in Tokyo opens at 09:00 JST = 00:00Z.
    let tokyo = fx
        .store
        .create_space(
            SpaceMeta {
                time_zone: "Asia/Tokyo".into(),
                ..space_meta("Shibuya")
            },
            fx.author,
        )
        .unwrap()
        .id;
    let in_tokyo = fx
        .store
        .create_item(NewItem::new(
            tokyo,
            fx.author,
            offer("Beratung", vec![monday_morning]),
        ))
        .unwrap();
    let q = |at| OpenOffersQuery {
        space: tokyo,
        viewer: fx.viewer(Role::Resident),
        at: Some(at),
    };
    assert_eq!(
        ids(&fx.store.open_offers(&q(utc(2026, 3, 2, 0, 30))).unwrap()),
        vec![in_tokyo.id]
    );
    assert!(fx
        .store
        .open_offers(&q(utc(2026, 3, 2, 9, 0)))
        .unwrap()
        .is_empty());
    // ... and Berlin's offers are not listed there.
    assert!(!open_at(&fx, fx.viewer(Role::Resident), utc(2026, 3, 2, 0, 30)).contains(&public.id));

    // Changing the space's time zone changes what is open when.
    let space = fx.store.space(tokyo).unwrap();
    fx.store
        .update_space(
            tokyo,
            SpaceMeta {
                time_zone: "Europe/Berlin".into(),
                ..space.meta
            },
            fx.author,
        )
        .unwrap();
    assert!(fx
        .store
        .open_offers(&q(utc(2026, 3, 2, 0, 30)))
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&fx.store.open_offers(&q(utc(2026, 3, 2, 9, 0))).unwrap()),
        vec![in_tokyo.id]
    );

    // Unknown space.
    let err = fx
        .store
        .open_offers(&OpenOffersQuery {
            space: SpaceId::new(),
            viewer: fx.viewer(Role::Resident),
            at: Some(at),
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "space", .. }), "{err}");
}

#[test]
fn malformed_opening_rules_are_refused_and_nothing_is_stored() {
    let fx = Fixture::new();
    let outbox = fx.store.outbox_len().unwrap();
    let documents = fx.store.document_ids().unwrap();
    let bad_rules = vec![
        opening("FREQ=SOMETIMES", hm(9, 0), hm(12, 0), None),
        opening("", hm(9, 0), hm(12, 0), None),
        opening("BYDAY=MO", hm(9, 0), hm(12, 0), None),
        opening("FREQ=WEEKLY;BYDAY=XX", hm(9, 0), hm(12, 0), None),
        opening("FREQ=HOURLY;BYDAY=MO", hm(9, 0), hm(12, 0), None),
        opening("FREQ=MINUTELY", hm(9, 0), hm(12, 0), None),
        opening("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", hm(9, 0), hm(12, 0), None),
        opening("FREQ=WEEKLY;BYDAY=MO;COUNT=3", hm(9, 0), hm(12, 0), None),
        opening("FREQ=WEEKLY", hm(9, 0), hm(12, 0), None),
        opening(
            "FREQ=WEEKLY;COUNT=3;UNTIL=20261231",
            hm(9, 0),
            hm(12, 0),
            Some(date(2026, 1, 1)),
        ),
        opening("RRULE:FREQ=WEEKLY;BYDAY=MO", hm(9, 0), hm(12, 0), None),
        opening("FREQ=WEEKLY;BYDAY=MO;INTERVAL=0", hm(9, 0), hm(12, 0), None),
        opening("FREQ=WEEKLY;BYDAY=MO\u{0}", hm(9, 0), hm(12, 0), None),
        opening("FREQ=WÖCHENTLICH", hm(9, 0), hm(12, 0), None),
        OpeningRule {
            valid_until: Some(date(2026, 1, 1)),
            ..opening(
                "FREQ=WEEKLY;BYDAY=MO",
                hm(9, 0),
                hm(12, 0),
                Some(date(2026, 6, 1)),
            )
        },
    ];
    for rule in bad_rules {
        let shown = format!("{rule:?}");
        let good = opening("FREQ=WEEKLY;BYDAY=TU", hm(9, 0), hm(12, 0), None);
        let err = fx
            .store
            .create_item(NewItem::new(
                fx.space,
                fx.author,
                offer("Kaputt", vec![good, rule]),
            ))
            .unwrap_err();
        assert!(matches!(err, Error::Schedule(_)), "{shown}: {err:?}");
    }
    assert_eq!(fx.store.outbox_len().unwrap(), outbox);
    assert_eq!(fx.store.document_ids().unwrap(), documents);
    let everything = FeedQuery {
        statuses: Status::ALL.to_vec(),
        ..FeedQuery::new(fx.space, fx.author_viewer())
    };
    assert!(fx.store.feed(&everything).unwrap().items.is_empty());

    // An edit that breaks the hours of an existing offer is refused, the offer stays as it was.
    let rule = opening("FREQ=WEEKLY;BYDAY=MO", hm(9, 0), hm(12, 0), None);
    let item = fx.create(offer("Beratung", vec![rule]));
    let ItemDetails::Offer(mut broken) = item.content.details.clone() else {
        unreachable!()
    };
    broken.schedules[0].rrule = "FREQ=WEEKLY;BYDAY=MO;BYSECOND=5".into();
    let err = fx
        .store
        .update_item(
            item.id,
            &ItemPatch {
                details: Some(ItemDetails::Offer(broken)),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Schedule(ScheduleError::InvalidRrule { .. })),
        "{err:?}"
    );
    let detail = fx.store.item_detail(item.id, &fx.viewer(Role::Resident)).unwrap();
    assert_eq!(detail.item, item);
    assert_eq!(detail.history.len(), 1);
    assert_eq!(
        open_at(&fx, fx.viewer(Role::Resident), utc(2026, 3, 2, 9, 0)),
        id_set([&item])
    );
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

fn events_query(fx: &Fixture, viewer: Viewer, from: DateTime<Utc>, to: DateTime<Utc>) -> EventsQuery {
    EventsQuery {
        space: fx.space,
        viewer,
        from,
        to,
        limit: 100.into(),
    }
}

fn occurrences(fx: &Fixture, q: &EventsQuery) -> Vec<(ItemId, DateTime<Utc>, DateTime<Utc>)> {
    fx.store
        .events_between(q)
        .unwrap()
        .into_iter()
        .map(|o| (o.item.id, o.start, o.end))
        .collect()
}

#[test]
fn events_between_expands_series_and_orders_by_start() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    // Thursdays 19:00–21:00 Berlin, five times from 2026-03-05, not on 2026-03-12.
    let series = fx.create(event(
        "Repair-Café",
        local(2026, 3, 5, 19, 0),
        local(2026, 3, 5, 21, 0),
        Some("FREQ=WEEKLY;BYDAY=TH;COUNT=5"),
        vec![local(2026, 3, 12, 19, 0)],
    ));
    let once = fx.create(event(
        "Frühjahrsputz",
        local(2026, 3, 20, 10, 0),
        local(2026, 3, 20, 12, 0),
        None,
        vec![],
    ));
    // Every Monday from 2026-01-05 without end.
    let endless = fx.create(event(
        "Lauftreff",
        local(2026, 1, 5, 18, 0),
        local(2026, 1, 5, 19, 0),
        Some("FREQ=WEEKLY;BYDAY=MO"),
        vec![],
    ));
    let volunteers_only = fx.create(with_audience(
        event(
            "Helfertreffen",
            local(2026, 3, 25, 18, 0),
            local(2026, 3, 25, 20, 0),
            None,
            vec![],
        ),
        Audience::Volunteers,
    ));
    let other_space = fx.other_space("Ehrenfeld");
    fx.store
        .create_item(NewItem::new(
            other_space,
            fx.author,
            event(
                "Anderswo",
                local(2026, 3, 19, 19, 0),
                local(2026, 3, 19, 20, 0),
                None,
                vec![],
            ),
        ))
        .unwrap();
    fx.post("Kein Termin", "");

    // March 16 to April 6, 2026.
    let q = events_query(&fx, resident, utc(2026, 3, 16, 0, 0), utc(2026, 4, 6, 0, 0));
    assert_eq!(
        occurrences(&fx, &q),
        vec![
            (endless.id, utc(2026, 3, 16, 17, 0), utc(2026, 3, 16, 18, 0)),
            (series.id, utc(2026, 3, 19, 18, 0), utc(2026, 3, 19, 20, 0)),
            (once.id, utc(2026, 3, 20, 9, 0), utc(2026, 3, 20, 11, 0)),
            (endless.id, utc(2026, 3, 23, 17, 0), utc(2026, 3, 23, 18, 0)),
            (series.id, utc(2026, 3, 26, 18, 0), utc(2026, 3, 26, 20, 0)),
            // After the change to CEST, still 18:00 and 19:00 local.
            (endless.id, utc(2026, 3, 30, 16, 0), utc(2026, 3, 30, 17, 0)),
            (series.id, utc(2026, 4, 2, 17, 0), utc(2026, 4, 2, 19, 0)),
        ]
    );
    let all = fx.store.events_between(&q).unwrap();
    assert_eq!(all[1].item, series);

    // The whole series: the cancelled Thursday is missing, COUNT ends it after April 2.
    let q = EventsQuery {
        limit: 1000.into(),
        ..events_query(&fx, resident, utc(2026, 3, 1, 0, 0), utc(2026, 6, 1, 0, 0))
    };
    let series_starts: Vec<DateTime<Utc>> = occurrences(&fx, &q)
        .into_iter()
        .filter(|(id, _, _)| *id == series.id)
        .map(|(_, start, _)| start)
        .collect();
    assert_eq!(
        series_starts,
        vec![
            utc(2026, 3, 5, 18, 0),
            utc(2026, 3, 19, 18, 0),
            utc(2026, 3, 26, 18, 0),
            utc(2026, 4, 2, 17, 0)
        ]
    );

    // Volunteers see their event.
    let q = events_query(
        &fx,
        fx.viewer(Role::Volunteer),
        utc(2026, 3, 25, 0, 0),
        utc(2026, 3, 26, 0, 0),
    );
    assert_eq!(
        occurrences(&fx, &q),
        vec![(
            volunteers_only.id,
            utc(2026, 3, 25, 17, 0),
            utc(2026, 3, 25, 19, 0)
        )]
    );
    let q = events_query(&fx, resident, utc(2026, 3, 25, 0, 0), utc(2026, 3, 26, 0, 0));
    assert!(occurrences(&fx, &q).is_empty());

    // An endless series far in the future.
    let q = events_query(&fx, resident, utc(2030, 6, 1, 0, 0), utc(2030, 6, 8, 0, 0));
    assert_eq!(
        occurrences(&fx, &q),
        vec![(endless.id, utc(2030, 6, 3, 16, 0), utc(2030, 6, 3, 17, 0))]
    );
    // Before anything starts.
    let q = events_query(&fx, resident, utc(2025, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0));
    assert!(occurrences(&fx, &q).is_empty());

    // The limit keeps the earliest occurrences.
    let q = EventsQuery {
        limit: 3.into(),
        ..events_query(&fx, resident, utc(2026, 3, 16, 0, 0), utc(2026, 4, 6, 0, 0))
    };
    assert_eq!(
        occurrences(&fx, &q)
            .into_iter()
            .map(|(id, start, _)| (id, start))
            .collect::<Vec<_>>(),
        vec![
            (endless.id, utc(2026, 3, 16, 17, 0)),
            (series.id, utc(2026, 3, 19, 18, 0)),
            (once.id, utc(2026, 3, 20, 9, 0)),
        ]
    );

    // A deleted series disappears; an edited one moves.
    fx.store.delete_item(once.id, fx.author).unwrap();
    fx.store
        .update_item(
            endless.id,
            &ItemPatch {
                details: Some(ItemDetails::Event(Event {
                    timing: quartier_core::schedule::EventTiming {
                        start: local(2026, 1, 6, 18, 0),
                        end: local(2026, 1, 6, 19, 0),
                        time_zone: "Europe/Berlin".into(),
                        rrule: Some("FREQ=WEEKLY;BYDAY=TU".into()),
                        exdates: vec![],
                    },
                    venue: Some("Stadtgarten".into()),
                })),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    let q = events_query(&fx, resident, utc(2026, 3, 16, 0, 0), utc(2026, 3, 23, 0, 0));
    assert_eq!(
        occurrences(&fx, &q),
        vec![
            (endless.id, utc(2026, 3, 17, 17, 0), utc(2026, 3, 17, 18, 0)),
            (series.id, utc(2026, 3, 19, 18, 0), utc(2026, 3, 19, 20, 0)),
        ]
    );
}

#[test]
fn events_range_end_is_exclusive_and_overlaps_count() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let series = fx.create(event(
        "Chorprobe",
        local(2026, 3, 5, 19, 0),
        local(2026, 3, 5, 21, 0),
        Some("FREQ=WEEKLY;BYDAY=TH;COUNT=5"),
        vec![],
    ));
    let starts = |from, to| -> Vec<DateTime<Utc>> {
        occurrences(&fx, &events_query(&fx, resident, from, to))
            .into_iter()
            .map(|(_, s, _)| s)
            .collect()
    };
    // An occurrence starting exactly at the end of the range is not in it.
    assert_eq!(
        starts(utc(2026, 3, 1, 0, 0), utc(2026, 3, 12, 18, 0)),
        vec![utc(2026, 3, 5, 18, 0)]
    );
    assert_eq!(
        starts(utc(2026, 3, 1, 0, 0), utc(2026, 3, 12, 18, 1)),
        vec![utc(2026, 3, 5, 18, 0), utc(2026, 3, 12, 18, 0)]
    );
    // One that is running when the range starts is in it; one that ended exactly then is not.
    assert_eq!(
        starts(utc(2026, 3, 5, 19, 0), utc(2026, 3, 6, 0, 0)),
        vec![utc(2026, 3, 5, 18, 0)]
    );
    assert!(starts(utc(2026, 3, 5, 20, 0), utc(2026, 3, 12, 0, 0)).is_empty());
    // After the last occurrence.
    assert!(starts(utc(2026, 4, 2, 19, 0), utc(2027, 1, 1, 0, 0)).is_empty());
    assert_eq!(
        occurrences(
            &fx,
            &events_query(&fx, resident, utc(2026, 4, 2, 18, 59), utc(2026, 4, 3, 0, 0))
        ),
        vec![(series.id, utc(2026, 4, 2, 17, 0), utc(2026, 4, 2, 19, 0))]
    );
    // An empty or reversed range is a typed error.
    for (from, to) in [
        (utc(2026, 3, 5, 0, 0), utc(2026, 3, 5, 0, 0)),
        (utc(2026, 3, 6, 0, 0), utc(2026, 3, 5, 0, 0)),
    ] {
        let err = fx
            .store
            .events_between(&events_query(&fx, resident, from, to))
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }
}

#[test]
fn malformed_event_timings_are_refused_and_nothing_is_stored() {
    let fx = Fixture::new();
    let outbox = fx.store.outbox_len().unwrap();
    let start = local(2026, 3, 5, 19, 0);
    let end = local(2026, 3, 5, 21, 0);
    for rrule in [
        "FREQ=SOMETIMES",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=SECONDLY",
        "FREQ=HOURLY;COUNT=3",
        "COUNT=3",
        "FREQ=WEEKLY;COUNT=2;UNTIL=20261231",
        "FREQ=WEEKLY;UNTIL=20260101",
        "FREQ=WEEKLY;COUNT=-1",
        "FREQ=DAILY;COUNT=99999999",
        "FREQ=WEEKLY;INTERVAL=x",
        "",
        "RRULE:FREQ=WEEKLY",
        ";;;",
    ] {
        let err = fx
            .store
            .create_item(NewItem::new(
                fx.space,
                fx.author,
                event("Kaputt", start, end, Some(rrule), vec![]),
            ))
            .unwrap_err();
        assert!(matches!(err, Error::Schedule(_)), "{rrule:?}: {err:?}");
    }
    let err = fx
        .store
        .create_item(NewItem::new(
            fx.space,
            fx.author,
            event("Rückwärts", end, start, None, vec![]),
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::Schedule(ScheduleError::InvalidRange { .. })),
        "{err:?}"
    );
    let mut bad_zone = event("Atlantis", start, end, None, vec![]);
    if let ItemDetails::Event(e) = &mut bad_zone.details {
        e.timing.time_zone = "Europe/Atlantis".into();
    }
    let err = fx
        .store
        .create_item(NewItem::new(fx.space, fx.author, bad_zone))
        .unwrap_err();
    assert!(
        matches!(err, Error::Schedule(ScheduleError::UnknownTimeZone(_))),
        "{err:?}"
    );
    assert_eq!(fx.store.outbox_len().unwrap(), outbox);
    let q = events_query(
        &fx,
        fx.author_viewer(),
        utc(2000, 1, 1, 0, 0),
        utc(2100, 1, 1, 0, 0),
    );
    assert!(fx.store.events_between(&q).unwrap().is_empty());
    let everything = FeedQuery {
        statuses: Status::ALL.to_vec(),
        ..FeedQuery::new(fx.space, fx.author_viewer())
    };
    assert!(fx.store.feed(&everything).unwrap().items.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Item detail
// ---------------------------------------------------------------------------------------------

#[test]
fn item_detail_tells_who_changed_what_when_from_which_device_and_lists_comments() {
    let fx = Fixture::new();
    let editor = PersonId::new();
    let remote_editor = PersonId::new();
    let before = Utc::now() - Duration::seconds(1);
    let item = fx.post("Baumscheiben", "Wer gießt mit?");
    fx.store
        .update_item(
            item.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Baumscheiben gießen")),
                tags: Some(["grün".to_owned()].into()),
                ..Default::default()
            },
            editor,
        )
        .unwrap();
    // A no-op edit writes nothing and adds no history.
    fx.store
        .update_item(
            item.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Baumscheiben gießen")),
                ..Default::default()
            },
            editor,
        )
        .unwrap();

    // A second device edits the body; its change arrives by merge.
    let (_dir, phone) = fx.replica();
    phone
        .update_item(
            item.id,
            &ItemPatch {
                body: Some(LocalizedText::single(
                    "de",
                    "Wer gießt mit? Kannen stehen im Hof.",
                )),
                ..Default::default()
            },
            remote_editor,
        )
        .unwrap();
    fx.store
        .apply_changes(&phone.document_changes(&item.id.to_string()).unwrap())
        .unwrap();

    let c1 = fx.create_by(PersonId::new(), comment(item.id, "Ich mache mit"));
    let c2 = fx.create_by(
        PersonId::new(),
        with_audience(
            comment(item.id, "Hinweis für Sozialarbeit"),
            Audience::Caseworkers,
        ),
    );
    let c3 = fx.create_by(editor, comment(item.id, "Ich auch"));
    let deleted = fx.create_by(editor, comment(item.id, "Doch nicht"));
    fx.store.delete_item(deleted.id, editor).unwrap();

    let resident = fx.viewer(Role::Resident);
    let detail = fx.store.item_detail(item.id, &resident).unwrap();
    assert_eq!(detail.item.content.title.get("de"), Some("Baumscheiben gießen"));
    assert_eq!(
        detail.item.content.body.get("de"),
        Some("Wer gießt mit? Kannen stehen im Hof.")
    );
    assert_eq!(detail.item.created_at, item.created_at);
    assert!(detail.item.updated_at >= item.updated_at);

    let history = &detail.history;
    assert_eq!(history.len(), 3, "{history:#?}");
    assert_eq!(history[0].fields, vec!["created"]);
    assert_eq!(history[0].person, Some(fx.author));
    assert_eq!(history[0].device, fx.store.device_actor());
    assert_eq!(history[1].fields, vec!["title", "tags"]);
    assert_eq!(history[1].person, Some(editor));
    assert_eq!(history[1].device, fx.store.device_actor());
    assert_eq!(history[2].fields, vec!["body"]);
    assert_eq!(history[2].person, Some(remote_editor));
    assert_eq!(history[2].device, phone.device_actor());
    assert_ne!(phone.device_actor(), fx.store.device_actor());
    let after = Utc::now() + Duration::seconds(1);
    for entry in history {
        assert!(entry.at > before && entry.at < after, "{entry:?}");
        assert_eq!(entry.change.len(), 64, "{entry:?}");
    }
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    let changes: BTreeSet<&str> = history.iter().map(|h| h.change.as_str()).collect();
    assert_eq!(changes.len(), 3);
    let mut heads = fx.store.document_heads(&item.id.to_string()).unwrap();
    heads.retain(|h| changes.contains(h.as_str()));
    assert_eq!(heads.len(), 1, "the last change is the document's head");

    // Comments the viewer may see, oldest first, deleted ones left out.
    assert_eq!(ids(&detail.comments), vec![c1.id, c3.id]);
    let for_caseworker = fx
        .store
        .item_detail(item.id, &fx.viewer(Role::Caseworker))
        .unwrap();
    assert_eq!(ids(&for_caseworker.comments), vec![c1.id, c2.id, c3.id]);
    assert_eq!(for_caseworker.history, detail.history);

    // The phone has the same history once it has the same changes, and once its own edit,
    // kept as a patch until then (named by its outbox position), is built for sending.
    phone
        .apply_changes(&fx.store.document_changes(&item.id.to_string()).unwrap())
        .unwrap();
    let unsent = phone.item_detail(item.id, &resident).unwrap().history;
    assert_eq!(
        unsent.iter().filter(|h| h.change.starts_with("pending-")).count(),
        1,
        "{unsent:#?}"
    );
    phone.pending_changes(10).unwrap();
    let on_phone = phone.item_detail(item.id, &resident).unwrap();
    assert_eq!(on_phone.history, detail.history);
}

#[test]
fn item_detail_is_not_found_for_items_the_viewer_may_not_see() {
    let fx = Fixture::new();
    let secret = fx.create(with_audience(post("Fallakte", ""), Audience::Caseworkers));
    let draft = fx.create(with_status(post("Entwurf", ""), Status::Draft));
    let hidden = fx.create(with_status(post("Ausgeblendet", ""), Status::Hidden));
    let resident = fx.viewer(Role::Resident);
    for item in [&secret, &draft, &hidden] {
        let err = fx.store.item_detail(item.id, &resident).unwrap_err();
        assert!(matches!(err, Error::NotFound { what: "item", .. }), "{err}");
        // The author sees each of them.
        assert_eq!(
            fx.store.item_detail(item.id, &fx.author_viewer()).unwrap().item,
            *item
        );
    }
    assert_eq!(
        fx.store
            .item_detail(secret.id, &fx.viewer(Role::Caseworker))
            .unwrap()
            .item,
        secret
    );
    assert!(fx
        .store
        .item_detail(secret.id, &fx.viewer(Role::Coordinator))
        .is_err());
    assert_eq!(
        fx.store
            .item_detail(hidden.id, &fx.viewer(Role::Coordinator))
            .unwrap()
            .item,
        hidden
    );
    let err = fx.store.item_detail(ItemId::new(), &resident).unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "item", .. }), "{err}");
}

/// The point `distance_m` metres from `from` in direction `bearing_deg` (0 = north, 90 = east),
/// on the sphere the core measures distances on.
fn destination(from: (f64, f64), bearing_deg: f64, distance_m: f64) -> (f64, f64) {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (phi1, lambda1) = (from.0.to_radians(), from.1.to_radians());
    let (theta, delta) = (bearing_deg.to_radians(), distance_m / EARTH_RADIUS_M);
    let phi2 = (phi1.sin() * delta.cos() + phi1.cos() * delta.sin() * theta.cos()).asin();
    let lambda2 =
        lambda1 + (theta.sin() * delta.sin() * phi1.cos()).atan2(delta.cos() - phi1.sin() * phi2.sin());
    let lon = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    (phi2.to_degrees(), lon)
}

#[test]
fn near_finds_everything_within_the_radius_in_every_direction() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    for (radius, margin) in [(1_000.0, 1.0), (25_000.0, 5.0), (100_000.0, 20.0)] {
        let fx = Fixture::new();
        let mut inside = BTreeSet::new();
        let mut outside = BTreeSet::new();
        for bearing in [0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0] {
            let p = destination(DOM, bearing, radius - margin);
            let d = haversine_m(DOM.0, DOM.1, p.0, p.1);
            assert!((d - (radius - margin)).abs() < 0.01, "{d}");
            inside.insert(fx.create(located(&format!("innen {bearing}"), p)).id);
            let p = destination(DOM, bearing, radius + margin);
            outside.insert(fx.create(located(&format!("außen {bearing}"), p)).id);
        }
        let found = fx
            .store
            .near(&RadiusQuery {
                limit: 1000.into(),
                ..radius_query(&fx, resident, DOM, radius)
            })
            .unwrap();
        let found_ids: BTreeSet<ItemId> = found.iter().map(|n| n.item.id).collect();
        assert_eq!(found_ids, inside, "radius {radius} m");
        assert!(found_ids.is_disjoint(&outside));
        for n in &found {
            let loc = n.item.content.location.unwrap();
            let exact = haversine_m(DOM.0, DOM.1, loc.lat, loc.lon);
            assert!(
                (n.distance_m - exact).abs() < 0.01,
                "reported {} m, the item is {exact} m away",
                n.distance_m
            );
        }
    }
    // Close to the pole, the circle covers every longitude.
    let north = (89.99, 20.0);
    let across = destination(north, 0.0, 2_000.0); // over the pole, to 160°W
    assert!(across.1 < 0.0, "{across:?}");
    let item = fx.create(located("Jenseits des Pols", across));
    let found = fx
        .store
        .near(&radius_query(&fx, resident, north, 3_000.0))
        .unwrap();
    assert_eq!(found.iter().map(|n| n.item.id).collect::<Vec<_>>(), vec![item.id]);
}

#[test]
fn viewport_edges_are_exact() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let dom = fx.create(located("Dom", DOM));
    // Boxes whose edge lies a few centimetres short of the item, on each side.
    let eps = 5e-7; // about 5 cm of latitude, 3.5 cm of longitude here
    for (s, w, n, e) in [
        (DOM.0 - 0.01, DOM.1 - 0.01, DOM.0 - eps, DOM.1 + 0.01),
        (DOM.0 + eps, DOM.1 - 0.01, DOM.0 + 0.01, DOM.1 + 0.01),
        (DOM.0 - 0.01, DOM.1 - 0.01, DOM.0 + 0.01, DOM.1 - eps),
        (DOM.0 - 0.01, DOM.1 + eps, DOM.0 + 0.01, DOM.1 + 0.01),
    ] {
        let found = fx
            .store
            .viewport(&viewport_query(&fx, resident, s, w, n, e))
            .unwrap();
        assert!(found.is_empty(), "box {s} {w} {n} {e} holds the Dom");
    }
    for (s, w, n, e) in [
        (DOM.0 - 0.01, DOM.1 - 0.01, DOM.0 + eps, DOM.1 + 0.01),
        (DOM.0 - eps, DOM.1 - 0.01, DOM.0 + 0.01, DOM.1 + 0.01),
        (DOM.0 - 0.01, DOM.1 - 0.01, DOM.0 + 0.01, DOM.1 + eps),
        (DOM.0 - 0.01, DOM.1 - eps, DOM.0 + 0.01, DOM.1 + 0.01),
    ] {
        let found = fx
            .store
            .viewport(&viewport_query(&fx, resident, s, w, n, e))
            .unwrap();
        assert_eq!(ids(&found), vec![dom.id], "box {s} {w} {n} {e}");
    }
}

/// The ranking bound (`RANKED_MATCHES`): while a word matches no more items than the bound, the
/// best match wins wherever it is; once more match, only the newest that the viewer may see are
/// ranked, so an old best match gives way, and a second word that narrows the matches finds it
/// again. Items the viewer may not see do not take places in the window.
#[test]
fn a_common_word_ranks_the_newest_matches_and_more_words_reach_older_ones() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let best = fx.post("Nachbar Nachbar Nachbar", "Nachbar Nachbar Kastanie");
    let bound = RANKED_MATCHES as usize;
    for i in 0..bound - 1 {
        fx.post(
            &format!("Eintrag {i}"),
            "ein Nachbar schreibt hier einen längeren Text",
        );
    }
    assert_eq!(
        search(&fx, resident, "nachbar")[0].item.id,
        best.id,
        "within the bound"
    );
    // Drafts match too but are not the resident's to see: they take no place in the window.
    for i in 0..5 {
        fx.create(with_status(
            post(&format!("Entwurf {i}"), "Nachbar"),
            Status::Draft,
        ));
    }
    assert_eq!(
        search(&fx, resident, "nachbar")[0].item.id,
        best.id,
        "drafts do not count"
    );
    for i in 0..3 {
        fx.post(&format!("Neu {i}"), "noch ein Nachbar");
    }
    let hits = search(&fx, resident, "nachbar");
    assert_eq!(hits.len(), 20);
    assert!(
        !hit_ids(&hits).contains(&best.id),
        "past the bound, the oldest match is not ranked"
    );
    assert_eq!(hit_ids(&search(&fx, resident, "nachbar kastanie")), [best.id]);
}

/// Map pins are the viewport's items, light: the same ids for every box, kind filter and limit
/// of the viewport test, each with the item's kind, every language of its title and its exact
/// position; a moved item's pin moves with it.
#[test]
fn map_pins_are_the_viewport_items_with_title_kind_and_exact_position() {
    let fx = Fixture::new();
    let mut created = Vec::new();
    for (title, at) in [
        ("Dom", DOM),
        ("Hauptbahnhof", HAUPTBAHNHOF),
        ("Deutz", DEUTZ),
        ("Bonn", BONN),
    ] {
        created.push(fx.create(located(title, at)));
    }
    let mut two_languages = located("Nachbarschaftstreff", RATHAUS);
    two_languages.title = LocalizedText::from([("de", "Nachbarschaftstreff"), ("tr", "Komşu buluşması")]);
    created.push(fx.create(two_languages));
    fx.create(with_audience(located("Schutzraum", DOM), Audience::Caseworkers));
    let resident = fx.viewer(Role::Resident);
    for (south, west, north, east) in [
        (50.93, 6.94, 50.95, 6.97),
        (50.5, 6.5, 51.2, 7.5),
        (BONN.0, BONN.1, BONN.0, BONN.1),
        (50.0, 8.0, 50.1, 8.1),
    ] {
        let q = viewport_query(&fx, resident, south, west, north, east);
        let items = fx.store.viewport(&q).unwrap();
        let pins = fx.store.map_pins(&q).unwrap();
        assert_eq!(
            pins.iter().map(|p| p.id).collect::<BTreeSet<_>>(),
            id_set(&items),
            "box {south},{west} – {north},{east}"
        );
        for pin in &pins {
            let item = items.iter().find(|i| i.id == pin.id).unwrap();
            let at = item.content.location.as_ref().unwrap();
            assert_eq!(
                (pin.kind, &pin.title, pin.lat, pin.lon),
                (item.kind(), &item.content.title, at.lat, at.lon)
            );
        }
    }
    let region = viewport_query(&fx, resident, 50.5, 6.5, 51.2, 7.5);
    let limited = ViewportQuery {
        limit: 2.into(),
        ..region.clone()
    };
    assert_eq!(fx.store.map_pins(&limited).unwrap().len(), 2);
    let treff = &created[4];
    let pin = fx
        .store
        .map_pins(&region)
        .unwrap()
        .into_iter()
        .find(|p| p.id == treff.id)
        .unwrap();
    assert_eq!(pin.title.get("tr"), Some("Komşu buluşması"));
    fx.store
        .update_item(
            treff.id,
            &ItemPatch {
                location: Some(Location::new(50.9412, 6.9583)),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    let moved = fx
        .store
        .map_pins(&region)
        .unwrap()
        .into_iter()
        .find(|p| p.id == treff.id)
        .unwrap();
    assert_eq!((moved.lat, moved.lon), (50.9412, 6.9583));
}

/// Erases item `id`, after checking that the database file holds each needle (so that the
/// check can fail), and checks that the file holds none of them afterwards.
fn erase_and_check_the_file(fx: &Fixture, id: ItemId, needles: &[&[u8]]) {
    for needle in needles {
        assert!(
            store_file_holds(&fx.store, needle),
            "{} is not where the test looks",
            String::from_utf8_lossy(needle)
        );
    }
    fx.store.erase_item(id).unwrap();
    for needle in needles {
        assert!(
            !store_file_holds(&fx.store, needle),
            "an erased item's words ({}) are still in the database file",
            String::from_utf8_lossy(needle)
        );
    }
}

/// Rows in the search index (one per item it holds), read as [`pending_in_index`] reads.
fn rows_in_index(store: &Store) -> i64 {
    rusqlite::Connection::open(store.path())
        .expect("open the store file")
        .query_row("SELECT count(*) FROM items_fts_docsize", [], |r| r.get(0))
        .expect("count the index rows")
}

/// Items waiting for the next batch of the search index (`store::search_index`), read from the
/// file the way another process would.
fn pending_in_index(store: &Store) -> i64 {
    rusqlite::Connection::open(store.path())
        .expect("open the store file")
        .query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))
        .expect("count the pending rows")
}

#[test]
fn search_finds_every_write_whether_its_batch_was_indexed_or_not() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let all_of = |text: &str| SearchRequest {
        limit: 100.into(),
        ..SearchRequest::new(fx.space, resident, text)
    };
    let mut written = BTreeSet::new();
    for i in 0..5 {
        written.insert(fx.post(&format!("Laternenumzug {i}"), "mit Kindern").id);
    }
    // Fewer than a batch: written durably, not indexed yet, and found all the same.
    assert_eq!(pending_in_index(&fx.store), 5);
    let found: BTreeSet<ItemId> = hit_ids(&fx.store.search(&all_of("laternenumzug")).unwrap())
        .into_iter()
        .collect();
    assert_eq!(found, written);
    assert_eq!(
        pending_in_index(&fx.store),
        0,
        "the search indexed what was pending"
    );
    // Across a batch: the write that gathers sixteen indexes them in its own transaction.
    for i in 5..40 {
        written.insert(fx.post(&format!("Laternenumzug {i}"), "").id);
    }
    assert!(pending_in_index(&fx.store) < 16);
    let found: BTreeSet<ItemId> = hit_ids(&fx.store.search(&all_of("laternenumzug")).unwrap())
        .into_iter()
        .collect();
    assert_eq!(found, written);
    // An edit while pending replaces the pending text; a delete removes it.
    let edited = *written.iter().next_back().expect("an item");
    fx.retitle(edited, "Martinsfeuer");
    assert_eq!(hit_ids(&search(&fx, resident, "martinsfeuer")), vec![edited]);
    assert!(!hit_ids(&search(&fx, resident, "laternenumzug")).contains(&edited));
    fx.store.delete_item(edited, fx.author).unwrap();
    assert!(search(&fx, resident, "martinsfeuer").is_empty());
}

#[test]
fn an_edit_leaves_the_index_row_for_the_next_batch_to_replace() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let lantern = fx.post("Laternenumzug", "mit Kindern").id;
    let garden = fx.post("Gartenfest", "Kuchen und Musik").id;
    assert_eq!(hit_ids(&search(&fx, resident, "gartenfest")), vec![garden]);
    assert_eq!((pending_in_index(&fx.store), rows_in_index(&fx.store)), (0, 2));
    // The edit writes a pending row and leaves the index alone (no FTS5 delete, with its
    // segment writes, at each edit); a second edit before the batch keeps what the first knew.
    fx.retitle(lantern, "Martinsfeuer");
    fx.retitle(lantern, "Martinsfeuer am Rhein");
    assert_eq!((pending_in_index(&fx.store), rows_in_index(&fx.store)), (1, 2));
    // The search replaces the row: the new words are found, the old ones are not, and the
    // index holds one row per item.
    assert_eq!(hit_ids(&search(&fx, resident, "martinsfeuer")), vec![lantern]);
    assert!(search(&fx, resident, "laternenumzug").is_empty());
    assert_eq!((pending_in_index(&fx.store), rows_in_index(&fx.store)), (0, 2));
    // The same through a batch that a write fills (sixteen pending rows).
    fx.retitle(garden, "Sommerfest");
    let mut more = Vec::new();
    for i in 0..15 {
        more.push(fx.post(&format!("Flohmarkt {i}"), "").id);
    }
    assert_eq!((pending_in_index(&fx.store), rows_in_index(&fx.store)), (0, 17));
    assert_eq!(hit_ids(&search(&fx, resident, "sommerfest")), vec![garden]);
    assert!(search(&fx, resident, "gartenfest").is_empty());
    // Deleting an item whose edit waits takes its old row out at once.
    fx.retitle(garden, "Herbstfest");
    fx.store.delete_item(garden, fx.author).unwrap();
    assert_eq!((pending_in_index(&fx.store), rows_in_index(&fx.store)), (0, 16));
    assert!(search(&fx, resident, "sommerfest").is_empty());
    assert!(search(&fx, resident, "herbstfest").is_empty());
    // Erasing an item whose edit waits leaves neither its old nor its new words in the file.
    fx.retitle(lantern, "Qqvorherwortxyz");
    assert_eq!(hit_ids(&search(&fx, resident, "qqvorherwortxyz")), vec![lantern]);
    fx.retitle(lantern, "Qqnachherwortxyz");
    assert_eq!(pending_in_index(&fx.store), 1);
    erase_and_check_the_file(&fx, lantern, &[b"vorherwortxyz", b"nachherwortxyz"]);
    assert_eq!((pending_in_index(&fx.store), rows_in_index(&fx.store)), (0, 15));
}

#[test]
fn erasing_an_item_still_waiting_for_the_search_index_leaves_no_trace_of_its_words() {
    let fx = Fixture::new();
    let kept = fx.post("Gartenfest", "");
    let erased = fx.post("Nachbarschaftshilfe", "Zitronenwortxyz bei Frau Meier");
    assert!(pending_in_index(&fx.store) >= 1);
    // The folded words wait in plain text (the item's own rows are compressed): the check
    // can see them.
    erase_and_check_the_file(&fx, erased.id, &[b"zitronenwortxyz"]);
    let resident = fx.viewer(Role::Resident);
    assert_eq!(hit_ids(&search(&fx, resident, "gartenfest")), vec![kept.id]);
}

#[test]
fn erasing_an_indexed_item_leaves_no_trace_of_its_words_in_the_search_index() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let kept = fx.post("Gartenfest", "Kuchen und Musik");
    let erased = fx.post("Hilfe gesucht", "qqxjzwortmarker bei Frau Meier");
    // The search indexes both: the words now live in the FTS segments, where a term may share
    // its first letters with the one before it, so the test looks for the rest of the word.
    assert_eq!(
        hit_ids(&search(&fx, resident, "qqxjzwortmarker")),
        vec![erased.id]
    );
    assert_eq!(pending_in_index(&fx.store), 0);
    erase_and_check_the_file(&fx, erased.id, &[b"xjzwortmarker"]);
    assert!(search(&fx, resident, "qqxjzwortmarker").is_empty());
    assert_eq!(hit_ids(&search(&fx, resident, "gartenfest")), vec![kept.id]);
}

/// An edit rewrites only the projection rows of the parts it changed: every query shows each
/// kind of edit (title, location, tags, status), and what it left alone is still found.
#[test]
fn each_kind_of_edit_shows_in_every_query_and_what_it_left_alone_stays_found() {
    let fx = Fixture::new();
    let mut content = place("Gemeinschaftsgarten", 50.95, 6.95);
    content.tags.insert("garten".into());
    let item = fx.create(content);
    let viewer = fx.viewer(Role::Resident);
    let found = |word: &str| -> bool {
        fx.store
            .search(&SearchRequest::new(fx.space, viewer, word))
            .unwrap()
            .iter()
            .any(|h| h.item.id == item.id)
    };
    let on_map = |lat: f64, lon: f64| -> bool {
        fx.store
            .viewport(&ViewportQuery {
                space: fx.space,
                viewer,
                south: lat - 0.01,
                west: lon - 0.01,
                north: lat + 0.01,
                east: lon + 0.01,
                kinds: Vec::new(),
                limit: 100.into(),
                at: None,
            })
            .unwrap()
            .iter()
            .any(|i| i.id == item.id)
    };
    let tagged = |tag: &str| -> bool {
        let mut q = FeedQuery::new(fx.space, viewer);
        q.tag = Some(tag.into());
        fx.store.feed(&q).unwrap().items.iter().any(|i| i.id == item.id)
    };
    assert!(found("gemeinschaftsgarten") && on_map(50.95, 6.95) && tagged("garten"));

    fx.retitle(item.id, "Nachbarschaftsgarten");
    assert!(found("nachbarschaftsgarten") && !found("gemeinschaftsgarten"));
    assert!(
        on_map(50.95, 6.95) && tagged("garten"),
        "the title edit left them alone"
    );

    let moved = ItemPatch {
        location: Some(Location {
            lat: 50.93,
            lon: 6.97,
            accuracy_m: None,
            source: Default::default(),
        }),
        ..Default::default()
    };
    fx.store.update_item(item.id, &moved, fx.author).unwrap();
    assert!(on_map(50.93, 6.97) && !on_map(50.95, 6.95));
    assert!(found("nachbarschaftsgarten") && tagged("garten"));

    let mut tags = BTreeSet::new();
    tags.insert("beet".to_owned());
    let retagged = ItemPatch {
        tags: Some(tags),
        ..Default::default()
    };
    fx.store.update_item(item.id, &retagged, fx.author).unwrap();
    assert!(tagged("beet") && !tagged("garten") && found("beet"));
    assert!(on_map(50.93, 6.97));

    fx.store.delete_item(item.id, fx.author).unwrap();
    assert!(!found("nachbarschaftsgarten") && !on_map(50.93, 6.97) && !tagged("beet"));
}

/// The size of the search index's segments in the file.
fn search_index_bytes(store: &Store) -> i64 {
    rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row("SELECT sum(length(block)) FROM items_fts_data", [], |r| r.get(0))
        .unwrap()
}

/// A projection rebuild empties the search index and writes it again: the old rows do not stay
/// in the file as a second, dead copy (with no merge at deletion, schema 31, a row-by-row
/// delete left them), and search and the file's integrity hold.
#[test]
fn a_projection_rebuild_leaves_no_dead_copy_of_the_search_index() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    for n in 0..400 {
        fx.create(post(&format!("Zettel {n}"), &format!("Wort{n} Runde Hof Kuchen")));
    }
    assert_eq!(search(&fx, resident, "wort399").len(), 1);
    let before = search_index_bytes(&fx.store);
    fx.store.rebuild_projections().unwrap();
    assert_eq!(search(&fx, resident, "wort399").len(), 1);
    let after = search_index_bytes(&fx.store);
    assert!(
        after < before * 3 / 2,
        "index bytes before the rebuild {before}, after {after}"
    );
    fx.store.integrity_check().unwrap();
}
