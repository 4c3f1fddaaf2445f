//! Map queries through the R*Tree: items in a viewport, and items within a radius of a point
//! ordered by distance.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::{clamp_limit, item_from_row, Filter, Limit};
use crate::error::{Error, Result};
use crate::model::{
    haversine_m, validate_coordinates, Item, ItemId, ItemKind, LocalizedText, Location, SpaceId, Status,
    Viewer,
};

/// The earth radius [`haversine_m`] measures with (`model::geo::EARTH_RADIUS_M`).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Items whose position lies in a bounding box. A box whose west edge is east of its east
/// edge crosses the antimeridian.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ViewportQuery {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    pub viewer: Viewer,
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
    /// Kinds to include; empty = every kind but comments.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub kinds: Vec<ItemKind>,
    #[cfg_attr(feature = "uniffi", uniffi(default = 500))]
    pub limit: Limit,
    /// The moment validity is judged at; `None` = now.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub at: Option<DateTime<Utc>>,
}

/// Items within `radius_m` metres of a point, nearest first.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RadiusQuery {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    pub viewer: Viewer,
    pub center: Location,
    pub radius_m: f64,
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub kinds: Vec<ItemKind>,
    #[cfg_attr(feature = "uniffi", uniffi(default = 100))]
    pub limit: Limit,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub at: Option<DateTime<Utc>>,
}

/// What a map shows of an item: enough to place and label it, read without decoding the item
/// (`Store::map_pins`); the app opens the item itself (`item_detail`) when it is tapped.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MapPin {
    pub id: ItemId,
    pub kind: ItemKind,
    /// Every language of the title; the app picks the person's.
    pub title: LocalizedText,
    /// The item's exact position.
    pub lat: f64,
    pub lon: f64,
}

/// An item with its distance from the query point.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NearbyItem {
    pub item: Item,
    pub distance_m: f64,
}

pub(crate) fn viewport(conn: &Connection, q: &ViewportQuery) -> Result<Vec<Item>> {
    in_viewport::<Item>(conn, q)
}

pub(crate) fn pins(conn: &Connection, q: &ViewportQuery) -> Result<Vec<MapPin>> {
    in_viewport::<MapPin>(conn, q)
}

fn in_viewport<T: BoxRow>(conn: &Connection, q: &ViewportQuery) -> Result<Vec<T>> {
    validate_coordinates(q.south, q.west)?;
    validate_coordinates(q.north, q.east)?;
    if q.south > q.north {
        return Err(Error::invalid(
            "viewport",
            "south edge is north of the north edge",
        ));
    }
    let limit = clamp_limit(q.limit);
    let boxes = if q.west <= q.east {
        vec![(q.west, q.east)]
    } else {
        vec![(q.west, 180.0), (-180.0, q.east)]
    };
    let mut out = Vec::new();
    for (west, east) in boxes {
        let remaining = limit - out.len() as i64;
        if remaining <= 0 {
            break;
        }
        let rows = in_box::<T>(
            conn,
            q.space,
            &q.viewer,
            &q.kinds,
            q.at,
            (q.south, west, q.north, east),
            Some(remaining),
        )?;
        out.extend(rows.into_iter().map(|(row, _, _)| row));
    }
    Ok(out)
}

pub(crate) fn near(conn: &Connection, q: &RadiusQuery) -> Result<Vec<NearbyItem>> {
    q.center.validate()?;
    if !q.radius_m.is_finite() || q.radius_m <= 0.0 || q.radius_m > 100_000.0 {
        return Err(Error::invalid("radius", "must be more than 0 and at most 100 km"));
    }
    // The box around the circle on the sphere `haversine_m` measures on (with a hair of slack
    // for rounding): `angle` is the radius seen from the earth's centre; the circle spans
    // asin(sin(angle) / cos(lat)) of longitude either side, every longitude once it reaches a pole.
    let angle = q.radius_m / EARTH_RADIUS_M * (1.0 + 1e-9);
    let dlat = angle.to_degrees();
    let reach = angle.sin() / q.center.lat.to_radians().cos();
    let dlon = if reach.is_finite() && reach < 1.0 {
        reach.asin().to_degrees()
    } else {
        180.0
    };
    let south = (q.center.lat - dlat).max(-90.0);
    let north = (q.center.lat + dlat).min(90.0);
    let mut boxes = Vec::new();
    let (west, east) = (q.center.lon - dlon, q.center.lon + dlon);
    if dlon >= 180.0 {
        // Two halves would meet (and report items on that meridian twice).
        boxes.push((-180.0, 180.0));
    } else if west < -180.0 {
        boxes.push((west + 360.0, 180.0));
        boxes.push((-180.0, east));
    } else if east > 180.0 {
        boxes.push((west, 180.0));
        boxes.push((-180.0, east - 360.0));
    } else {
        boxes.push((west, east));
    }
    let mut found = Vec::new();
    for (w, e) in boxes {
        for (item, lat, lon) in in_box::<Item>(
            conn,
            q.space,
            &q.viewer,
            &q.kinds,
            q.at,
            (south, w, north, e),
            None,
        )? {
            let distance_m = haversine_m(q.center.lat, q.center.lon, lat, lon);
            if distance_m <= q.radius_m {
                found.push(NearbyItem { item, distance_m });
            }
        }
    }
    found.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
    found.truncate(clamp_limit(q.limit) as usize);
    Ok(found)
}

