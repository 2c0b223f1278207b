//! The demo shop's products, generated deterministically from tables of brands, model lines and
//! variants, so the seeded database, the product pictures and the tests all see the same
//! catalogue without a data file to ship or keep in step.
//!
//! A model line (`Orbit 14`) is sold in storage or memory variants, each a product of its own
//! with its own price; lines named with a generation number (`Orbit {}`) are also still sold in
//! their previous generation, a little cheaper and a little weaker. Every product gets a score
//! from 0 to 100 for each preference of the guided-shopping flow in its category, computed from
//! its specs, and "fits" a preference when the score reaches [`FITS`].

use std::sync::LazyLock;

/// One product as the shop page and the flows see it.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Product {
    /// E.g. `ph-orbit-14`, `lt-kite-book-14`, `ep-kite-buds-6-pro`, `ac-orbit-leather-phone-case`.
    pub id: String,
    /// The model line this product is a variant of (the id of its base variant): searches show
    /// one variant per model, not the same phone three times.
    pub model: String,
    /// The brand's model name, language-neutral (`Orbit 14 12/512 GB`).
    pub name: String,
    pub brand: String,
    /// `phones`, `laptops`, `earphones` or `accessories`.
    pub category: String,
    /// In yuan.
    pub price: f64,
    /// A short spec line with units, e.g. `6.6″ OLED 120 Hz · 50 MP OIS · 5500 mAh · 90 W`.
    pub description: String,
    /// `/demo/img/<id>.jpg` (an SVG placeholder, see `image_svg`).
    pub image: String,
    /// `/demo/product/<id>`.
    pub url: String,
    /// The guided-shopping preferences the product fits (`camera`, `portable`, `anc`, …).
    pub tags: Vec<String>,
    pub colours: Vec<String>,
}

/// The silhouette drawn on a product's placeholder picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Phone,
    Foldable,
    Laptop,
    Buds,
    Headphones,
    Accessory,
}

/// A product with what only the catalogue needs: its scores and its picture's shape.
#[derive(Debug, Clone)]
pub(crate) struct Seed {
    pub product: Product,
    pub shape: Shape,
    /// `(preference, score 0–100)` for every preference of the product's category.
    pub scores: Vec<(&'static str, u32)>,
}

/// The score from which a product fits a preference.
pub const FITS: u32 = 50;

/// The categories the guided-shopping flow offers, with the preference ids of its choice nodes.
pub const PREFERENCES: &[(&str, &[&str])] = &[
    ("phones", &["camera", "battery", "value"]),
    ("laptops", &["performance", "portable", "value"]),
    ("earphones", &["anc", "sport", "value"]),
    ("accessories", &[]),
];

/// The brands, with the colour of their pictures and the colours their devices come in.
const BRANDS: &[(&str, &str, &[&str])] = &[
    ("Orbit", "#2563eb", &["Midnight", "Glacier Blue", "Silver"]),
    ("Kite", "#ea580c", &["Black", "Sunset Orange", "Mint"]),
    ("Lumen", "#7c3aed", &["Graphite", "Lavender", "Pearl White"]),
    (
        "Nova",
        "#059669",
        &["Obsidian", "Jade Green", "Cloud White"],
    ),
    ("Pulse", "#dc2626", &["Carbon Black", "Racing Red"]),
    ("Aster", "#db2777", &["Ink", "Rose", "Sand"]),
];

/// The colour of a brand's pictures (grey for an unknown brand).
pub(crate) fn brand_colour(brand: &str) -> &'static str {
    BRANDS
        .iter()
        .find(|(name, _, _)| *name == brand)
        .map_or("#475569", |(_, colour, _)| colour)
}

fn brand_colours(brand: &str) -> Vec<String> {
    BRANDS
        .iter()
        .find(|(name, _, _)| *name == brand)
        .map(|(_, _, colours)| colours.iter().map(|c| (*c).to_owned()).collect())
        .unwrap_or_default()
}

/// Every product, generated once.
pub(crate) fn all() -> &'static [Seed] {
    static ALL: LazyLock<Vec<Seed>> = LazyLock::new(generate);
    &ALL
}

