//! GeoJSON (RFC 7946): places and observations out as a `FeatureCollection` of points, and a
//! `FeatureCollection` (or a single `Feature`) in as places and observations.
//!
//! Properties are flat scalar keys (`title:de`, `addr:city`, `field:water_level`) rather than
//! nested objects, because GIS tools (QGIS, uMap, geojson.io's table) show flat properties as
//! columns and nested ones as unreadable JSON text. The mapping, field by field, is in
//! `docs/standards.md` ("GeoJSON (RFC 7946)").
//!
//! Reading is bounded: the file is size- and UTF-8-checked first ([`ImportError::check_text`]),
//! nesting deeper than serde_json's recursion limit (128) fails the file as malformed (checked
//! on the text before parsing), and at
//! most [`MAX_FEATURES`] features are read (the rest are counted, not parsed, and reported).
//! Features are kept as their text until each is read, and one larger than
//! [`MAX_FEATURE_BYTES`] (or with properties larger than [`MAX_FEATURE_PROPERTIES_BYTES`]) is
//! skipped before it becomes JSON values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use geojson::{Feature, FeatureCollection, Geometry, GeometryValue, JsonObject, JsonValue};
use quartier_domain::model::{
    validate_coordinates, Address, FieldValue, Item, ItemContent, ItemDetails, LocalizedText, Location,
    NewItem, Observation, PersonId, Place, PositionSource, SpaceId,
};
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::import::{Import, ImportError, ImportedItem, Skipped};

/// Most features one import reads; a file with more is read up to here and the rest reported as
/// one skipped record. A 16 MiB file holds at most a few hundred thousand minimal features, so
/// this bounds the memory of parsed features, not the time of scanning.
pub const MAX_FEATURES: usize = 100_000;

/// Decimal places written for coordinates: 6 decimals are about 0.1 m, finer than any phone's
/// fix, and RFC 7946 §11.2 asks for no more precision than the data has.
pub const COORDINATE_DECIMALS: i32 = 6;

/// Namespace of the UUIDv5 keys of features that carry no id (`geojson:anon-<uuid>`).
const ANONYMOUS_FEATURE_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a4e_7d3b_5a90_8e21_c4d5_b6a7_9f01);

const FORMAT: &str = "GeoJSON";

/// A GeoJSON export: the file, and the items that were not written with the reason (items of
/// other kinds than place and observation, or without a position).
#[derive(Clone, Debug, PartialEq)]
pub struct GeoJsonExport {
    /// A UTF-8 `FeatureCollection`.
    pub bytes: Vec<u8>,
    pub skipped: Vec<Skipped>,
}

/// Writes places and observations as a `FeatureCollection` of `Point` features, in the order
/// given. Each feature's `id` is the item's id, so re-importing the file (here or elsewhere)
/// keys the same items.
pub fn export_geojson(items: &[Item]) -> Result<GeoJsonExport, serde_json::Error> {
    let mut features = Vec::with_capacity(items.len());
    let mut skipped = Vec::new();
    for item in items {
        let Some(location) = item.content.location else {
            skipped.push(Skipped {
                record: item.id.to_string(),
                reason: "the item has no position".into(),
            });
            continue;
        };
        if !matches!(
            item.content.details,
            ItemDetails::Place(_) | ItemDetails::Observation(_)
        ) {
            skipped.push(Skipped {
                record: item.id.to_string(),
                reason: format!(
                    "a {} is not exported as GeoJSON (only places and observations are)",
                    item.kind()
                ),
            });
            continue;
        }
        let geometry = Geometry::new_point([round(location.lon), round(location.lat)]);
        features.push(Feature {
            bbox: None,
            geometry: Some(geometry),
            id: Some(geojson::feature::Id::String(item.id.to_string())),
            properties: Some(properties_of(item, &location)),
            foreign_members: None,
        });
    }
    let collection = FeatureCollection::new(features);
    Ok(GeoJsonExport {
        bytes: serde_json::to_vec(&collection)?,
        skipped,
    })
}

