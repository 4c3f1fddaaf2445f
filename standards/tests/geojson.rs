//! GeoJSON (RFC 7946): round trips, files written by GIS tools, bad files, and an independent
//! check of exports with the Python `geojson` package. `cargo test geojson` runs them all.

use crate::common::python;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use quartier_domain::model::{
    Address, FieldValue, Item, ItemContent, ItemDetails, ItemId, LocalizedText, Location, NewItem,
    Observation, Offer, Organization, PersonId, Place, SpaceId,
};
use quartier_standards::geojson::MAX_FEATURES;
use quartier_standards::{export_geojson, import_geojson, ImportError, MAX_IMPORT_BYTES};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn item(content: ItemContent) -> Item {
    let mut item = NewItem::new(SpaceId::new(), PersonId::new(), content).into_item(at(1_767_225_600_000));
    item.updated_at = at(1_767_312_000_123);
    item
}

fn place() -> Item {
    let mut content = ItemContent::new(
        LocalizedText::from([
            ("de", "Nachbarschaftscafé"),
            ("tr", "Mahalle kafesi"),
            ("de-x-easy", "Café"),
        ]),
        ItemDetails::Place(Place {
            category: Some("cafe".into()),
            address: Some(Address {
                street: "Lindenstraße 12".into(),
                postal_code: "10969".into(),
                city: "Berlin".into(),
                country: "DE".into(),
            }),
            accessibility: BTreeMap::from([
                ("step_free_entrance".to_owned(), "yes".to_owned()),
                ("toilet".to_owned(), "no".to_owned()),
            ]),
        }),
    );
    content.body = LocalizedText::from([("de", "Offener Treff, Kaffee gegen Spende"), ("ar", "لقاء مفتوح")]);
    content.tags = ["kaffee".to_owned(), "treff".to_owned()].into();
    content.location = Some(Location::new(52.502341, 13.401092));
    content.valid_until = Some(at(1_798_761_600_000));
    item(content)
}

fn observation() -> Item {
    let mut content = ItemContent::new(
        LocalizedText::from([("de", "Gehweg beschädigt")]),
        ItemDetails::Observation(Observation {
            preset: "sidewalk-damage".into(),
            category: Some("infrastructure".into()),
            fields: BTreeMap::from([
                ("severity".to_owned(), FieldValue::Number(3.5)),
                ("blocks_wheelchair".to_owned(), FieldValue::Bool(true)),
                ("note".to_owned(), FieldValue::Text("Platte lose".into())),
            ]),
        }),
    );
    content.location = Some(Location::gps(52.504401, 13.400112, 4.5));
    item(content)
}

