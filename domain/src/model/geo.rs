//! Positions on the earth (WGS84) and the distance between them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Mean earth radius in metres (IUGG), for haversine distances.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// How a position was obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    /// From the device's GNSS receiver.
    Gps,
    /// Placed by hand on a map or typed in.
    #[default]
    Manual,
}

/// A WGS84 position with an optional accuracy radius.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    /// Radius of the 68 % confidence circle, in metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub accuracy_m: Option<f64>,
    #[serde(default)]
    pub source: PositionSource,
}

impl Location {
    /// A manually placed position.
    pub fn new(lat: f64, lon: f64) -> Self {
        Self {
            lat,
            lon,
            accuracy_m: None,
            source: PositionSource::Manual,
        }
    }

    /// A GPS fix with its accuracy.
    pub fn gps(lat: f64, lon: f64, accuracy_m: f64) -> Self {
        Self {
            lat,
            lon,
            accuracy_m: Some(accuracy_m),
            source: PositionSource::Gps,
        }
    }

    pub fn validate(&self) -> Result<()> {
        validate_coordinates(self.lat, self.lon)?;
        if let Some(acc) = self.accuracy_m {
            if !acc.is_finite() || acc < 0.0 {
                return Err(Error::invalid(
                    "location accuracy",
                    format!("{acc} is not a distance in metres"),
                ));
            }
        }
        Ok(())
    }

    /// Great-circle distance in metres.
    pub fn distance_m(&self, other: &Location) -> f64 {
        haversine_m(self.lat, self.lon, other.lat, other.lon)
    }
}

/// Rejects non-finite or out-of-range coordinates.
pub fn validate_coordinates(lat: f64, lon: f64) -> Result<()> {
    if lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)
    {
        Ok(())
    } else {
        Err(Error::InvalidCoordinates { lat, lon })
    }
}

/// Great-circle distance between two WGS84 points, in metres.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}
