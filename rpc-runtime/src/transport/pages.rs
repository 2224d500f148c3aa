//! The read-only pages beside the RPC endpoint: API docs (`/docs`), specs
//! (`/docs.json`, `/openrpc.json`) and telemetry (`/telemetry`,
//! `/telemetry.html`, `/metrics`). Each group can be turned off, mounted
//! under a prefix, or restricted to authenticated callers.

use super::Gateway;
use crate::{Identity, RpcError, envelope};
use axum::Router;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a group of pages is served, if at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    prefix: Option<String>,
    require_auth: bool,
}

impl Mount {
    /// Served at the root (`/docs`, `/telemetry`, ...), to anyone.
    pub fn root() -> Self {
        Mount {
            prefix: Some(String::new()),
            require_auth: false,
        }
    }

    /// Served under a prefix, e.g. `Mount::at("/internal")` serves
    /// `/internal/docs`.
    pub fn at(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let prefix = format!("/{}", prefix.trim_matches('/'));
        Mount {
            prefix: Some(if prefix == "/" { String::new() } else { prefix }),
            require_auth: false,
        }
    }

    /// Not served.
    pub fn disabled() -> Self {
        Mount {
            prefix: None,
            require_auth: false,
        }
    }

    /// Only for requests with a bearer token (an `Authorization` header, or
    /// a `token` query parameter) that the server's authenticator accepts;
    /// without an authenticator, any token. Others get 401.
    #[must_use]
    pub fn require_auth(mut self) -> Self {
        self.require_auth = true;
        self
    }

    fn path(&self, page: &str) -> Option<String> {
        self.prefix.as_ref().map(|prefix| format!("{prefix}{page}"))
    }
}

impl Default for Mount {
    fn default() -> Self {
        Mount::root()
    }
}

/// The mounts of every page group.
#[derive(Clone, Debug, Default)]
#[cfg_attr(
    not(feature = "docs"),
    allow(dead_code, reason = "docs and specs need the docs feature")
)]
pub(crate) struct PagesConfig {
    pub(crate) docs: Mount,
    pub(crate) specs: Mount,
    pub(crate) telemetry: Mount,
    pub(crate) show_internal: bool,
    pub(crate) public_url: Option<String>,
}

type Params = Query<HashMap<String, String>>;

/// Every page, with the group it belongs to and its path in that group.
#[derive(Clone, Copy)]
enum Page {
    #[cfg(feature = "docs")]
    Docs,
    #[cfg(feature = "docs")]
    DocsJson,
    #[cfg(feature = "docs")]
    OpenRpc,
    #[cfg(feature = "docs")]
    TypeScript,
    Telemetry,
    TelemetryHtml,
    Metrics,
}

impl Page {
    const ALL: &'static [Page] = &[
        #[cfg(feature = "docs")]
        Page::Docs,
        #[cfg(feature = "docs")]
        Page::DocsJson,
        #[cfg(feature = "docs")]
        Page::OpenRpc,
        #[cfg(feature = "docs")]
        Page::TypeScript,
        Page::Telemetry,
        Page::TelemetryHtml,
        Page::Metrics,
    ];

    fn mount(self, config: &PagesConfig) -> &Mount {
        match self {
            #[cfg(feature = "docs")]
            Page::Docs => &config.docs,
            #[cfg(feature = "docs")]
            Page::DocsJson | Page::OpenRpc | Page::TypeScript => &config.specs,
            Page::Telemetry | Page::TelemetryHtml | Page::Metrics => &config.telemetry,
        }
    }

    fn path(self) -> &'static str {
        match self {
            #[cfg(feature = "docs")]
            Page::Docs => "/docs",
            #[cfg(feature = "docs")]
            Page::DocsJson => "/docs.json",
            #[cfg(feature = "docs")]
            Page::OpenRpc => "/openrpc.json",
            #[cfg(feature = "docs")]
            Page::TypeScript => "/client.ts",
            Page::Telemetry => "/telemetry",
            Page::TelemetryHtml => "/telemetry.html",
            Page::Metrics => "/metrics",
        }
    }

    /// The page's content; the caller has passed the mount's guard.
    /// `mounted_at` is the prefix the router is mounted under in an app.
    #[cfg_attr(
        not(feature = "docs"),
        allow(unused_variables, reason = "the OpenRPC document's")
    )]
    fn render(self, gateway: &Gateway, headers: &HeaderMap, mounted_at: &str) -> Response {
        let pipeline = &gateway.pipeline;
        let pages = &gateway.pages;
        match self {
            #[cfg(feature = "docs")]
            Page::Docs => {
                // Relative links, so that the page also works when the
                // router is mounted under a prefix or behind a proxy.
                let here = pages.docs.path(Page::Docs.path()).unwrap_or_default();
                let specs = pages
                    .specs
                    .path(Page::DocsJson.path())
                    .map(|specs| relative(&here, &specs));
                html(crate::docs::page(
                    &pipeline.name,
                    specs.as_deref(),
                    &relative(&here, "/"),
                ))
            }
            #[cfg(feature = "docs")]
            Page::DocsJson => json(&crate::docs::document(
                &pipeline.name,
                pipeline.routable(),
                pages.show_internal,
            )),
            #[cfg(feature = "docs")]
            Page::OpenRpc => json(&crate::hub::Routes::openrpc(
                &**pipeline,
                Some((headers, mounted_at)),
            )),
            #[cfg(feature = "docs")]
            Page::TypeScript => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                crate::docs::typescript_client(&pipeline.name, pipeline.routable()),
            )
                .into_response(),
            Page::Telemetry => json(&pipeline.report(gateway.ws.enabled)),
            Page::TelemetryHtml => {
                let source = relative(
                    &pages
                        .telemetry
                        .path(Page::TelemetryHtml.path())
                        .unwrap_or_default(),
                    &pages
                        .telemetry
                        .path(Page::Telemetry.path())
                        .unwrap_or_default(),
                );
                html(
                    crate::telemetry::PAGE
                        .replace("{{TELEMETRY_URL}}", &crate::html::escape(&source)),
                )
            }
            Page::Metrics => {
                let text = pipeline.metrics();
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    text,
                )
                    .into_response()
            }
        }
    }
}