/// The product with this id, if the catalogue has it.
pub(crate) fn by_id(id: &str) -> Option<&'static Seed> {
    all().iter().find(|seed| seed.product.id == id)
}

fn generate() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for line in PHONES {
        phone_line(line, line.generation, 0, &mut seeds);
        if line.name.contains("{}") {
            phone_line(line, line.generation - 1, 1, &mut seeds);
        }
    }
    for line in LAPTOPS {
        laptop_line(line, &mut seeds);
    }
    for line in EARPHONES {
        earphone_line(line, line.generation, 0, &mut seeds);
        if line.name.contains("{}") {
            earphone_line(line, line.generation - 1, 1, &mut seeds);
        }
    }
    for (brand, _, _) in BRANDS {
        for accessory in ACCESSORIES {
            seeds.push(accessory_seed(brand, accessory));
        }
    }
    seeds
}

// ---------------------------------------------------------------------------------------------
// Phones

/// Storage variants `(RAM GB, storage GB, extra yuan)`, by price class.
const BUDGET_STORAGE: &[(u32, u32, u32)] = &[(8, 128, 0), (8, 256, 200), (12, 256, 400)];
const MID_STORAGE: &[(u32, u32, u32)] = &[(8, 256, 0), (12, 256, 300), (12, 512, 800)];
const TOP_STORAGE: &[(u32, u32, u32)] = &[(12, 256, 0), (12, 512, 1000), (16, 1024, 2000)];

#[derive(Clone, Copy)]
struct PhoneLine {
    brand: &'static str,
    /// `{}` stands for the generation number.
    name: &'static str,
    generation: u32,
    /// Size and panel, e.g. `6.6″ OLED`.
    screen: &'static str,
    oled: bool,
    hz: u32,
    camera: &'static str,
    camera_score: u32,
    battery_mah: u32,
    watts: u32,
    price: u32,
    storage: &'static [(u32, u32, u32)],
    foldable: bool,
}

#[allow(clippy::too_many_arguments)] // One row of a table: positional arguments read as columns.
const fn phone(
    brand: &'static str,
    name: &'static str,
    generation: u32,
    screen: &'static str,
    hz: u32,
    camera: &'static str,
    camera_score: u32,
    battery_mah: u32,
    watts: u32,
    price: u32,
    storage: &'static [(u32, u32, u32)],
) -> PhoneLine {
    let bytes = screen.as_bytes();
    // "OLED" screens end in "OLED"; the const check avoids a second column saying the same.
    let oled = bytes.len() >= 4 && bytes[bytes.len() - 4] == b'O';
    PhoneLine {
        brand,
        name,
        generation,
        screen,
        oled,
        hz,
        camera,
        camera_score,
        battery_mah,
        watts,
        price,
        storage,
        foldable: false,
    }
}

const fn foldable(line: PhoneLine) -> PhoneLine {
    PhoneLine {
        foldable: true,
        ..line
    }
}