/// What a box query returns per item: whole items, or pins read from the light rows alone.
trait BoxRow: Sized {
    /// Columns after the item's exact latitude and longitude, and the joins they need.
    const COLUMNS: &'static str;
    const JOINS: &'static str;
    /// Reads the row; columns 0 and 1 are the position.
    fn read(row: &rusqlite::Row<'_>) -> Result<Self>;
}

impl BoxRow for Item {
    const COLUMNS: &'static str = super::ITEM_COLUMNS;
    const JOINS: &'static str = "CROSS JOIN item_json j ON j.id = i.id";
    fn read(row: &rusqlite::Row<'_>) -> Result<Self> {
        item_from_row(row, 2)
    }
}

impl BoxRow for MapPin {
    const COLUMNS: &'static str = "i.item_id, i.kind, i.title";
    const JOINS: &'static str = "";
    fn read(row: &rusqlite::Row<'_>) -> Result<Self> {
        let corrupt = |what: &str| Error::Corrupt(format!("map pin: {what}"));
        let id: String = row.get(2)?;
        let kind: String = row.get(3)?;
        let title: String = row.get(4)?;
        Ok(MapPin {
            id: id.parse().map_err(|_| corrupt("item id"))?,
            kind: ItemKind::parse(&kind).map_err(|_| corrupt("kind"))?,
            title: serde_json::from_str(&title).map_err(|_| corrupt("title"))?,
            lat: row.get(0)?,
            lon: row.get(1)?,
        })
    }
}

/// Visible, current items in one non-wrapping box, with their coordinates.
fn in_box<T: BoxRow>(
    conn: &Connection,
    space: SpaceId,
    viewer: &Viewer,
    kinds: &[ItemKind],
    at: Option<DateTime<Utc>>,
    (south, west, north, east): (f64, f64, f64, f64),
    limit: Option<i64>,
) -> Result<Vec<(T, f64, f64)>> {
    let mut f = Filter::default();
    f.and(
        "g.min_lat <= ? AND g.max_lat >= ? AND g.min_lon <= ? AND g.max_lon >= ?",
        [
            SqlValue::Real(north),
            SqlValue::Real(south),
            SqlValue::Real(east),
            SqlValue::Real(west),
        ],
    );
    f.visible_in(space, viewer)
        .kinds(kinds)
        .effective_status_in(&[Status::Published], at.unwrap_or_else(Utc::now));
    // CROSS JOIN keeps the R*Tree as the outer loop: with a plain JOIN SQLite's planner (no
    // statistics) walks every item of the space by index and probes the R*Tree for each, which
    // is ~30 ms for a district-sized box and over 1 s for a sparse one at 100 000 items.
    // The R*Tree holds 32-bit floats rounded outwards, so it may return points just outside the
    // box: the item's own exact position (`items.lat`, `items.lon`) decides, in SQL, before
    // anything is decoded.
    f.and(
        "i.lat BETWEEN ? AND ? AND i.lon BETWEEN ? AND ?",
        [
            SqlValue::Real(south),
            SqlValue::Real(north),
            SqlValue::Real(west),
            SqlValue::Real(east),
        ],
    );
    f.push_param(SqlValue::Integer(limit.unwrap_or(-1)));
    let sql = format!(
        "SELECT i.lat, i.lon, {} FROM items_geo g CROSS JOIN items i ON i.id = g.id {} WHERE {} LIMIT ?",
        T::COLUMNS,
        T::JOINS,
        f.sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(f.params())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push((T::read(row)?, row.get(0)?, row.get(1)?));
    }
    Ok(out)
}