fn offer() -> Item {
    let mut content = ItemContent::new(
        LocalizedText::from([("de", "Sozialberatung")]),
        ItemDetails::Offer(Offer {
            organization: Organization {
                name: "Nachbarschaftshaus".into(),
                ..Organization::default()
            },
            ..Offer::default()
        }),
    );
    content.location = Some(Location::new(52.5, 13.4));
    item(content)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

fn import(bytes: &[u8]) -> Result<quartier_standards::Import, ImportError> {
    import_geojson(bytes, SpaceId::new(), PersonId::new(), "de")
}

#[test]
fn geojson_round_trip_keeps_every_field_geojson_holds() {
    let items = vec![place(), observation()];
    let export = export_geojson(&items).unwrap();
    assert!(export.skipped.is_empty(), "{:?}", export.skipped);
    let back = import(&export.bytes).unwrap();
    assert!(back.skipped.is_empty(), "{:?}", back.skipped);
    assert_eq!(back.items.len(), 2);
    for (original, imported) in items.iter().zip(&back.items) {
        assert_eq!(imported.source_key, format!("geojson:{}", original.id));
        // Everything the author sets, except what GeoJSON does not carry here (media, audience,
        // status, on_behalf_of: see docs/standards.md), comes back equal.
        let mut expected = original.content.clone();
        expected.media.clear();
        assert_eq!(imported.item.content, expected);
    }
}

#[test]
fn geojson_export_writes_lon_lat_with_six_decimals_and_skips_other_kinds() {
    let mut precise = place();
    precise.content.location = Some(Location::new(52.502_341_234_9, -13.401_092_777));
    let offer = offer();
    let export = export_geojson(&[precise.clone(), offer.clone()]).unwrap();
    assert_eq!(export.skipped.len(), 1);
    assert_eq!(export.skipped[0].record, offer.id.to_string());
    assert!(export.skipped[0].reason.contains("offer"), "{:?}", export.skipped);

    let value = json(&export.bytes);
    assert_eq!(value["type"], "FeatureCollection");
    let feature = &value["features"][0];
    assert_eq!(feature["id"], precise.id.to_string());
    assert_eq!(feature["geometry"]["type"], "Point");
    let text = String::from_utf8(export.bytes.clone()).unwrap();
    assert!(text.contains("[-13.401093,52.502341]"), "{text}");
    let properties = &feature["properties"];
    assert_eq!(properties["kind"], "place");
    assert_eq!(properties["name"], "Nachbarschaftscafé");
    assert_eq!(properties["title:tr"], "Mahalle kafesi");
    assert_eq!(properties["body:ar"], "لقاء مفتوح");
    assert_eq!(properties["addr:postcode"], "10969");
    assert_eq!(properties["accessibility:step_free_entrance"], "yes");
    assert_eq!(properties["tags"], serde_json::json!(["kaffee", "treff"]));
    assert_eq!(properties["created"], "2026-01-01T00:00:00.000Z");
    assert_eq!(properties["updated"], "2026-01-02T00:00:00.123Z");

    let obs = export_geojson(&[observation()]).unwrap();
    let properties = &json(&obs.bytes)["features"][0]["properties"];
    assert_eq!(properties["kind"], "observation");
    assert_eq!(properties["preset"], "sidewalk-damage");
    assert_eq!(properties["field:severity"], 3.5);
    assert_eq!(properties["field:blocks_wheelchair"], true);
    assert_eq!(properties["accuracy_m"], 4.5);
    assert_eq!(properties["position_source"], "gps");
}

const PYTHON_GEOJSON_CHECK: &str = r#"
import sys, geojson
collection = geojson.loads(sys.stdin.read())
if not isinstance(collection, geojson.FeatureCollection):
    sys.exit("not a FeatureCollection: %r" % type(collection))
if not collection.is_valid:
    sys.exit("invalid: %r" % collection.errors())
for feature in collection["features"]:
    if not feature.is_valid:
        sys.exit("invalid feature: %r" % feature.errors())
    lon, lat = feature["geometry"]["coordinates"][:2]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        sys.exit("out of range: %r" % [lon, lat])
    for c in (lon, lat):
        if len(repr(c).split(".")[-1]) > 6:
            sys.exit("more than 6 decimals: %r" % c)
print(len(collection["features"]))
"#;

#[test]
fn geojson_export_is_valid_for_the_python_geojson_package() {
    let mut far = place();
    far.content.location = Some(Location::new(-89.999_999_9, 179.999_999_4));
    let export = export_geojson(&[place(), observation(), far]).unwrap();
    let Some(out) = python(PYTHON_GEOJSON_CHECK, &["geojson"], &[], &[], &export.bytes) else {
        return;
    };
    assert!(
        out.status.success(),
        "python geojson refused the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/geojson/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn geojson_import_reads_a_qgis_layer() {
    let import = import(&data("qgis_treffpunkte.geojson")).unwrap();
    assert_eq!(import.items.len(), 2, "{:?}", import.skipped);
    let cafe = &import.items[0];
    assert!(
        cafe.source_key.starts_with("geojson:anon-"),
        "{}",
        cafe.source_key
    );
    let content = &cafe.item.content;
    assert_eq!(content.title.get("de"), Some("Nachbarschaftscafé Kiez"));
    assert_eq!(content.body.get("de"), Some("Offener Treff, Kaffee gegen Spende"));
    let location = content.location.unwrap();
    assert_eq!((location.lon, location.lat), (13.4010915, 52.502341));
    let ItemDetails::Place(place) = &content.details else {
        panic!("{:?}", content.details)
    };
    assert_eq!(place.category.as_deref(), Some("cafe"));
    let address = place.address.as_ref().unwrap();
    assert_eq!(
        (address.street.as_str(), address.postal_code.as_str()),
        ("Lindenstraße 12", "10969")
    );
    assert_eq!(
        place.accessibility.get("wheelchair").map(String::as_str),
        Some("yes")
    );
    // The altitude of the bench is dropped; nulls are empty attributes, not errors.
    let bench = &import.items[1].item.content;
    assert_eq!(bench.location.unwrap().lon, 13.4032001);
    let reasons: Vec<_> = import
        .skipped
        .iter()
        .map(|s| (s.record.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "feature 3");
    assert!(reasons[0].1.contains("MultiPoint"), "{reasons:?}");
    assert_eq!(reasons[1].0, "feature 4");
    assert!(reasons[1].1.contains("no geometry"), "{reasons:?}");

    // The same file again gives the same keys: re-importing updates, never duplicates.
    let again = import_geojson(
        &data("qgis_treffpunkte.geojson"),
        SpaceId::new(),
        PersonId::new(),
        "de",
    )
    .unwrap();
    let keys =
        |i: &quartier_standards::Import| i.items.iter().map(|i| i.source_key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&import), keys(&again));
}

#[test]
fn geojson_import_reads_a_geojson_io_drawing() {
    let import = import(&data("geojson_io.geojson")).unwrap();
    assert_eq!(import.items.len(), 2, "{:?}", import.skipped);
    assert_eq!(import.items[0].source_key, "geojson:0");
    assert!(matches!(
        import.items[0].item.content.details,
        ItemDetails::Place(_)
    ));
    assert_eq!(import.items[1].source_key, "geojson:2");
    let ItemDetails::Observation(obs) = &import.items[1].item.content.details else {
        panic!("{:?}", import.items[1])
    };
    assert_eq!(obs.preset, "sidewalk-damage");
    assert_eq!(obs.fields["severity"], FieldValue::Number(3.0));
    assert_eq!(obs.fields["blocks_wheelchair"], FieldValue::Bool(true));
    assert_eq!(obs.fields["note"], FieldValue::Text("Platte lose".into()));
    assert_eq!(import.skipped.len(), 1, "{:?}", import.skipped);
    assert_eq!(import.skipped[0].record, "feature 2");
    assert!(import.skipped[0].reason.contains("Polygon"));
}

#[test]
fn geojson_import_of_the_rfc7946_example_skips_every_feature_with_its_reason() {
    let import = import(&data("rfc7946_example.geojson")).unwrap();
    assert!(import.items.is_empty());
    let reasons: Vec<_> = import.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3);
    assert!(reasons[0].contains("no name"), "{reasons:?}");
    assert!(reasons[1].contains("LineString"), "{reasons:?}");
    assert!(reasons[2].contains("Polygon"), "{reasons:?}");
}

fn feature(geometry: &str, properties: &str) -> String {
    format!(r#"{{"type":"Feature","geometry":{geometry},"properties":{properties}}}"#)
}

#[test]
fn geojson_import_skips_bad_features_with_reasons() {
    let point = r#"{"type":"Point","coordinates":[13.4,52.5]}"#;
    let features = [
        feature(
            r#"{"type":"Point","coordinates":[52.5,193.4]}"#,
            r#"{"name":"swapped"}"#,
        ),
        feature(r#"{"type":"Point","coordinates":[13.4]}"#, r#"{"name":"short"}"#),
        feature(
            r#"{"type":"Point","coordinates":"13.4,52.5"}"#,
            r#"{"name":"text"}"#,
        ),
        feature(point, r#"{"name":["a list"]}"#),
        feature(point, r#"{"name":"obs","kind":"observation"}"#),
        feature(point, r#"{"name":"event","kind":"event"}"#),
        feature(point, r#"{"title:not a tag!":"bad tag"}"#),
        r#"{"type":"Point","coordinates":[13.4,52.5]}"#.to_owned(),
        "42".to_owned(),
        feature(
            point,
            r#"{"name":"ok","preset":"p","field:list":[1],"field:empty":null,"accuracy_m":-1,"tags":5}"#,
        ),
        format!(r#"{{"type":"Feature","id":"same","geometry":{point},"properties":{{"name":"first"}}}}"#),
        format!(r#"{{"type":"Feature","id":"same","geometry":{point},"properties":{{"name":"second"}}}}"#),
    ];
    let file = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    );
    let import = import(file.as_bytes()).unwrap();
    assert_eq!(import.items.len(), 2, "{:?}", import.skipped);
    assert_eq!(import.items[1].item.content.title.get("de"), Some("first"));
    let skipped: Vec<(String, String)> = import
        .skipped
        .iter()
        .map(|s| (s.record.clone(), s.reason.clone()))
        .collect();
    let expect = [
        ("feature 1", "outside WGS84"),
        ("feature 2", "two or more elements"),
        ("feature 3", "not a GeoJSON Feature"),
        ("feature 4", "no name"),
        ("feature 5", "preset"),
        ("feature 6", "an event cannot be imported"),
        ("feature 7", "BCP-47"),
        ("feature 8", "not a GeoJSON Feature"),
        ("feature 9", "not a GeoJSON Feature"),
    ];
    for (record, reason) in expect {
        assert!(
            skipped.iter().any(|(r, why)| r == record && why.contains(reason)),
            "no skipped {record} with `{reason}` in {skipped:#?}"
        );
    }
    for property in ["field:list", "accuracy_m", "tags"] {
        let record = format!("feature 10 property `{property}`");
        assert!(
            skipped.iter().any(|(r, _)| *r == record),
            "{record} not in {skipped:#?}"
        );
    }
    assert!(skipped
        .iter()
        .any(|(r, why)| r == "feature 12" && why.contains("appears twice")));
    assert_eq!(skipped.len(), expect.len() + 3 + 1, "{skipped:#?}");
}

#[test]
fn geojson_import_refuses_bad_files_with_typed_errors() {
    let malformed = |bytes: &[u8]| match import(bytes) {
        Err(ImportError::Malformed {
            format: "GeoJSON",
            reason,
        }) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    };
    assert!(malformed(b"{\"type\":\"Topology\"}").contains("Topology"));
    assert!(malformed(b"{\"features\":[]}").contains("no `type`"));
    assert!(malformed(b"{\"type\":\"FeatureCollection\"}").contains("features"));
    assert!(malformed(b"{\"type\":\"FeatureCollection\",\"features\":{}}").contains("array"));
    assert!(malformed(b"[1,2,3]").contains("invalid type"));
    assert!(malformed(b"{\"type\":\"FeatureCollection\",\"features\":[").contains("EOF"));
    let reprojected = br#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::25833"}},"features":[]}"#;
    assert!(malformed(reprojected).contains("EPSG::25833"));

    // Deep nesting is refused by the parser's recursion limit, not followed.
    let deep = format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","geometry":null,"properties":{{"x":{}{}}}}}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(malformed(deep.as_bytes()).contains("recursion limit"));

    assert_eq!(
        import(b"{\"type\":\"FeatureCollection\",\"features\":[]}\xff"),
        Err(ImportError::NotUtf8 { offset: 42 })
    );
    let huge = vec![b' '; 50 * 1024 * 1024];
    assert_eq!(
        import(&huge),
        Err(ImportError::TooLarge {
            size: huge.len(),
            max: MAX_IMPORT_BYTES
        })
    );
}

#[test]
fn geojson_import_reads_at_most_max_features_and_reports_the_rest() {
    let one = r#"{"type":"Feature","geometry":null,"properties":null}"#;
    let count = MAX_FEATURES + 5;
    let mut file = String::from(r#"{"type":"FeatureCollection","features":["#);
    for i in 0..count {
        if i > 0 {
            file.push(',');
        }
        file.push_str(one);
    }
    file.push_str("]}");
    let import = import(file.as_bytes()).unwrap();
    assert!(import.items.is_empty());
    assert_eq!(import.skipped.len(), MAX_FEATURES + 1);
    let last = import.skipped.last().unwrap();
    assert_eq!(last.record, format!("features {} to {}", MAX_FEATURES + 1, count));
    assert!(last.reason.contains("at most"));
}

#[test]
fn geojson_import_takes_a_single_feature_and_keys_by_id() {
    let id = ItemId::new();
    let file = format!(
        r#"{{"type":"Feature","id":"{id}","geometry":{{"type":"Point","coordinates":[13.4,52.5]}},"properties":{{"title":"Bank","description":"Schattig"}}}}"#
    );
    let import = import(file.as_bytes()).unwrap();
    assert_eq!(import.items.len(), 1, "{:?}", import.skipped);
    assert_eq!(import.items[0].source_key, format!("geojson:{id}"));
    assert_eq!(import.items[0].item.content.body.get("de"), Some("Schattig"));
}

#[test]
fn geojson_import_skips_a_feature_with_oversized_properties_before_parsing_it() {
    use quartier_standards::geojson::{MAX_FEATURE_BYTES, MAX_FEATURE_PROPERTIES_BYTES};
    let point = r#"{"type":"Point","coordinates":[13.4,52.5]}"#;
    let zeros = vec!["0"; MAX_FEATURE_PROPERTIES_BYTES / 2].join(",");
    let big = feature(point, &format!(r#"{{"name":"Groß","x":[{zeros}]}}"#));
    let fits = feature(
        point,
        &format!(
            r#"{{"name":"Passt","note":"{}"}}"#,
            "a".repeat(MAX_FEATURE_PROPERTIES_BYTES - 100)
        ),
    );
    let huge = feature(
        point,
        &format!(
            r#"{{"name":"Riesig"}},"foreign":"{}""#,
            "b".repeat(MAX_FEATURE_BYTES)
        ),
    );
    let file = format!(r#"{{"type":"FeatureCollection","features":[{big},{fits},{huge}]}}"#);
    let import = import(file.as_bytes()).unwrap();
    let names: Vec<_> = import
        .items
        .iter()
        .map(|i| i.item.content.title.best(&[]).unwrap_or(""))
        .collect();
    assert_eq!(names, ["Passt"]);
    let skipped: Vec<String> = import
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.record, s.reason))
        .collect();
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("feature 1: its properties are")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|s| s.starts_with("feature 3: the feature is")),
        "{skipped:?}"
    );
    // The depth limit still refuses the file, though features are measured as text.
    let deep = feature(
        point,
        &format!(r#"{{"x":{}{}}}"#, "[".repeat(200), "]".repeat(200)),
    );
    let file = format!(r#"{{"type":"FeatureCollection","features":[{deep}]}}"#);
    assert!(matches!(import_file(&file), Err(ImportError::Malformed { .. })));
}

fn import_file(text: &str) -> Result<quartier_standards::Import, ImportError> {
    import(text.as_bytes())
}
