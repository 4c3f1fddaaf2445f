//! Köln: districts with approximate centres, how spread out their content is, and some of their
//! streets. Positions are scattered around the districts (clustered, as real content is) with a
//! thin uniform layer over the whole city.

use rand::Rng;

/// The city centre (Dom / Altstadt), the middle of the scatter.
pub const CENTRE: (f64, f64) = (50.9375, 6.9603);
/// Radius of the thin uniform layer, in metres.
pub const SCATTER_RADIUS_M: f64 = 8_000.0;
/// Share of positions drawn uniformly over the city rather than around a district, in percent.
pub const UNIFORM_PERCENT: u32 = 10;

const METRES_PER_DEGREE: f64 = 111_320.0;

/// One district (Stadtteil or Veedel).
pub struct District {
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// Relative share of content.
    pub weight: u32,
    /// Standard deviation of the scatter around the centre, metres.
    pub spread_m: f64,
    pub postal_code: &'static str,
    pub streets: &'static [&'static str],
}

pub const DISTRICTS: &[District] = &[
    District {
        name: "Ehrenfeld",
        lat: 50.9500,
        lon: 6.9170,
        weight: 14,
        spread_m: 700.0,
        postal_code: "50823",
        streets: &[
            "Venloer Straße",
            "Körnerstraße",
            "Subbelrather Straße",
            "Keplerstraße",
            "Leyendeckerstraße",
        ],
    },
    District {
        name: "Nippes",
        lat: 50.9650,
        lon: 6.9530,
        weight: 12,
        spread_m: 650.0,
        postal_code: "50733",
        streets: &[
            "Neusser Straße",
            "Kempener Straße",
            "Wilhelmplatz",
            "Florastraße",
            "Sechzigstraße",
        ],
    },
    District {
        name: "Kalk",
        lat: 50.9420,
        lon: 7.0030,
        weight: 11,
        spread_m: 600.0,
        postal_code: "51103",
        streets: &[
            "Kalker Hauptstraße",
            "Vietorstraße",
            "Taunusstraße",
            "Remscheider Straße",
        ],
    },
    District {
        name: "Deutz",
        lat: 50.9367,
        lon: 6.9750,
        weight: 7,
        spread_m: 500.0,
        postal_code: "50679",
        streets: &[
            "Deutzer Freiheit",
            "Siegburger Straße",
            "Mindener Straße",
            "Gotenring",
        ],
    },
    District {
        name: "Sülz",
        lat: 50.9220,
        lon: 6.9200,
        weight: 10,
        spread_m: 600.0,
        postal_code: "50937",
        streets: &[
            "Berrenrather Straße",
            "Zülpicher Straße",
            "Sülzburgstraße",
            "Luxemburger Straße",
        ],
    },
    District {
        name: "Altstadt-Nord",
        lat: 50.9413,
        lon: 6.9583,
        weight: 8,
        spread_m: 450.0,
        postal_code: "50667",
        streets: &["Hohe Straße", "Schildergasse", "Eigelstein", "Breite Straße"],
    },
    District {
        name: "Altstadt-Süd",
        lat: 50.9300,
        lon: 6.9510,
        weight: 6,
        spread_m: 450.0,
        postal_code: "50676",
        streets: &["Severinstraße", "Waidmarkt", "Mauritiussteinweg", "Bonner Straße"],
    },
    District {
        name: "Neustadt-Nord",
        lat: 50.9430,
        lon: 6.9380,
        weight: 6,
        spread_m: 500.0,
        postal_code: "50672",
        streets: &[
            "Brüsseler Platz",
            "Aachener Straße",
            "Hansaring",
            "Venloer Straße",
        ],
    },
    District {
        name: "Neustadt-Süd",
        lat: 50.9250,
        lon: 6.9400,
        weight: 6,
        spread_m: 500.0,
        postal_code: "50674",
        streets: &[
            "Zülpicher Platz",
            "Chlodwigplatz",
            "Volksgartenstraße",
            "Kyffhäuserstraße",
        ],
    },
    District {
        name: "Mülheim",
        lat: 50.9650,
        lon: 7.0050,
        weight: 8,
        spread_m: 700.0,
        postal_code: "51063",
        streets: &[
            "Frankfurter Straße",
            "Wiener Platz",
            "Keupstraße",
            "Berliner Straße",
        ],
    },
    District {
        name: "Lindenthal",
        lat: 50.9330,
        lon: 6.9050,
        weight: 4,
        spread_m: 700.0,
        postal_code: "50931",
        streets: &["Dürener Straße", "Kerpener Straße", "Gleueler Straße"],
    },
    District {
        name: "Bayenthal",
        lat: 50.9100,
        lon: 6.9650,
        weight: 3,
        spread_m: 600.0,
        postal_code: "50968",
        streets: &["Goltsteinstraße", "Bonner Straße", "Schönhauser Straße"],
    },
    District {
        name: "Zollstock",
        lat: 50.9070,
        lon: 6.9400,
        weight: 3,
        spread_m: 600.0,
        postal_code: "50969",
        streets: &["Höninger Weg", "Vorgebirgstraße", "Gottesweg"],
    },
    District {
        name: "Bickendorf",
        lat: 50.9600,
        lon: 6.8900,
        weight: 3,
        spread_m: 600.0,
        postal_code: "50827",
        streets: &["Rochusstraße", "Äußere Kanalstraße", "Erlenweg"],
    },
    District {
        name: "Riehl",
        lat: 50.9600,
        lon: 6.9750,
        weight: 2,
        spread_m: 500.0,
        postal_code: "50735",
        streets: &["Riehler Straße", "Boltensternstraße", "Stammheimer Straße"],
    },
    District {
        name: "Vingst",
        lat: 50.9350,
        lon: 7.0300,
        weight: 3,
        spread_m: 600.0,
        postal_code: "51107",
        streets: &["Olpener Straße", "Ostheimer Straße", "Burgstraße"],
    },
    District {
        name: "Porz",
        lat: 50.8850,
        lon: 7.0600,
        weight: 2,
        spread_m: 900.0,
        postal_code: "51143",
        streets: &["Hauptstraße", "Josefstraße", "Friedrich-Ebert-Ufer"],
    },
    District {
        name: "Chorweiler",
        lat: 51.0260,
        lon: 6.8970,
        weight: 2,
        spread_m: 800.0,
        postal_code: "50765",
        streets: &["Liverpooler Platz", "Pariser Platz", "Weichselring"],
    },
];