#[rustfmt::skip] // A table reads best one row per line.
const PHONES: &[PhoneLine] = &[
    phone("Orbit", "Orbit {}", 14, "6.6″ OLED", 120, "50 MP OIS", 66, 5500, 90, 3299, MID_STORAGE),
    phone("Orbit", "Orbit {} Max", 14, "6.8″ OLED", 120, "50 MP OIS", 68, 6500, 100, 3999, MID_STORAGE),
    phone("Orbit", "Orbit {} Ultra", 14, "6.8″ OLED", 120, "50 MP ×4 · 6× zoom", 94, 5300, 100, 6499, TOP_STORAGE),
    foldable(phone("Orbit", "Orbit Fold {}", 3, "7.9″ OLED", 120, "50 MP ×3", 80, 4800, 66, 7999, TOP_STORAGE)),
    phone("Kite", "Kite {}", 12, "6.5″ OLED", 90, "50 MP", 45, 5000, 45, 1999, BUDGET_STORAGE),
    phone("Kite", "Kite {}C", 12, "6.7″ LCD", 90, "50 MP", 22, 5000, 18, 699, BUDGET_STORAGE),
    phone("Kite", "Kite Note {}", 13, "6.7″ LCD", 120, "50 MP", 32, 6000, 33, 1499, BUDGET_STORAGE),
    phone("Kite", "Kite Note {} Pro", 13, "6.7″ OLED", 120, "200 MP", 48, 5100, 67, 1899, BUDGET_STORAGE),
    phone("Kite", "Kite Turbo {}", 3, "6.7″ OLED", 120, "50 MP OIS", 52, 5500, 90, 2199, MID_STORAGE),
    phone("Lumen", "Lumen X{}", 5, "6.3″ OLED", 120, "50 MP ×3", 82, 4500, 66, 4299, MID_STORAGE),
    phone("Lumen", "Lumen X{} Pro", 5, "6.7″ OLED", 120, "50 MP ×3 · 5× zoom", 92, 5000, 80, 5499, TOP_STORAGE),
    phone("Lumen", "Lumen X{} Ultra", 5, "6.8″ OLED", 120, "1″ 50 MP ×4 · 10× zoom", 98, 5500, 90, 7499, TOP_STORAGE),
    phone("Lumen", "Lumen S{}", 5, "6.1″ OLED", 120, "50 MP ×2", 70, 4300, 45, 3499, MID_STORAGE),
    phone("Nova", "Nova {}", 11, "6.6″ OLED", 120, "50 MP OIS", 60, 5000, 66, 2499, MID_STORAGE),
    phone("Nova", "Nova {} Pro", 11, "6.7″ OLED", 120, "50 MP ×3 · 3× zoom", 76, 5000, 80, 3199, MID_STORAGE),
    phone("Nova", "Nova {} SE", 11, "6.6″ LCD", 90, "50 MP", 35, 5000, 33, 1199, BUDGET_STORAGE),
    foldable(phone("Nova", "Nova Flip {}", 2, "6.9″ OLED", 120, "50 MP", 56, 4300, 44, 4999, MID_STORAGE)),
    phone("Pulse", "Pulse {}", 8, "6.8″ OLED", 144, "50 MP", 45, 6000, 120, 2999, MID_STORAGE),
    phone("Pulse", "Pulse {} Pro", 8, "6.8″ OLED", 165, "50 MP OIS", 56, 6500, 120, 3999, TOP_STORAGE),
    phone("Pulse", "Pulse Power {}", 3, "6.7″ LCD", 120, "50 MP", 30, 7000, 45, 1299, BUDGET_STORAGE),
    phone("Pulse", "Pulse Rugged {}", 2, "6.5″ LCD", 90, "50 MP", 28, 10000, 33, 1599, BUDGET_STORAGE),
    phone("Aster", "Aster {}", 9, "6.1″ OLED", 120, "50 MP ×2", 65, 4200, 45, 2799, MID_STORAGE),
    phone("Aster", "Aster {} Pro", 9, "6.3″ OLED", 120, "50 MP ×3 · 3.5× zoom", 84, 4600, 65, 4599, TOP_STORAGE),
    phone("Aster", "Aster {} Mini", 9, "5.9″ OLED", 120, "50 MP", 55, 3800, 30, 2299, MID_STORAGE),
    phone("Aster", "Aster Go {}", 4, "6.5″ LCD", 90, "50 MP", 25, 5000, 18, 799, BUDGET_STORAGE),
];

/// The charging powers phones are sold with, for the step down of a previous generation.
const CHARGING_WATTS: &[u32] = &[18, 25, 33, 44, 45, 65, 66, 67, 80, 90, 100, 120];

