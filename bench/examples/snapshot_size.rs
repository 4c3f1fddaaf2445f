//! How big the forms of a document set are on the wire, for the initial-sync byte budget
//! (`SNAPSHOT_WIRE_RATIO`, `CREATED_WIRE_RATIO`, docs/benchmarks.md "Sync"): 2 000 generated items
//! as feed JSON, as whole-document JSON, as Automerge `save()` (DEFLATE inside), as
//! `save_nocompress()`, as raw changes and in creation form (`Record::Created`, a snapshot for
//! edited documents), each also zstd-compressed as one page would be.
//!
//! `cargo run --release -p quartier-bench --example snapshot_size`
use automerge::Automerge;
use quartier_bench::{Generator, Mix};
use quartier_core::model::*;
use quartier_core::query::FeedQuery;
use quartier_core::{Store, StoreOptions};

fn main() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let store = Store::open(dir.path().join("a.db"), StoreOptions::default()).unwrap();
    let person = PersonId::new();
    let space = store.create_space(Generator::space_meta(), person).unwrap().id;
    let mut gen = Generator::new(0x5eed, Mix::Mixed);
    let mut parents = Vec::new();
    for _ in 0..2000 {
        let mut new = gen.next_item(space, &parents);
        new.author = person;
        let item = store.create_item(new).unwrap();
        if item.kind() != ItemKind::Comment {
            parents.push(item.id);
        }
    }
    let mut saved = Vec::new();
    let mut nocomp = Vec::new();
    let mut changes = Vec::new();
    let mut docjson = Vec::new();
    let mut created = Vec::new();
    let mut rebuilt = 0;
    for (id, kind) in store.document_ids().unwrap() {
        let mut doc = Automerge::new();
        for c in store.document_changes(&id).unwrap() {
            changes.extend(&c.bytes);
            doc.load_incremental(&c.bytes).unwrap();
        }
        saved.extend(doc.save());
        nocomp.extend(doc.save_nocompress());
        docjson.extend(serde_json::to_vec(&automerge::AutoSerde::from(&doc)).unwrap());
        match quartier_core::document::creation_of(&doc, &id, kind).unwrap() {
            Some(c) => {
                rebuilt += 1;
                created.extend(&c.actor);
                created.extend(c.time_ms.to_le_bytes());
                created.extend(c.message.unwrap_or_default().as_bytes());
                created.extend(c.state.as_bytes());
                created.extend(&c.check);
            }
            None => created.extend(doc.save_nocompress()),
        }
    }
    let mut feed = FeedQuery::new(space, Viewer::new(person, Role::Coordinator));
    feed.limit = 5000.into();
    let page = store.feed(&feed).unwrap();
    let mut json = Vec::new();
    for item in &page.items {
        json.extend(serde_json::to_vec(item).unwrap());
        json.push(b'\n');
    }
    let z = |b: &[u8], l| zstd::encode_all(b, l).unwrap().len();
    println!(
        "feed items {} json {} zstd {}",
        page.items.len(),
        json.len(),
        z(&json, 3)
    );
    println!("docjson {} zstd {}", docjson.len(), z(&docjson, 3));
    println!("save {} zstd {}", saved.len(), z(&saved, 3));
    println!(
        "nocompress {} zstd3 {} zstd19 {}",
        nocomp.len(),
        z(&nocomp, 3),
        z(&nocomp, 19)
    );
    println!("changes {} zstd {}", changes.len(), z(&changes, 3));
    println!(
        "creation form ({rebuilt} rebuilt) {} zstd {}",
        created.len(),
        z(&created, 3)
    );
}
