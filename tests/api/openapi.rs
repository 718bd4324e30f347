//! The served OpenAPI document as validators and generators read it: unique operation
//! ids, named components referenced rather than copied, the headers and statuses of
//! SPEC §3. (scripts/api-check.sh runs openapi-spec-validator, openapi-python-client and
//! schemathesis on the same document.)

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

async fn document() -> Value {
    let app = spawn_app().await;
    let reply = app.call("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(reply.status, 200);
    reply.body
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((method.to_owned(), path.clone(), operation));
            }
        }
    }
    found
}

#[actix_rt::test]
async fn every_operation_has_its_own_operation_id() {
    let doc = document().await;
    let mut seen = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(
            seen.insert(id.to_owned()),
            "{method} {path}: operationId {id} repeats"
        );
    }
    assert!(
        seen.contains("contactsList") && seen.contains("leadsList"),
        "{seen:?}"
    );
}

#[actix_rt::test]
async fn every_component_is_referenced_and_envelopes_reference_resources() {
    let doc = document().await;
    let text = doc.to_string();
    for name in doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        assert!(
            text.contains(&format!("\"#/components/schemas/{name}\"")),
            "component {name} is never referenced (an inline copy instead?)"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Success_ContactResponse"]["properties"]["data"]["$ref"],
        "#/components/schemas/ContactResponse"
    );
    assert_eq!(
        schemas["Success_Vec_ContactResponse"]["properties"]["data"]["items"]["$ref"],
        "#/components/schemas/ContactResponse"
    );
    assert_eq!(
        schemas["Failure"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    let codes: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in [
        "INVALID_JSON",
        "IDEMPOTENCY_KEY_REUSED",
        "SLOW_DOWN",
        "UNAVAILABLE",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    for (schema, field, component) in [
        ("LeadResponse", "status", "StageKindDto"),
        ("ActivityResponse", "type", "ActivityTypeDto"),
        ("DeliveryResponse", "status", "DeliveryStatus"),
        ("MemberResponse", "role", "RoleName"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["$ref"],
            format!("#/components/schemas/{component}"),
            "{schema}.{field}"
        );
    }
    let sort = doc["paths"]["/v1/contacts"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "sort")
        .expect("sort parameter");
    assert_eq!(sort["schema"]["$ref"], "#/components/schemas/ContactSort");
    assert_eq!(
        doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/Success_Vec_Event"
    );
}

#[actix_rt::test]
async fn headers_media_types_and_error_statuses_are_declared_per_operation() {
    let doc = document().await;
    for name in [
        "X-Request-Id",
        "ETag",
        "Location",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "RateLimit",
        "RateLimit-Policy",
        "Retry-After",
        "Idempotent-Replayed",
        "Original-Request-Id",
    ] {
        assert!(
            doc["components"]["headers"].get(name).is_some(),
            "header {name}"
        );
    }
    for (method, path, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            assert!(
                response["headers"].get("X-Request-Id").is_some(),
                "{method} {path} {status}: no X-Request-Id"
            );
        }
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let params: Vec<(String, String)> = operation["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p["in"].as_str().unwrap_or_default().to_owned(),
                            p["name"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let has = |status: &str| responses.contains_key(status);
        assert!(!has("405"), "{method} {path} lists 405");
        if secured {
            for status in ["401", "403", "429", "500", "503"] {
                assert!(has(status), "{method} {path} lacks {status}");
            }
            // `GET /v1/events?after=evt_…` names an event that must exist.
            let names_a_resource = params.iter().any(|(place, _)| place == "path")
                || (method == "get" && path == "/v1/events");
            assert_eq!(
                has("404"),
                names_a_resource,
                "{method} {path}: 404 only with an id"
            );
            assert_eq!(
                has("422"),
                method == "post",
                "{method} {path}: 422 only on POST"
            );
            assert_eq!(
                params
                    .iter()
                    .any(|(place, name)| place == "header" && name == "Idempotency-Key"),
                method == "post",
                "{method} {path}: Idempotency-Key on POST"
            );
            if method == "post" {
                let success = responses
                    .iter()
                    .find(|(status, _)| status.starts_with('2'))
                    .map(|(_, r)| r)
                    .expect("a 2xx");
                assert!(success["headers"].get("Idempotent-Replayed").is_some());
            }
        }
        assert_eq!(
            has("412"),
            params
                .iter()
                .any(|(place, name)| place == "header" && name == "If-Match"),
            "{method} {path}: 412 only with If-Match"
        );
        if responses.contains_key("429") {
            assert!(responses["429"]["headers"].get("Retry-After").is_some());
        }
        if let Some(created) = responses.get("201") {
            assert!(
                created["headers"].get("Location").is_some(),
                "{method} {path}"
            );
        }
        if method == "patch"
            && let Some(content) = operation["requestBody"]["content"].as_object()
        {
            assert!(
                content.contains_key("application/merge-patch+json"),
                "{method} {path}: no merge-patch media type"
            );
        }
    }
    let contact = &doc["paths"]["/v1/contacts/{id}"]["get"]["responses"]["200"]["headers"];
    assert!(contact.get("ETag").is_some());
}