/// The link from the page at path `from` to the path `to`, relative, so
/// that it holds under whatever prefix the router is mounted at.
fn relative(from: &str, to: &str) -> String {
    let depth = from.matches('/').count().saturating_sub(1);
    format!("./{}{}", "../".repeat(depth), to.trim_start_matches('/'))
}

/// The paths the pages are served at.
pub(crate) fn paths(config: &PagesConfig) -> impl Iterator<Item = String> + '_ {
    Page::ALL
        .iter()
        .filter_map(|page| page.mount(config).path(page.path()))
}

pub(crate) fn routes(router: Router<Arc<Gateway>>, config: &PagesConfig) -> Router<Arc<Gateway>> {
    let mut router = router;
    for &page in Page::ALL {
        if let Some(path) = page.mount(config).path(page.path()) {
            router = router.route(
                &path,
                get(
                    move |State(gateway): State<Arc<Gateway>>,
                          OriginalUri(original): OriginalUri,
                          uri: Uri,
                          headers: HeaderMap,
                          Query(params): Params| async move {
                        match guard(&gateway, page.mount(&gateway.pages), &headers, &params).await {
                            Ok(()) => {
                                // What a nesting app's router took off the path.
                                let mounted_at =
                                    original.path().strip_suffix(uri.path()).unwrap_or_default();
                                page.render(&gateway, &headers, mounted_at)
                            }
                            Err(refused) => refused,
                        }
                    },
                )
                .fallback(super::method_not_allowed),
            );
        }
    }
    router
}

/// Checks the bearer token of a page request when its mount asks for one.
async fn guard(
    gateway: &Gateway,
    mount: &Mount,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(), Response> {
    if !mount.require_auth {
        return Ok(());
    }
    let authorization = super::authorization(headers, params.get("token").map(String::as_str));
    let identity = authorization.map(Identity::with_authorization);
    match gateway.pipeline.authenticate(identity.as_ref()).await {
        Ok(_) => Ok(()),
        Err(error) => {
            let error = RpcError::unauthorized(error.message().to_owned());
            let body = envelope::encode_response(&Err(error), None);
            Err((
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response())
        }
    }
}

fn json(value: &serde_json::Value) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec_pretty(value).unwrap_or_default(),
    )
        .into_response()
}

fn html(page: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            // Everything the pages need is inline; nothing is fetched from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
                ),
            ),
        ],
        page,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_are_relative_to_the_page() {
        use super::relative;
        assert_eq!(relative("/docs", "/docs.json"), "./docs.json");
        assert_eq!(relative("/docs", "/"), "./");
        assert_eq!(relative("/internal/docs", "/docs.json"), "./../docs.json");
        assert_eq!(relative("/a/b/docs", "/a/docs.json"), "./../../a/docs.json");
    }
}
