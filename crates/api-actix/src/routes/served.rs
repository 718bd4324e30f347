//! Route registration that keeps the list of what it serves.
//!
//! Every resource module registers its paths through [`Routes`], never on actix's
//! `ServiceConfig` directly. For each path it adds each method's handler, gives the path
//! the 405 fallback whose `Allow` names exactly those methods, and records
//! `(method, path)`. `openapi`'s tests hold the document against that list, so a route
//! cannot be served undocumented, nor documented and not served.

use actix_web::dev::Handler;
use actix_web::{FromRequest, Responder, Route, web};

/// One operation actix serves: the method and the full route pattern
/// (`GET /v1/contacts/{id}`), as the OpenAPI document names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServedRoute {
    /// Upper-case method name (`GET`).
    pub method: &'static str,
    /// The pattern with its scope prefix (`/v1/contacts/{id}`).
    pub path: String,
}

/// Registers paths on an actix `ServiceConfig` under a prefix (the scope they are in)
/// and records each operation in a [`ServedRoute`] list.
pub struct Routes<'a> {
    cfg: &'a mut web::ServiceConfig,
    prefix: &'static str,
    served: &'a mut Vec<ServedRoute>,
}

impl std::fmt::Debug for Routes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("prefix", &self.prefix)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

impl<'a> Routes<'a> {
    /// Registers on `cfg`, whose scope is `prefix` (`""` or `"/v1"`), recording in `served`.
    pub(crate) fn new(
        cfg: &'a mut web::ServiceConfig,
        prefix: &'static str,
        served: &'a mut Vec<ServedRoute>,
    ) -> Self {
        Self {
            cfg,
            prefix,
            served,
        }
    }

    /// Serves `path` (relative to the scope) with the methods `methods` adds; every other
    /// method gets 405 with `Allow` listing those, in the order they were added.
    pub fn resource(&mut self, path: &str, methods: impl FnOnce(Methods) -> Methods) -> &mut Self {
        let Methods { resource, names } = methods(Methods {
            resource: web::resource(path.to_owned()),
            names: Vec::new(),
        });
        for &method in &names {
            self.served.push(ServedRoute {
                method,
                path: format!("{}{path}", self.prefix),
            });
        }
        self.cfg
            .service(resource.default_service(super::method_not_allowed(names.join(", "))));
        self
    }
}

/// The methods of one path, each with its handler (see [`Routes::resource`]).
pub struct Methods {
    resource: actix_web::Resource,
    names: Vec<&'static str>,
}

impl std::fmt::Debug for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Methods")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

macro_rules! method {
    ($(#[$doc:meta])* $name:ident, $route:ident, $method:literal) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name<F, Args>(self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.add($method, web::$route().to(handler))
        }
    };
}

impl Methods {
    method!(
        /// `GET` answered by `handler`.
        get, get, "GET"
    );
    method!(
        /// `POST` answered by `handler`.
        post, post, "POST"
    );
    method!(
        /// `PUT` answered by `handler`.
        put, put, "PUT"
    );
    method!(
        /// `PATCH` answered by `handler`.
        patch, patch, "PATCH"
    );
    method!(
        /// `DELETE` answered by `handler`.
        delete, delete, "DELETE"
    );

    fn add(mut self, name: &'static str, route: Route) -> Self {
        self.resource = self.resource.route(route);
        self.names.push(name);
        self
    }
}