/// Picks a district by weight.
pub fn pick_district(rng: &mut impl Rng) -> &'static District {
    let total: u32 = DISTRICTS.iter().map(|d| d.weight).sum();
    let mut n = rng.random_range(0..total);
    for d in DISTRICTS {
        if n < d.weight {
            return d;
        }
        n -= d.weight;
    }
    &DISTRICTS[0]
}

/// A position for content in `district`: clustered around its centre, or (sometimes) anywhere
/// within [`SCATTER_RADIUS_M`] of the city centre.
pub fn position(rng: &mut impl Rng, district: &District) -> (f64, f64) {
    if rng.random_range(0..100) < UNIFORM_PERCENT {
        let r = SCATTER_RADIUS_M * rng.random::<f64>().sqrt();
        let angle = rng.random::<f64>() * std::f64::consts::TAU;
        return offset(CENTRE, r * angle.cos(), r * angle.sin());
    }
    let (dn, de) = gaussian_pair(rng);
    offset(
        (district.lat, district.lon),
        dn * district.spread_m,
        de * district.spread_m,
    )
}

/// A box of about `width_m` × `height_m` metres centred on a district (with some jitter), as a
/// phone's map shows a district: (south, west, north, east).
pub fn district_box(rng: &mut impl Rng, width_m: f64, height_m: f64) -> (f64, f64, f64, f64) {
    let d = pick_district(rng);
    let jitter_n = (rng.random::<f64>() - 0.5) * d.spread_m;
    let jitter_e = (rng.random::<f64>() - 0.5) * d.spread_m;
    let (lat, lon) = offset((d.lat, d.lon), jitter_n, jitter_e);
    let (south, west) = offset((lat, lon), -height_m / 2.0, -width_m / 2.0);
    let (north, east) = offset((lat, lon), height_m / 2.0, width_m / 2.0);
    (south, west, north, east)
}

/// Moves a point by metres north and east.
pub fn offset((lat, lon): (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    let dlat = north_m / METRES_PER_DEGREE;
    let dlon = east_m / (METRES_PER_DEGREE * lat.to_radians().cos());
    (lat + dlat, lon + dlon)
}

/// Two independent standard normal values (Box–Muller).
fn gaussian_pair(rng: &mut impl Rng) -> (f64, f64) {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    (r * t.cos(), r * t.sin())
}
