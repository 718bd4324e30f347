//! Which documented route a path will match, found without regular expressions.
//!
//! The rate limits choose their policy from the route the router will match (SPEC §7), and
//! the access log names it. Asking actix's resource map (`match_pattern`) walks every
//! registered resource and runs a regular expression (regex-lite's Pike VM) for each
//! dynamic one; under `make bench` that was about a seventh of the server's CPU on
//! `GET /v1/contacts/{id}`, asked twice per request. Our patterns need no regular
//! expression: each segment is either literal or a `{name}` that matches one non-empty
//! segment, which is what actix's `{name}` means (`[^/]+`). So the table compares
//! segments, in registration order, first match wins, as the router does.
//!
//! The table holds the routes [`crate::routes::configure`] registers (all of `/v1` and the
//! probes); a path it does not know is asked of actix's resource map, so the unversioned
//! pages and unmatched paths are answered exactly as before. A test builds the real route
//! registrations and checks that the table and actix agree on every one of them and on
//! the paths that sit between them.

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Param,
}

/// The documented routes' patterns, in registration order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<(String, Vec<Segment>)>,
}

impl RouteTable {
    /// A table of `patterns` (duplicates, one per method, are kept once, where first seen).
    /// A pattern with a regular expression or a tail (`{id:\d+}`, `{tail}*`) is left out,
    /// so such a route falls back to actix.
    #[must_use]
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        let mut routes: Vec<(String, Vec<Segment>)> = Vec::new();
        for pattern in patterns {
            if routes.iter().any(|(known, _)| known == pattern) {
                continue;
            }
            let Some(segments) = segments_of(pattern) else {
                continue;
            };
            routes.push((pattern.to_owned(), segments));
        }
        Self { routes }
    }

    /// The pattern `path` matches, if the table has one.
    #[must_use]
    pub fn find(&self, path: &str) -> Option<&str> {
        let rest = path.strip_prefix('/')?;
        self.routes
            .iter()
            .find(|(_, segments)| matches(segments, rest))
            .map(|(pattern, _)| pattern.as_str())
    }
}

/// A pattern's segments, or `None` if it needs more than literals and `{name}`.
fn segments_of(pattern: &str) -> Option<Vec<Segment>> {
    let rest = pattern.strip_prefix('/')?;
    rest.split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let plain =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                plain.then_some(Segment::Param)
            } else if segment.contains(['{', '}', '*']) {
                None
            } else {
                Some(Segment::Literal(segment.to_owned()))
            }
        })
        .collect()
}

/// Whether `path` (without its leading `/`) has exactly these segments.
fn matches(segments: &[Segment], path: &str) -> bool {
    let mut parts = path.split('/');
    for segment in segments {
        let Some(part) = parts.next() else {
            return false;
        };
        let fits = match segment {
            Segment::Literal(literal) => part == literal,
            Segment::Param => !part.is_empty(),
        };
        if !fits {
            return false;
        }
    }
    parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use actix_web::dev::Service as _;
    use actix_web::test as actix_test;
    use actix_web::{App, HttpResponse};
    use adapters_memory::MemoryStore;

    use super::RouteTable;

    #[test]
    fn segments_match_one_by_one_and_the_first_route_wins() {
        let table = RouteTable::new([
            "/v1/contacts/batch",
            "/v1/contacts/{id}",
            "/v1/contacts/{id}/activities",
            "/v1/contacts",
            "/healthz",
        ]);
        assert_eq!(table.find("/v1/contacts/batch"), Some("/v1/contacts/batch"));
        assert_eq!(table.find("/v1/contacts/abc"), Some("/v1/contacts/{id}"));
        assert_eq!(
            table.find("/v1/contacts/abc/activities"),
            Some("/v1/contacts/{id}/activities")
        );
        assert_eq!(table.find("/v1/contacts"), Some("/v1/contacts"));
        for unknown in [
            "/v1/contacts/",
            "/v1/contacts//activities",
            "/v1/contacts/a/b",
            "/v1/Contacts",
            "/healthz/",
            "",
            "healthz",
        ] {
            assert_eq!(table.find(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn patterns_with_regular_expressions_or_tails_are_left_to_actix() {
        let table = RouteTable::new(["/files/{name:.*}", "/tail/{rest}*", "/plain/{id}"]);
        assert_eq!(table.find("/files/a"), None);
        assert_eq!(table.find("/tail/a"), None);
        assert_eq!(table.find("/plain/a"), Some("/plain/{id}"));
    }

    /// Every registered route, and the paths between them, as the real registrations
    /// serve them: the table answers what actix's resource map answers, or nothing (and
    /// then actix is asked).
    #[actix_web::test]
    async fn the_table_agrees_with_actix_on_every_registered_route() {
        let mut served = Vec::new();
        let app = App::new()
            .configure(|cfg| served = crate::routes::configure::<MemoryStore>(cfg))
            .wrap_fn(|req, _| {
                let path = req.match_info().as_str().to_owned();
                let actix = req.request().resource_map().match_pattern(&path);
                let body = serde_json::json!({"path": path, "actix": actix}).to_string();
                std::future::ready(Ok(req.into_response(HttpResponse::Ok().body(body))))
            });
        let app = actix_test::init_service(app).await;
        let table = RouteTable::new(served.iter().map(|route| route.path.as_str()));
        let mut paths: Vec<String> = Vec::new();
        for route in &served {
            let concrete = route
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "x1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            paths.push(concrete.clone());
            paths.push(format!("{concrete}/"));
            paths.push(format!("{concrete}/extra"));
            paths.push(concrete.replace("/x1", "/batch"));
            paths.push(concrete.replace("/x1", "/"));
        }
        paths.extend(["/", "/v1", "/v1/", "/nowhere", "/v1/contacts//x"].map(String::from));
        let mut hits = 0;
        for path in paths {
            let request = actix_test::TestRequest::get().uri(&path).to_request();
            let response = app.call(request).await.expect("answered");
            let answer: serde_json::Value =
                serde_json::from_slice(&actix_test::read_body(response).await).expect("json");
            let actix = answer["actix"].as_str();
            let seen = answer["path"].as_str().unwrap_or_default();
            let ours = table.find(seen);
            if ours.is_some() {
                hits += 1;
                assert_eq!(ours, actix, "{seen}: the table and actix disagree");
            }
        }
        assert!(
            hits >= served.len() / 2,
            "the table answered {hits} paths: too few"
        );
    }
}