fn round(degrees: f64) -> f64 {
    let scale = 10f64.powi(COORDINATE_DECIMALS);
    (degrees * scale).round() / scale
}

fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn properties_of(item: &Item, location: &Location) -> JsonObject {
    let content = &item.content;
    let mut p = JsonObject::new();
    p.insert("id".into(), item.id.to_string().into());
    p.insert("kind".into(), item.kind().as_str().into());
    if let Some(name) = content.title.best(&[]) {
        p.insert("name".into(), name.into());
    }
    for (tag, text) in content.title.iter() {
        p.insert(format!("title:{tag}"), text.into());
    }
    for (tag, text) in content.body.iter() {
        p.insert(format!("body:{tag}"), text.into());
    }
    if !content.tags.is_empty() {
        p.insert(
            "tags".into(),
            JsonValue::Array(content.tags.iter().map(|t| t.as_str().into()).collect()),
        );
    }
    match &content.details {
        ItemDetails::Place(place) => {
            if let Some(category) = &place.category {
                p.insert("category".into(), category.as_str().into());
            }
            if let Some(address) = &place.address {
                for (key, value) in [
                    ("addr:street", &address.street),
                    ("addr:postcode", &address.postal_code),
                    ("addr:city", &address.city),
                    ("addr:country", &address.country),
                ] {
                    if !value.is_empty() {
                        p.insert(key.into(), value.as_str().into());
                    }
                }
            }
            for (key, value) in &place.accessibility {
                p.insert(format!("accessibility:{key}"), value.as_str().into());
            }
        }
        ItemDetails::Observation(obs) => {
            p.insert("preset".into(), obs.preset.as_str().into());
            if let Some(category) = &obs.category {
                p.insert("category".into(), category.as_str().into());
            }
            for (name, value) in &obs.fields {
                let value = match value {
                    FieldValue::Bool(b) => JsonValue::Bool(*b),
                    // Non-finite numbers have no JSON form: they become null (and are reported
                    // as not taken when read back).
                    FieldValue::Number(n) => JsonValue::from(*n),
                    FieldValue::Text(t) => t.as_str().into(),
                };
                p.insert(format!("field:{name}"), value);
            }
        }
        _ => {}
    }
    if let Some(accuracy) = location.accuracy_m {
        p.insert("accuracy_m".into(), JsonValue::from(accuracy));
    }
    let source = match location.source {
        PositionSource::Gps => "gps",
        PositionSource::Manual => "manual",
    };
    p.insert("position_source".into(), source.into());
    if let Some(until) = content.valid_until {
        p.insert("valid_until".into(), time_text(until).into());
    }
    p.insert("created".into(), time_text(item.created_at).into());
    p.insert("updated".into(), time_text(item.updated_at).into());
    p
}

/// The largest `properties` object of a feature an import reads, as JSON text (bytes). A
/// feature with a larger one is skipped (reported): its size is measured on the text, before
/// anything of it is parsed, so a 16 MiB list of numbers never becomes half a gigabyte of JSON
/// values.
pub const MAX_FEATURE_PROPERTIES_BYTES: usize = 64 * 1024;

/// The largest feature an import reads, as JSON text (bytes): its properties, its point and
/// room to spare for other members. A larger one is skipped (reported) before it is parsed.
pub const MAX_FEATURE_BYTES: usize = 128 * 1024;

/// The top of a GeoJSON text, read without keeping more than [`MAX_FEATURES`] features and
/// without turning any member into JSON values yet: each is kept as its text (borrowed).
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    features: Option<BoundedFeatures<'a>>,
    #[serde(borrow)]
    crs: Option<&'a RawValue>,
}