fn phone_line(line: &PhoneLine, generation: u32, age: u32, seeds: &mut Vec<Seed>) {
    let name = line.name.replace("{}", &generation.to_string());
    let model = format!("ph-{}", slug(&name));
    // A previous generation: a fifth cheaper, a slightly weaker camera, battery and charger.
    let price = if age == 0 {
        line.price
    } else {
        round_to_99(f64::from(line.price) * 0.8)
    };
    if price < 699 {
        return; // No longer stocked: the shop's cheapest phone is ¥699.
    }
    let camera_score = line.camera_score.saturating_sub(6 * age);
    let battery_mah = line.battery_mah - 300 * age;
    let watts = if age == 0 {
        line.watts
    } else {
        CHARGING_WATTS
            .iter()
            .rev()
            .find(|w| **w < line.watts)
            .copied()
            .unwrap_or(line.watts)
    };
    let hz = if line.hz >= 120 {
        format!(" {} Hz", line.hz)
    } else {
        String::new()
    };
    let specs = format!(
        "{}{hz} · {} · {battery_mah} mAh · {watts} W",
        line.screen, line.camera
    );
    // Scores from the specs: battery from capacity and charging speed, value from overall
    // quality per yuan (dampened, so a good mid-range phone beats the cheapest one).
    let battery = clamp((f64::from(battery_mah) - 4000.0) / 40.0) * 0.8
        + f64::from(watts.min(120)) / 120.0 * 20.0;
    let display = if line.oled { 60.0 } else { 30.0 } + f64::from(line.hz.min(120) - 60) / 2.0;
    let quality = 0.45 * f64::from(camera_score) + 0.35 * battery + 0.2 * display;
    for (index, (ram, rom, extra)) in line.storage.iter().enumerate() {
        let price = price + extra;
        let memory = memory_label(*ram, *rom);
        let value = clamp(quality * 2.6 / (f64::from(price) / 1000.0).powf(0.45) - 20.0);
        seeds.push(seed(
            Product {
                id: variant_id(&model, index, *ram, *rom),
                model: model.clone(),
                name: variant_name(&name, index, &memory),
                brand: line.brand.to_owned(),
                category: "phones".to_owned(),
                price: f64::from(price),
                description: format!("{specs} · {memory}"),
                image: String::new(),
                url: String::new(),
                tags: Vec::new(),
                colours: brand_colours(line.brand),
            },
            if line.foldable {
                Shape::Foldable
            } else {
                Shape::Phone
            },
            vec![
                ("camera", camera_score),
                ("battery", score(battery)),
                ("value", score(value)),
            ],
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Laptops

/// Memory and storage variants `(RAM GB, SSD GB, extra yuan)`, by price class.
const BASE_CONFIGS: &[(u32, u32, u32)] = &[(8, 512, 0), (16, 512, 500), (16, 1024, 1000)];
const MID_CONFIGS: &[(u32, u32, u32)] = &[(16, 512, 0), (16, 1024, 600), (32, 1024, 1500)];
const PRO_CONFIGS: &[(u32, u32, u32)] = &[(32, 1024, 0), (32, 2048, 1500), (64, 2048, 4000)];

struct LaptopLine {
    brand: &'static str,
    name: &'static str,
    /// Size, resolution and refresh rate, e.g. `16″ 2.5K 165 Hz`.
    screen: &'static str,
    /// Kilograms, in tenths (13 = 1.3 kg), so the table stays `const`.
    weight_dg: u32,
    performance: u32,
    gpu: Option<&'static str>,
    battery_hours: u32,
    price: u32,
    configs: &'static [(u32, u32, u32)],
}

#[allow(clippy::too_many_arguments)] // One row of a table: positional arguments read as columns.
const fn laptop(
    brand: &'static str,
    name: &'static str,
    screen: &'static str,
    weight_dg: u32,
    performance: u32,
    gpu: Option<&'static str>,
    battery_hours: u32,
    price: u32,
    configs: &'static [(u32, u32, u32)],
) -> LaptopLine {
    LaptopLine {
        brand,
        name,
        screen,
        weight_dg,
        performance,
        gpu,
        battery_hours,
        price,
        configs,
    }
}

#[rustfmt::skip] // A table reads best one row per line.
const LAPTOPS: &[LaptopLine] = &[
    laptop("Orbit", "Orbit Air 13", "13.3″ 2.8K", 11, 60, None, 18, 5999, MID_CONFIGS),
    laptop("Orbit", "Orbit Air 15", "15.3″ 2.8K", 14, 62, None, 16, 6999, MID_CONFIGS),
    laptop("Orbit", "Orbit Pro 14", "14″ 2.8K 120 Hz", 15, 80, Some("RTX 4050"), 10, 6999, MID_CONFIGS),
    laptop("Orbit", "Orbit Pro 16", "16″ 2.5K 165 Hz", 21, 85, Some("RTX 4050"), 8, 7499, PRO_CONFIGS),
    laptop("Orbit", "Orbit Book 14", "14″ FHD", 14, 45, None, 12, 3799, BASE_CONFIGS),
    laptop("Kite", "Kite Book 14", "14″ FHD", 13, 40, None, 11, 2999, BASE_CONFIGS),
    laptop("Kite", "Kite Book 15", "15.6″ FHD", 17, 45, None, 10, 3499, BASE_CONFIGS),
    laptop("Kite", "Kite Book 16", "16″ 2.5K", 18, 50, None, 10, 3999, BASE_CONFIGS),
    laptop("Kite", "Kite Gamer 15", "15.6″ FHD 144 Hz", 22, 75, Some("RTX 4050"), 6, 5499, MID_CONFIGS),
    laptop("Kite", "Kite Gamer 17", "17.3″ 2.5K 165 Hz", 26, 82, Some("RTX 4060"), 5, 6999, MID_CONFIGS),
    laptop("Lumen", "Lumen Air 13", "13.6″ 2.5K", 10, 65, None, 20, 6999, MID_CONFIGS),
    laptop("Lumen", "Lumen Air 15", "15.3″ 2.5K", 13, 68, None, 18, 7999, MID_CONFIGS),
    laptop("Lumen", "Lumen Book Pro 14", "14.2″ 3K 120 Hz", 16, 90, Some("RTX 4060"), 12, 9999, PRO_CONFIGS),
    laptop("Lumen", "Lumen Book Pro 16", "16.2″ 3.5K 120 Hz", 21, 95, Some("RTX 4070"), 10, 13999, PRO_CONFIGS),
    laptop("Lumen", "Lumen Studio 16", "16″ 4K OLED", 23, 98, Some("RTX 4080"), 8, 15999, PRO_CONFIGS),
    laptop("Nova", "Nova Book 14", "14″ 2.2K", 14, 55, None, 14, 4299, BASE_CONFIGS),
    laptop("Nova", "Nova Book 16", "16″ 2.5K", 18, 58, None, 13, 4799, MID_CONFIGS),
    laptop("Nova", "Nova Flex 14", "14″ 2.8K OLED", 14, 62, None, 13, 5699, MID_CONFIGS),
    laptop("Nova", "Nova Slim 13", "13.3″ 2.5K", 10, 55, None, 15, 4999, MID_CONFIGS),
    laptop("Pulse", "Pulse Core 15", "15.6″ FHD 144 Hz", 21, 70, Some("RTX 3050"), 6, 4699, BASE_CONFIGS),
    laptop("Pulse", "Pulse Strike 15", "15.6″ 2.5K 165 Hz", 23, 85, Some("RTX 4060"), 5, 7999, MID_CONFIGS),
    laptop("Pulse", "Pulse Strike 17", "17.3″ 2.5K 240 Hz", 28, 93, Some("RTX 4070"), 5, 10999, PRO_CONFIGS),
    laptop("Pulse", "Pulse Blade 14", "14″ 2.8K 120 Hz", 17, 86, Some("RTX 4060"), 8, 9499, PRO_CONFIGS),
    laptop("Aster", "Aster Book 13", "13.3″ 2.5K", 11, 52, None, 14, 4499, BASE_CONFIGS),
    laptop("Aster", "Aster Book 14 Pro", "14″ 2.8K 120 Hz", 13, 72, None, 15, 6499, MID_CONFIGS),
    laptop("Aster", "Aster Creator 16", "16″ 3.2K OLED", 19, 88, Some("RTX 4060"), 9, 10999, PRO_CONFIGS),
];

fn laptop_line(line: &LaptopLine, seeds: &mut Vec<Seed>) {
    let model = format!("lt-{}", slug(line.name));
    let kg = f64::from(line.weight_dg) / 10.0;
    // Portable: light (up to 70 points for 1 kg or less) and long-lasting (30 for 20 hours).
    let portable = clamp((2.0 - kg) * 70.0).min(70.0) + f64::from(line.battery_hours.min(20)) * 1.5;
    for (index, (ram, rom, extra)) in line.configs.iter().enumerate() {
        let price = line.price + extra;
        let memory = memory_label(*ram, *rom);
        // More memory makes a laptop a little faster; the value score weighs that per yuan.
        let performance = (line.performance + ram / 16).min(100);
        let quality = 0.55 * f64::from(performance) + 0.45 * portable;
        let value = clamp(quality * 2.4 / (f64::from(price) / 5000.0).powf(0.6) - 70.0);
        let last = match line.gpu {
            Some(gpu) => gpu.to_owned(),
            None => format!("{} h", line.battery_hours),
        };
        seeds.push(seed(
            Product {
                id: variant_id(&model, index, *ram, *rom),
                model: model.clone(),
                name: variant_name(line.name, index, &memory),
                brand: line.brand.to_owned(),
                category: "laptops".to_owned(),
                price: f64::from(price),
                description: format!("{} · {kg:.1} kg · {memory} · {last}", line.screen),
                image: String::new(),
                url: String::new(),
                tags: Vec::new(),
                colours: brand_colours(line.brand).into_iter().take(2).collect(),
            },
            Shape::Laptop,
            vec![
                ("performance", performance),
                ("portable", score(portable)),
                ("value", score(value)),
            ],
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Earphones

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    InEar,
    /// Open-ear or ear-hook: stays put when running.
    Open,
    OverEar,
}

struct EarphoneLine {
    brand: &'static str,
    /// `{}` stands for the generation number.
    name: &'static str,
    generation: u32,
    fit: Fit,
    /// Noise cancelling depth in dB, if any.
    anc_db: Option<u32>,
    /// The second digit of the IP rating (water), if rated.
    ip: Option<&'static str>,
    codec: Option<&'static str>,
    hours: u32,
    price: u32,
}

#[allow(clippy::too_many_arguments)] // One row of a table: positional arguments read as columns.
const fn earphone(
    brand: &'static str,
    name: &'static str,
    generation: u32,
    fit: Fit,
    anc_db: Option<u32>,
    ip: Option<&'static str>,
    codec: Option<&'static str>,
    hours: u32,
    price: u32,
) -> EarphoneLine {
    EarphoneLine {
        brand,
        name,
        generation,
        fit,
        anc_db,
        ip,
        codec,
        hours,
        price,
    }
}

#[rustfmt::skip] // A table reads best one row per line.
const EARPHONES: &[EarphoneLine] = &[
    earphone("Kite", "Kite Buds {}", 6, Fit::InEar, None, Some("IP54"), Some("13 mm driver"), 40, 199),
    earphone("Kite", "Kite Buds {} Pro", 6, Fit::InEar, Some(42), None, None, 36, 399),
    earphone("Kite", "Kite Buds {} Lite", 6, Fit::InEar, None, None, None, 30, 99),
    earphone("Kite", "Kite Sport {}", 3, Fit::Open, None, Some("IP55"), None, 20, 249),
    earphone("Orbit", "Orbit Buds {}", 4, Fit::InEar, Some(40), Some("IP54"), None, 36, 699),
    earphone("Orbit", "Orbit Buds {} Pro", 4, Fit::InEar, Some(46), Some("IP54"), Some("LDAC"), 30, 1099),
    earphone("Orbit", "Orbit Sport Open", 1, Fit::Open, None, Some("IP57"), None, 12, 499),
    earphone("Orbit", "Orbit Studio {}", 2, Fit::OverEar, Some(45), None, Some("LDAC"), 60, 1499),
    earphone("Lumen", "Lumen Buds {}", 2, Fit::InEar, Some(38), Some("IP54"), None, 30, 799),
    earphone("Lumen", "Lumen Buds Pro {}", 2, Fit::InEar, Some(48), None, Some("LDAC"), 30, 1299),
    earphone("Lumen", "Lumen Max {}", 2, Fit::OverEar, Some(50), None, Some("LDAC"), 40, 2999),
    earphone("Lumen", "Lumen Open {}", 2, Fit::Open, None, Some("IP54"), Some("Spatial audio"), 28, 1199),
    earphone("Nova", "Nova Buds {}", 5, Fit::InEar, Some(35), Some("IP54"), None, 32, 349),
    earphone("Nova", "Nova Buds {} Pro", 5, Fit::InEar, Some(45), Some("IP55"), Some("LDAC"), 36, 599),
    earphone("Nova", "Nova Clip {}", 2, Fit::Open, None, Some("IP54"), None, 24, 699),
    earphone("Pulse", "Pulse Run {}", 3, Fit::Open, None, Some("IP68"), Some("Bone conduction"), 10, 599),
    earphone("Pulse", "Pulse Fit {}", 2, Fit::Open, Some(30), Some("IP57"), None, 30, 449),
    earphone("Pulse", "Pulse Game Buds {}", 2, Fit::InEar, None, None, Some("45 ms latency"), 28, 299),
    earphone("Aster", "Aster Buds {}", 3, Fit::InEar, Some(40), Some("IP54"), None, 30, 499),
    earphone("Aster", "Aster Buds {} Air", 3, Fit::InEar, None, None, None, 30, 249),
    earphone("Aster", "Aster Over {}", 2, Fit::OverEar, Some(46), None, Some("LDAC"), 50, 1999),
];

fn earphone_line(line: &EarphoneLine, generation: u32, age: u32, seeds: &mut Vec<Seed>) {
    let name = line.name.replace("{}", &generation.to_string());
    let id = format!("ep-{}", slug(&name));
    let price = if age == 0 {
        line.price
    } else if line.price >= 1000 {
        round_to_99(f64::from(line.price) * 0.8)
    } else {
        round_to_9(f64::from(line.price) * 0.8)
    };
    if price < 99 {
        return; // No longer stocked: the shop's cheapest earphones are ¥99.
    }
    let anc_db = line.anc_db.map(|db| db.saturating_sub(3 * age));
    let hours = line.hours - 4 * age;
    let mut parts = Vec::new();
    match line.fit {
        Fit::InEar => {}
        Fit::Open => parts.push("Open-ear".to_owned()),
        Fit::OverEar => parts.push("Over-ear".to_owned()),
    }
    if let Some(db) = anc_db {
        parts.push(format!("ANC −{db} dB"));
    }
    parts.extend(line.codec.map(str::to_owned));
    parts.extend(line.ip.map(str::to_owned));
    parts.push(format!("{hours} h"));
    // Noise cancelling from its depth; sport from water resistance and a fit that stays put;
    // value from overall quality per yuan.
    let anc = anc_db.map_or(0.0, |db| clamp((f64::from(db) - 25.0) * 4.0));
    let water = match line.ip {
        Some("IP68") => 80.0,
        Some("IP57") => 65.0,
        Some("IP55") => 50.0,
        Some(_) => 40.0,
        None => 0.0,
    };
    let sport = clamp(water + if line.fit == Fit::Open { 20.0 } else { 0.0 });
    let sound = if line.codec == Some("LDAC") {
        80.0
    } else {
        50.0
    };
    let quality = 0.4 * anc + 0.3 * f64::from(hours.min(40)) * 2.5 + 0.3 * sound;
    let value = clamp(quality * 1.6 / (f64::from(price) / 500.0).powf(0.5) - 10.0);
    seeds.push(seed(
        Product {
            id: id.clone(),
            model: id,
            name,
            brand: line.brand.to_owned(),
            category: "earphones".to_owned(),
            price: f64::from(price),
            description: parts.join(" · "),
            image: String::new(),
            url: String::new(),
            tags: Vec::new(),
            colours: brand_colours(line.brand).into_iter().take(2).collect(),
        },
        if line.fit == Fit::OverEar {
            Shape::Headphones
        } else {
            Shape::Buds
        },
        vec![
            ("anc", score(anc)),
            ("sport", score(sport)),
            ("value", score(value)),
        ],
    ));
}

// ---------------------------------------------------------------------------------------------
// Accessories

/// `(name after the brand, spec line, price)`; every brand sells each of them.
const ACCESSORIES: &[(&str, &str, u32)] = &[
    (
        "silicone phone case",
        "Liquid silicone · microfibre lining",
        59,
    ),
    ("leather phone case", "Genuine leather · magnetic", 129),
    ("tempered glass screen protector", "9H glass · 2-pack", 39),
    ("65 W GaN charger", "65 W · USB-C ×2 · USB-A", 149),
    ("120 W fast charger", "120 W · USB-C · cable included", 199),
    ("USB-C cable 1 m", "100 W · USB 2.0 · braided", 39),
    ("power bank 10000 mAh", "10000 mAh · 22.5 W", 129),
    (
        "power bank 20000 mAh",
        "20000 mAh · 65 W · laptop-ready",
        249,
    ),
    ("laptop sleeve 13″", "Fits 13–14″ · water-repellent", 129),
    ("laptop sleeve 15″", "Fits 15–16″ · water-repellent", 159),
    ("earbuds case", "Silicone · carabiner", 49),
];

fn accessory_seed(brand: &str, (name, specs, price): &(&str, &str, u32)) -> Seed {
    let name = format!("{brand} {name}");
    seed(
        Product {
            id: format!("ac-{}", slug(&name)),
            model: format!("ac-{}", slug(&name)),
            name,
            brand: brand.to_owned(),
            category: "accessories".to_owned(),
            price: f64::from(*price),
            description: (*specs).to_owned(),
            image: String::new(),
            url: String::new(),
            tags: Vec::new(),
            colours: brand_colours(brand).into_iter().take(1).collect(),
        },
        Shape::Accessory,
        Vec::new(),
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Fills in what follows from the id and the scores: the picture, the page and the tags.
fn seed(mut product: Product, shape: Shape, scores: Vec<(&'static str, u32)>) -> Seed {
    product.image = format!("/demo/img/{}.jpg", product.id);
    product.url = format!("/demo/product/{}", product.id);
    product.tags = scores
        .iter()
        .filter(|(_, score)| *score >= FITS)
        .map(|(preference, _)| (*preference).to_owned())
        .collect();
    Seed {
        product,
        shape,
        scores,
    }
}

/// The base variant keeps the model's id; the others add their memory (`-12gb-512gb`, `-16gb-1tb`).
fn variant_id(model: &str, index: usize, ram: u32, rom: u32) -> String {
    if index == 0 {
        model.to_owned()
    } else {
        let storage = if rom >= 1024 {
            format!("{}tb", rom / 1024)
        } else {
            format!("{rom}gb")
        };
        format!("{model}-{ram}gb-{storage}")
    }
}

/// The base variant keeps the model's name; the others add their memory (`Orbit 14 12/512 GB`).
fn variant_name(name: &str, index: usize, memory: &str) -> String {
    if index == 0 {
        name.to_owned()
    } else {
        format!("{name} {memory}")
    }
}

/// `8/256 GB`, or `16 GB/1 TB` when the storage is counted in terabytes.
fn memory_label(ram: u32, rom: u32) -> String {
    if rom >= 1024 {
        format!("{ram} GB/{}", storage_label(rom))
    } else {
        format!("{ram}/{rom} GB")
    }
}

fn storage_label(gb: u32) -> String {
    if gb >= 1024 {
        format!("{} TB", gb / 1024)
    } else {
        format!("{gb} GB")
    }
}

/// `Lumen X5 Pro` → `lumen-x5-pro`.
fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

fn clamp(score: f64) -> f64 {
    score.clamp(0.0, 100.0)
}

fn score(value: f64) -> u32 {
    // Clamped to 0–100 first, so the conversion cannot truncate.
    clamp(value).round() as u32
}

/// Shop prices end in 99: 2639 → 2599.
fn round_to_99(price: f64) -> u32 {
    ((price / 100.0).round() as u32 * 100).saturating_sub(1)
}

/// Small prices end in 9: 319.2 → 319.
fn round_to_9(price: f64) -> u32 {
    ((price / 10.0).round() as u32 * 10).saturating_sub(1)
}
