//! The demo shop's pages and API: `/demo` (and `/demo/product/…`, `/demo/category/…`,
//! `/demo/checkout`, all the same page, which reads its path), the product API the page uses,
//! and the placeholder pictures.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::catalogue::image_svg;
use crate::server::{ApiError, AppState};

/// The shop's routes, served when the server has a catalogue.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/demo", get(page))
        .route("/demo/", get(page))
        .route("/demo/product/{id}", get(page))
        .route("/demo/category/{category}", get(page))
        .route("/demo/checkout", get(page))
        .route("/demo/api/products", get(products))
        .route("/demo/api/products/{id}", get(product))
        .route("/demo/img/{file}", get(picture))
        .route("/demo/api/identity", get(identity))
}

async fn page() -> Html<&'static str> {
    Html(include_str!("../../assets/shop.html"))
}

#[derive(Deserialize)]
struct ProductsQuery {
    category: Option<String>,
    limit: Option<u32>,
}

/// The most products one request returns.
const MAX_PRODUCTS: u32 = 100;

async fn products(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ProductsQuery>,
) -> Result<Response, ApiError> {
    let catalogue = state.demo.as_ref().ok_or_else(no_catalogue)?;
    let limit = query.limit.unwrap_or(24).clamp(1, MAX_PRODUCTS);
    let category = query.category.as_deref().filter(|c| !c.is_empty());
    let products = catalogue.products(category, limit).await.map_err(|error| {
        tracing::error!(%error, "cannot list demo products");
        ApiError::internal()
    })?;
    Ok(axum::Json(products).into_response())
}

async fn product(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let catalogue = state.demo.as_ref().ok_or_else(no_catalogue)?;
    match catalogue.product(&id).await {
        Ok(Some(product)) => Ok(axum::Json(product).into_response()),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no product `{id}`"),
        )),
        Err(error) => {
            tracing::error!(%error, "cannot read a demo product");
            Err(ApiError::internal())
        }
    }
}

#[derive(Deserialize)]
struct IdentityQuery {
    email: String,
}

/// What a shop's own server does for its signed-in customer: the signature of their identity
/// (`crate::identity`), so the widget can tell kefu who they are. Only for the demo's customers;
/// `signature: null` when kefu takes identities unsigned.
async fn identity(
    State(state): State<Arc<AppState>>,
    Query(query): Query<IdentityQuery>,
) -> Result<Response, ApiError> {
    if !super::catalogue::is_demo_customer(&query.email) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("`{}` is not a demo customer", query.email),
        ));
    }
    let secret = state
        .chat
        .as_ref()
        .and_then(|chat| chat.identity_secret.clone());
    let signature = secret.map(|secret| {
        let identity =
            std::collections::BTreeMap::from([("email".to_owned(), query.email.clone())]);
        crate::identity::sign(&secret, &identity)
    });
    Ok(
        axum::Json(serde_json::json!({"email": query.email, "signature": signature}))
            .into_response(),
    )
}

/// A placeholder picture: SVG, whatever extension the flows' URLs use.
async fn picture(Path(file): Path<String>) -> Response {
    match image_svg(&file) {
        Some(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            svg,
        )
            .into_response(),
        None => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no picture `{file}`")).into_response()
        }
    }
}

fn no_catalogue() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the demo shop is not available on this server",
    )
}