/// The `features` array: the text of the first [`MAX_FEATURES`] members, the rest only counted
/// (parsed as `IgnoredAny`, which allocates nothing).
struct BoundedFeatures<'a> {
    kept: Vec<&'a RawValue>,
    beyond: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for BoundedFeatures<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bounded<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Bounded<'a> {
            type Value = BoundedFeatures<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of features")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BoundedFeatures<'a>, A::Error> {
                let mut kept = Vec::new();
                let mut beyond = 0;
                while kept.len() < MAX_FEATURES {
                    match seq.next_element::<&'de RawValue>()? {
                        Some(value) => kept.push(value),
                        None => return Ok(BoundedFeatures { kept, beyond }),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    beyond += 1;
                }
                Ok(BoundedFeatures { kept, beyond })
            }
        }
        deserializer.deserialize_seq(Bounded(std::marker::PhantomData))
    }
}

/// Only the `properties` member of a feature, as text, to measure it before parsing.
#[derive(Deserialize)]
struct PropertiesText<'a> {
    #[serde(borrow)]
    properties: Option<&'a RawValue>,
}

/// A feature's text as a JSON value, when it is within [`MAX_FEATURE_BYTES`] and its
/// properties within [`MAX_FEATURE_PROPERTIES_BYTES`].
fn bounded_feature(raw: &RawValue) -> Result<JsonValue, String> {
    let text = raw.get();
    if text.len() > MAX_FEATURE_BYTES {
        return Err(format!(
            "the feature is {} bytes of JSON; a feature is read up to {MAX_FEATURE_BYTES} bytes",
            text.len()
        ));
    }
    if let Ok(PropertiesText {
        properties: Some(properties),
    }) = serde_json::from_str::<PropertiesText<'_>>(text)
    {
        let size = properties.get().len();
        if size > MAX_FEATURE_PROPERTIES_BYTES {
            return Err(format!(
                "its properties are {size} bytes of JSON; a feature's properties are read up to \
                 {MAX_FEATURE_PROPERTIES_BYTES} bytes"
            ));
        }
    }
    serde_json::from_str(text).map_err(|e| format!("not a GeoJSON Feature: {e}"))
}

/// serde_json's recursion limit: a file nesting deeper is refused.
const MAX_JSON_DEPTH: usize = 128;

