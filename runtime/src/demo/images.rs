//! Placeholder pictures for `/demo/img/{file}`: small SVG documents drawn from the product
//! tables, so the demo shop needs no image files and every product has a picture.

use super::products::{self, Shape};

/// Width and height of every picture (4:3, like the cards of the chat widget).
const WIDTH: u32 = 480;
const HEIGHT: u32 = 360;

/// The picture for `file`, e.g. `ph-orbit-14.jpg`, `category-phones.jpg` or
/// `payment-methods.png`: an SVG document whatever the extension (serve it as `image/svg+xml`),
/// or `None` for a name the shop has no picture for.
pub fn image_svg(file: &str) -> Option<String> {
    let stem = [".jpg", ".jpeg", ".png", ".webp", ".svg"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    if let Some(category) = stem.strip_prefix("category-") {
        let (label, colour, shape) = match category {
            "phones" => ("Phones · 手机", "#2563eb", Shape::Phone),
            "laptops" => ("Laptops · 笔记本电脑", "#7c3aed", Shape::Laptop),
            "earphones" => ("Earphones · 耳机", "#059669", Shape::Buds),
            "accessories" => ("Accessories · 配件", "#ea580c", Shape::Accessory),
            _ => return None,
        };
        return Some(picture(colour, shape, "kefu shop", label, ""));
    }
    if stem == "payment-methods" {
        return Some(payment_methods());
    }
    let seed = products::by_id(stem)?;
    let product = &seed.product;
    Some(picture(
        products::brand_colour(&product.brand),
        seed.shape,
        &product.brand,
        &product.name,
        &format!("¥{}", product.price),
    ))
}

/// A rounded card in `colour` with a silhouette and the name. Everything stays within the
/// middle 280 pixels, because the shop crops the picture to a portrait card; brand and price
/// are only in the accessible label (the page prints them under the picture).
fn picture(colour: &str, shape: Shape, brand: &str, name: &str, price: &str) -> String {
    let brand = escape(brand);
    let name = escape(name);
    let price = escape(price);
    // Long names get a smaller font so they stay inside the middle of the card (a bold glyph
    // is about 0.7 em wide).
    let chars = u32::try_from(name.chars().count())
        .unwrap_or(u32::MAX)
        .max(1);
    let size = (280 / chars * 10 / 7).clamp(12, 28);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{brand} {name} · {price}">
<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" rx="28" fill="{colour}"/>
<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" rx="28" fill="url(#shine)"/>
<defs><linearGradient id="shine" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#fff" stop-opacity="0.25"/><stop offset="1" stop-color="#000" stop-opacity="0.15"/></linearGradient></defs>
<g fill="#fff" fill-opacity="0.92" stroke="none">{silhouette}</g>
<text x="240" y="322" font-family="system-ui, sans-serif" font-size="{size}" font-weight="700" fill="#fff" text-anchor="middle">{name}</text>
</svg>
"##,
        silhouette = silhouette(shape, colour),
    )
}

/// A simple outline of the device, in the middle of the card (y from 70 to 270).
fn silhouette(shape: Shape, colour: &str) -> String {
    match shape {
        Shape::Phone => format!(
            r#"<rect x="190" y="70" width="100" height="200" rx="18"/><rect x="198" y="80" width="84" height="180" rx="10" fill="{colour}" fill-opacity="0.35"/><circle cx="240" cy="90" r="4" fill="{colour}"/>"#
        ),
        Shape::Foldable => format!(
            r#"<rect x="150" y="80" width="180" height="180" rx="16"/><rect x="158" y="88" width="164" height="164" rx="8" fill="{colour}" fill-opacity="0.35"/><rect x="239" y="84" width="2" height="172" fill="{colour}"/>"#
        ),
        Shape::Laptop => format!(
            r#"<rect x="130" y="80" width="220" height="140" rx="10"/><rect x="140" y="90" width="200" height="120" rx="4" fill="{colour}" fill-opacity="0.35"/><path d="M100 228 H380 L396 250 H84 Z"/>"#
        ),
        Shape::Buds => format!(
            r#"<circle cx="196" cy="130" r="30"/><rect x="188" y="150" width="16" height="80" rx="8"/><circle cx="284" cy="130" r="30"/><rect x="276" y="150" width="16" height="80" rx="8"/><circle cx="196" cy="130" r="12" fill="{colour}" fill-opacity="0.45"/><circle cx="284" cy="130" r="12" fill="{colour}" fill-opacity="0.45"/>"#
        ),
        Shape::Headphones => {
            r#"<path d="M160 200 V160 A80 80 0 0 1 320 160 V200 H300 V160 A60 60 0 0 0 180 160 V200 Z"/><rect x="146" y="180" width="48" height="80" rx="20"/><rect x="286" y="180" width="48" height="80" rx="20"/>"#.to_owned()
        }
        Shape::Accessory => format!(
            r#"<rect x="180" y="90" width="120" height="160" rx="24"/><rect x="200" y="110" width="80" height="120" rx="14" fill="{colour}" fill-opacity="0.35"/>"#
        ),
    }
}

/// The payment methods the FAQ names, as labelled tiles.
fn payment_methods() -> String {
    let tiles = [
        ("WeChat Pay", "#16a34a"),
        ("Alipay", "#1677ff"),
        ("UnionPay", "#b91c1c"),
        ("Huabei 3/6/12", "#0ea5e9"),
    ];
    let mut body = String::new();
    for (index, (label, colour)) in tiles.iter().enumerate() {
        let x = 30 + (index as u32 % 2) * 215;
        let y = 80 + (index as u32 / 2) * 120;
        body.push_str(&format!(
            r##"<rect x="{x}" y="{y}" width="205" height="100" rx="16" fill="{colour}"/><text x="{tx}" y="{ty}" font-family="system-ui, sans-serif" font-size="24" font-weight="700" fill="#fff" text-anchor="middle">{label}</text>"##,
            tx = x + 102,
            ty = y + 58,
        ));
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Payment methods">
<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" rx="28" fill="#f1f5f9"/>
<text x="240" y="50" font-family="system-ui, sans-serif" font-size="24" font-weight="700" fill="#0f172a" text-anchor="middle">支付方式 · Payment methods</text>
{body}
</svg>
"##
    )
}

/// Text for an SVG document: names like `Kite laptop sleeve 15″` are plain, but a product name is
/// data, and data never becomes markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