/// Whether arrays and objects in `text` nest deeper than `max` (strings skipped), in one pass
/// without allocating.
fn nests_deeper_than(text: &str, max: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The old `crs` member, only as far as its name.
#[derive(Deserialize)]
struct Crs {
    properties: Option<CrsProperties>,
}

#[derive(Deserialize)]
struct CrsProperties {
    name: Option<String>,
}

/// Reads a GeoJSON `FeatureCollection` (or one `Feature`) into new places and observations for
/// `space`, written by `author`. Titles and descriptions without a language (`name`, `title`,
/// `description`) are taken as `language` (a BCP-47 tag).
///
/// A `Point` feature becomes an observation when its `kind` is `observation`, or it has a
/// `preset` or any `field:*` property; otherwise a place. Each is keyed `geojson:<feature id>`
/// (the feature's `id`, else its `id` property); a feature without either is keyed
/// `geojson:anon-<UUIDv5 of its rounded position and name>`, so an unchanged feature keeps its
/// key but a moved or renamed one becomes a new item. Everything that cannot be taken (another
/// geometry, no name, coordinates out of range, a value of the wrong type) is in
/// [`Import::skipped`] with the reason.
pub fn import_geojson(
    bytes: &[u8],
    space: SpaceId,
    author: PersonId,
    language: &str,
) -> Result<Import, ImportError> {
    let text = ImportError::check_text(bytes)?;
    let malformed = |reason: String| ImportError::Malformed {
        format: FORMAT,
        reason,
    };
    // Features are kept as text (which serde_json checks without a depth limit) until each is
    // read, so the depth limit of a parse into values is checked on the whole file first.
    if nests_deeper_than(text, MAX_JSON_DEPTH) {
        return Err(malformed(format!(
            "the JSON nests deeper than {MAX_JSON_DEPTH} levels (the recursion limit of the parser)"
        )));
    }
    let top: Top = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    if let Some(crs) = top.crs {
        check_crs(crs).map_err(malformed)?;
    }
    let kind: Option<String> = top.kind.and_then(|k| serde_json::from_str(k.get()).ok());
    let features = match (kind.as_deref(), top.features) {
        (Some("FeatureCollection"), Some(features)) => features,
        (Some("FeatureCollection"), None) => {
            return Err(malformed("the FeatureCollection has no `features` array".into()))
        }
        (Some("Feature"), _) => {
            let value: &RawValue = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
            BoundedFeatures {
                kept: vec![value],
                beyond: 0,
            }
        }
        (Some(other), _) => {
            return Err(malformed(format!(
                "the top-level object is a `{}`; expected a FeatureCollection or a Feature",
                other.chars().take(40).collect::<String>()
            )))
        }
        (None, _) => {
            return Err(malformed(
                "the top-level object has no `type`; expected a FeatureCollection".into(),
            ))
        }
    };

    let mut import = Import::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (index, value) in features.kept.into_iter().enumerate() {
        let record = format!("feature {}", index + 1);
        match bounded_feature(value).and_then(|value| read_feature(value, space, author, language, &record)) {
            Ok((imported, not_taken)) => {
                if seen.insert(imported.source_key.clone()) {
                    import.items.push(imported);
                    import.skipped.extend(not_taken);
                } else {
                    import.skipped.push(Skipped {
                        record,
                        reason: format!(
                            "the key `{}` appears twice; the first feature with it was taken",
                            imported.source_key
                        ),
                    });
                }
            }
            Err(reason) => import.skipped.push(Skipped { record, reason }),
        }
    }
    if features.beyond > 0 {
        import.skipped.push(Skipped {
            record: format!(
                "features {} to {}",
                MAX_FEATURES + 1,
                MAX_FEATURES + features.beyond
            ),
            reason: format!("an import reads at most {MAX_FEATURES} features; these were not read"),
        });
    }
    Ok(import)
}

/// Old GeoJSON (2008) allowed a `crs` member; RFC 7946 removed it and fixed WGS84. A file that
/// names another system would put points in the wrong place, so it is refused whole.
fn check_crs(crs: &RawValue) -> Result<(), String> {
    let name = serde_json::from_str::<Crs>(crs.get())
        .ok()
        .and_then(|c| c.properties)
        .and_then(|p| p.name)
        .unwrap_or_default();
    let name = name.as_str();
    let wgs84 = [
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "urn:ogc:def:crs:OGC::CRS84",
        "EPSG:4326",
    ];
    if wgs84.iter().any(|w| name.eq_ignore_ascii_case(w)) || name.ends_with("EPSG::4326") {
        Ok(())
    } else {
        Err(format!(
            "the coordinates are in the reference system `{}`; RFC 7946 GeoJSON is in WGS84 \
             longitude/latitude (reproject, e.g. to EPSG:4326, before importing)",
            name.chars().take(60).collect::<String>()
        ))
    }
}

fn read_feature(
    value: JsonValue,
    space: SpaceId,
    author: PersonId,
    language: &str,
    record: &str,
) -> Result<(ImportedItem, Vec<Skipped>), String> {
    let feature: Feature =
        serde_json::from_value(value).map_err(|e| format!("not a GeoJSON Feature: {e}"))?;
    let properties = feature.properties.unwrap_or_default();
    let (lon, lat) = match feature.geometry.map(|g| g.value) {
        Some(GeometryValue::Point { coordinates }) => match coordinates.as_slice() {
            [lon, lat, ..] => (*lon, *lat),
            _ => return Err("the point has fewer than two coordinates".into()),
        },
        Some(other) => {
            return Err(format!(
                "a {} cannot be imported; only Point features become places or observations",
                other.type_name()
            ))
        }
        None => return Err("the feature has no geometry".into()),
    };
    validate_coordinates(lat, lon).map_err(|_| {
        format!(
            "coordinates [{lon}, {lat}] are outside WGS84 (GeoJSON is [longitude, latitude], \
             longitude within -180..180, latitude within -90..90)"
        )
    })?;
    let mut not_taken = Vec::new();
    let mut notes = Notes {
        record,
        skipped: &mut not_taken,
    };
    let key_id = match feature.id {
        Some(geojson::feature::Id::String(s)) if !s.trim().is_empty() => Some(s),
        Some(geojson::feature::Id::Number(n)) => Some(n.to_string()),
        _ => match properties.get("id") {
            Some(JsonValue::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(JsonValue::Number(n)) => Some(n.to_string()),
            _ => None,
        },
    };

    let mut title = LocalizedText::new();
    let mut body = LocalizedText::new();
    for (key, value) in &properties {
        if let Some(tag) = key.strip_prefix("title:") {
            if let Some(text) = notes.text(key, value) {
                title.set(tag, text);
            }
        } else if let Some(tag) = key.strip_prefix("body:") {
            if let Some(text) = notes.text(key, value) {
                body.set(tag, text);
            }
        }
    }
    if title.is_empty() {
        for key in ["name", "title", "Name", "NAME"] {
            if let Some(value) = properties.get(key) {
                if let Some(text) = notes.text(key, value) {
                    if !text.trim().is_empty() {
                        title.set(language, text);
                        break;
                    }
                }
            }
        }
    }
    if title.is_empty() {
        return Err("the feature has no name (properties `title:<language>`, `name` or `title`)".into());
    }
    if body.is_empty() {
        if let Some(value) = properties.get("description") {
            if let Some(text) = notes.text("description", value) {
                body.set(language, text);
            }
        }
    }

    let kind = properties.get("kind").and_then(JsonValue::as_str);
    let is_observation = kind == Some("observation")
        || properties.contains_key("preset")
        || properties.keys().any(|k| k.starts_with("field:"));
    if let Some(kind) = kind {
        if !matches!(kind, "place" | "observation") && quartier_domain::model::ItemKind::parse(kind).is_ok() {
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Err(format!(
                "{article} {kind} cannot be imported from GeoJSON; only places and observations can"
            ));
        }
    }
    let category = properties
        .get("category")
        .and_then(|v| notes.text("category", v))
        .filter(|c| !c.trim().is_empty());

    let details = if is_observation {
        let preset = properties
            .get("preset")
            .and_then(|v| notes.text("preset", v))
            .filter(|p| !p.trim().is_empty())
            .ok_or("an observation needs the survey preset it follows (property `preset`)")?;
        let mut fields = BTreeMap::new();
        for (key, value) in &properties {
            let Some(name) = key.strip_prefix("field:") else {
                continue;
            };
            let value = match value {
                JsonValue::Bool(b) => FieldValue::Bool(*b),
                JsonValue::Number(n) => match n.as_f64() {
                    Some(n) => FieldValue::Number(n),
                    None => {
                        notes.not_taken(key, "the number is out of range");
                        continue;
                    }
                },
                JsonValue::String(s) => FieldValue::Text(s.clone()),
                // GIS tools write null for an empty attribute: nothing to take.
                JsonValue::Null => continue,
                _ => {
                    notes.not_taken(key, "a form field is text, a number or true/false");
                    continue;
                }
            };
            fields.insert(name.to_owned(), value);
        }
        ItemDetails::Observation(Observation {
            preset,
            category,
            fields,
        })
    } else {
        let mut address = Address::default();
        for (key, slot) in [
            ("addr:street", &mut address.street),
            ("addr:postcode", &mut address.postal_code),
            ("addr:city", &mut address.city),
            ("addr:country", &mut address.country),
        ] {
            if let Some(value) = properties.get(key) {
                if let Some(text) = notes.text(key, value) {
                    *slot = text;
                }
            }
        }
        let mut accessibility = BTreeMap::new();
        for (key, value) in &properties {
            // OpenStreetMap's `wheelchair=yes|limited|no`, which GIS layers drawn from OSM keep.
            let fact = if key == "wheelchair" {
                Some("wheelchair")
            } else {
                key.strip_prefix("accessibility:")
            };
            if let Some(fact) = fact {
                if value.is_null() {
                    continue;
                }
                let value = match value {
                    JsonValue::String(s) => s.clone(),
                    JsonValue::Bool(true) => "yes".into(),
                    JsonValue::Bool(false) => "no".into(),
                    _ => {
                        notes.not_taken(key, "an accessibility fact is text or true/false");
                        continue;
                    }
                };
                accessibility.insert(fact.to_owned(), value);
            }
        }
        ItemDetails::Place(Place {
            category,
            address: (address != Address::default()).then_some(address),
            accessibility,
        })
    };

    let mut location = Location::new(lat, lon);
    match properties.get("position_source").and_then(JsonValue::as_str) {
        Some("gps") => location.source = PositionSource::Gps,
        Some("manual") | None => {}
        Some(_) => notes.not_taken("position_source", "expected `gps` or `manual`"),
    }
    if let Some(value) = properties.get("accuracy_m") {
        match value.as_f64() {
            Some(m) if m.is_finite() && m >= 0.0 => location.accuracy_m = Some(m),
            _ => notes.not_taken("accuracy_m", "expected a distance in metres"),
        }
    }

    let mut tags = BTreeSet::new();
    match properties.get("tags") {
        Some(JsonValue::Array(values)) => {
            for value in values {
                match value.as_str() {
                    Some(tag) if !tag.trim().is_empty() => {
                        tags.insert(tag.trim().to_owned());
                    }
                    _ => notes.not_taken("tags", "a tag is a non-empty text"),
                }
            }
        }
        Some(JsonValue::String(list)) => {
            tags.extend(
                list.split([';', ','])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            );
        }
        Some(JsonValue::Null) | None => {}
        Some(_) => notes.not_taken("tags", "expected a list of texts"),
    }

    let mut content = ItemContent::new(title, details);
    content.body = body;
    content.tags = tags;
    content.location = Some(location);
    if let Some(value) = properties.get("valid_until") {
        match value.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
            Some(until) => content.valid_until = Some(until.with_timezone(&Utc)),
            None => notes.not_taken("valid_until", "expected an RFC 3339 date-time"),
        }
    }
    content
        .validate()
        .map_err(|e| format!("the item would be invalid: {e}"))?;

    let source_key = match key_id {
        Some(id) => format!("geojson:{id}"),
        None => {
            let name = content.title.best(&[]).unwrap_or("");
            let seed = format!("{:.6},{:.6}|{name}", lon, lat);
            format!(
                "geojson:anon-{}",
                Uuid::new_v5(&ANONYMOUS_FEATURE_NAMESPACE, seed.as_bytes())
            )
        }
    };
    Ok((
        ImportedItem {
            source_key,
            item: NewItem::new(space, author, content),
        },
        not_taken,
    ))
}

/// Collects properties that were not taken while the feature itself was.
struct Notes<'a> {
    record: &'a str,
    skipped: &'a mut Vec<Skipped>,
}

impl Notes<'_> {
    fn not_taken(&mut self, key: &str, why: &str) {
        self.skipped.push(Skipped {
            record: format!(
                "{} property `{}`",
                self.record,
                key.chars().take(60).collect::<String>()
            ),
            reason: format!("not taken: {why}"),
        });
    }

    /// A property that must be text; numbers are taken as their decimal text (spreadsheets and
    /// GIS tools turn postcodes into numbers), anything else is noted and dropped.
    fn text(&mut self, key: &str, value: &JsonValue) -> Option<String> {
        match value {
            JsonValue::String(s) => Some(s.clone()),
            JsonValue::Number(n) => Some(n.to_string()),
            JsonValue::Null => None,
            _ => {
                self.not_taken(key, "expected text");
                None
            }
        }
    }
}
