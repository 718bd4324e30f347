//! The finishing pass over the generated document: what the annotations cannot say, or
//! would say once per handler, added in one place so every route (present and future)
//! gets it.

use serde_json::{Value, json};

/// What the annotations cannot say, or would say once per handler, added to the
/// generated document in one place so every route (present and future) gets it:
/// unique operation ids, named enums and `$ref`s instead of inline copies (utoipa
/// inlines a generic's argument, juhaku/utoipa#1586), the headers of SPEC §3, the
/// merge-patch media type, and per operation only the error statuses it can give.
pub(super) fn finish(doc: &mut Value) {
    add_components(doc);
    if let Some(events) =
        doc.pointer_mut("/paths/~1v1~1events/get/responses/200/content/application~1json/schema")
    {
        *events = schema_ref("Success_Vec_Event");
    }
    reference_components(doc);
    type_response_fields(doc);
    add_cross_field_rules(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if let Some(operation) = operation.as_object_mut() {
                finish_operation(path, method, operation, &mut seen);
            }
        }
    }
}

/// Named schemas and headers referenced below.
fn add_components(doc: &mut Value) {
    let event_type = doc
        .pointer("/paths/~1v1~1events/get/parameters")
        .and_then(Value::as_array)
        .and_then(|params| params.iter().find(|p| p["name"] == "type"))
        .map(|p| p["schema"].clone());
    let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) else {
        return;
    };
    let schemas = components.entry("schemas").or_insert_with(|| json!({}));
    if let Some(schemas) = schemas.as_object_mut() {
        let codes: Vec<&str> = crate::error::ErrorCode::ALL
            .iter()
            .map(|code| code.as_str())
            .collect();
        schemas.insert(
            "ErrorCode".into(),
            json!({"type": "string", "enum": codes,
                   "description": "A stable, machine-readable error code (SPEC §3); the status is fixed per code."}),
        );
        if let Some(mut event_type) = event_type {
            if let Some(object) = event_type.as_object_mut() {
                object.insert("description".into(), json!("The type of an event."));
            }
            schemas.insert("EventType".into(), event_type);
        }
        schemas.insert(
            "Event".into(),
            json!({
                "type": "object",
                "description": "An event of the tenant, exactly as webhooks deliver it.",
                "required": ["id", "type", "tenantId", "createdAt", "data"],
                "properties": {
                    "id": {"type": "string", "pattern": "^evt_[0-9a-z]+$", "description": "The event id, the `webhook-id` header of its deliveries."},
                    "type": {"$ref": "#/components/schemas/EventType"},
                    "tenantId": {"type": "string", "format": "uuid"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "data": {
                        "type": "object",
                        "description": "`object` (the resource after the change), `previous` (before), `changedFields`; `lead.stage_changed` adds `fromStageId` and `toStageId`.",
                        "properties": {
                            "object": {"type": ["object", "null"]},
                            "previous": {"type": ["object", "null"]},
                            "changedFields": {"type": "array", "items": {"type": "string"}},
                            "fromStageId": {"type": "string", "format": "uuid"},
                            "toStageId": {"type": "string", "format": "uuid"}
                        }
                    }
                }
            }),
        );
        let enumeration = |description: &str, values: &[&str]| json!({"type": "string", "enum": values, "description": description});
        let deliveries: Vec<&str> = [
            domain::webhook::DeliveryStatus::Pending,
            domain::webhook::DeliveryStatus::Succeeded,
            domain::webhook::DeliveryStatus::Failed,
        ]
        .iter()
        .map(|status| status.as_str())
        .collect();
        schemas.insert(
            "DeliveryStatus".into(),
            enumeration("Where a webhook delivery stands.", &deliveries),
        );
        let qr: Vec<&str> = [
            domain::identity::QrStatus::Pending,
            domain::identity::QrStatus::Scanned,
            domain::identity::QrStatus::Linked,
            domain::identity::QrStatus::Consumed,
            domain::identity::QrStatus::Expired,
            domain::identity::QrStatus::Cancelled,
        ]
        .iter()
        .map(|status| status.as_str())
        .collect();
        schemas.insert(
            "QrStatus".into(),
            enumeration("Where a QR login request stands.", &qr),
        );
        schemas.insert(
            "BatchItemStatus".into(),
            enumeration(
                "What a batch did with one item.",
                &["created", "updated", "unchanged", "error"],
            ),
        );
        schemas.insert(
            "CredentialKind".into(),
            enumeration(
                "The caller's credential: `user` (a session) or `apiKey`.",
                &["user", "apiKey"],
            ),
        );
        schemas.insert(
            "Success_Vec_Event".into(),
            json!({
                "type": "object",
                "description": "The success envelope.",
                "required": ["success", "data", "metadata"],
                "properties": {
                    "success": {"type": "boolean", "description": "Always true."},
                    "data": {"type": "array", "items": schema_ref("Event")},
                    "metadata": schema_ref("Metadata")
                }
            }),
        );
        if let Some(code) = schemas
            .get_mut("Failure")
            .and_then(|f| f.pointer_mut("/properties/code"))
        {
            *code = json!({"$ref": "#/components/schemas/ErrorCode"});
        }
    }
    let string =
        |description: &str| json!({"description": description, "schema": {"type": "string"}});
    let integer = |description: &str| json!({"description": description, "schema": {"type": "integer", "minimum": 0}});
    components.insert(
        "headers".into(),
        json!({
            "X-Request-Id": string("The request id, equal to `metadata.requestId`: the caller's when it is a sane token, else a new UUID."),
            "ETag": string("The resource's version, quoted (`\"3\"`); send it back in `If-Match`."),
            "Location": string("The path of the created resource."),
            "X-RateLimit-Limit": integer("Requests allowed in the window of the policy that applied."),
            "X-RateLimit-Remaining": integer("Requests left in the current window."),
            "X-RateLimit-Reset": integer("When the window resets, Unix epoch seconds (the same instant as `t` of `RateLimit`)."),
            "RateLimit-Policy": string("IETF draft: `\"name\";q=quota;w=window-seconds`."),
            "RateLimit": string("IETF draft: `\"name\";r=remaining;t=seconds-until-reset`."),
            "Retry-After": integer("Seconds until the next request is allowed."),
            "Idempotent-Replayed": {"description": "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`.",
                                    "schema": {"type": "string", "enum": ["true"]}},
            "Original-Request-Id": string("On a replay: the request id of the request that made the stored response."),
        }),
    );
}

/// Response fields the DTOs keep as strings, typed with the enum each one takes. Runs
/// after [`reference_components`], so the envelopes (now `$ref`s) see the change too.
fn type_response_fields(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (schema, property, component) in [
        ("LeadResponse", "status", "StageKindDto"),
        ("StageResponse", "kind", "StageKindDto"),
        ("ActivityResponse", "type", "ActivityTypeDto"),
        ("ApiKeyResponse", "role", "RoleName"),
        ("CreatedApiKeyResponse", "role", "RoleName"),
        ("InvitationResponse", "role", "RoleName"),
        ("MemberResponse", "role", "RoleName"),
        ("MeResponse", "role", "RoleName"),
        ("MeResponse", "kind", "CredentialKind"),
        ("CompanyResponse", "size", "CompanySizeDto"),
        ("DeliveryResponse", "status", "DeliveryStatus"),
        ("DeliveryResponse", "eventType", "EventType"),
        ("BatchItemResult", "status", "BatchItemStatus"),
        ("QrStatusResponse", "status", "QrStatus"),
        ("QrGenerateResponse", "status", "QrStatus"),
        ("ScanResponse", "status", "QrStatus"),
    ] {
        if !schemas.contains_key(component) {
            continue;
        }
        let Some(field) = schemas
            .get_mut(schema)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(property))
        else {
            continue;
        };
        let nullable = field
            .get("type")
            .and_then(Value::as_array)
            .is_some_and(|types| types.iter().any(|t| t == "null"));
        let description = field.get("description").cloned();
        let mut typed = if nullable {
            json!({"oneOf": [schema_ref(component), {"type": "null"}]})
        } else {
            schema_ref(component)
        };
        if let (Some(description), Some(object)) = (description, typed.as_object_mut()) {
            object.insert("description".into(), description);
        }
        *field = typed;
    }
}

/// Rules between fields of a body that the derive cannot state, stated as the domain
/// checks them, so that generated bodies (and clients) meet them: a lead's `value` and
/// `currency` come together or not at all (`domain::lead`), an activity is linked to a
/// contact, a company or a lead (`domain::activity`). Patches are checked against the
/// stored record, which no schema knows, so they carry no such rule.
fn add_cross_field_rules(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if let Some(Value::Object(lead)) = schemas.get_mut("LeadBody") {
        lead.insert(
            "anyOf".into(),
            json!([
                {"properties": {"value": {"type": "null"}, "currency": {"type": "null"}}},
                {"required": ["value", "currency"],
                 "properties": {"value": {"type": "integer"}, "currency": {"type": "string"}}}
            ]),
        );
    }
    if let Some(Value::Object(activity)) = schemas.get_mut("ActivityBody") {
        let linked =
            |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
        activity.insert(
            "anyOf".into(),
            json!([linked("contactId"), linked("companyId"), linked("leadId")]),
        );
    }
    if let Some(expires) = schemas
        .get_mut("CreateApiKeyBody")
        .and_then(|body| body.pointer_mut("/properties/expiresAt"))
        .and_then(Value::as_object_mut)
    {
        // Must be in the future (the server's clock: no schema can say); the example is.
        expires.insert("example".into(), json!("2099-01-01T00:00:00Z"));
    }
}

/// Replaces each inline copy of a named schema (object or enum) with a `$ref` to it,
/// keeping the field's own description. A nullable copy becomes `oneOf [$ref, null]`.
fn reference_components(doc: &mut Value) {
    let named: Vec<(String, Value, Option<Value>)> = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| {
            schemas
                .iter()
                .filter(|(name, schema)| !name.starts_with("Success_") && is_worth_naming(schema))
                .map(|(name, schema)| {
                    (
                        name.clone(),
                        canonical(schema),
                        schema.get("description").cloned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(paths) = doc.get_mut("paths") {
        replace_inline(paths, &named, None);
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if let Some(object) = schema.as_object_mut() {
                for child in object.values_mut() {
                    replace_inline(child, &named, Some(name));
                }
            }
        }
    }
}

/// Objects with properties and enums: a bare `{"type": "object"}` names nothing.
fn is_worth_naming(schema: &Value) -> bool {
    ["properties", "enum", "allOf", "oneOf"]
        .iter()
        .any(|word| schema.get(word).is_some())
}

/// A schema without the words that differ between a type and a field of that type.
fn canonical(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        for word in ["description", "example", "examples", "title"] {
            object.remove(word);
        }
    }
    schema
}

/// The same schema with `null` taken out of its types and enum values, if it allowed null.
fn without_null(schema: &Value) -> Option<Value> {
    let mut schema = schema.clone();
    let object = schema.as_object_mut()?;
    let types = object.get("type")?.as_array()?;
    if !types.iter().any(|t| t == "null") {
        return None;
    }
    let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
    let single = match rest.as_slice() {
        [one] => one.clone(),
        _ => Value::Array(rest),
    };
    object.insert("type".into(), single);
    if let Some(values) = object.get_mut("enum").and_then(Value::as_array_mut) {
        values.retain(|v| !v.is_null());
    }
    Some(schema)
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn replace_inline(value: &mut Value, named: &[(String, Value, Option<Value>)], skip: Option<&str>) {
    match value {
        Value::Object(object) => {
            if !object.contains_key("$ref") {
                let here = canonical(&Value::Object(object.clone()));
                let description = object.get("description").cloned();
                let found = named
                    .iter()
                    .filter(|(name, _, _)| Some(name.as_str()) != skip)
                    .find_map(|(name, schema, own_description)| {
                        let replacement = if *schema == here {
                            schema_ref(name)
                        } else if without_null(&here).as_ref() == Some(schema) {
                            json!({ "oneOf": [schema_ref(name), {"type": "null"}] })
                        } else {
                            return None;
                        };
                        Some((replacement, own_description))
                    });
                if let Some((mut replacement, own_description)) = found {
                    // The field's own words stay; the type's are behind the `$ref`.
                    if let (Some(description), Some(fields)) =
                        (description, replacement.as_object_mut())
                        && own_description.as_ref() != Some(&description)
                    {
                        fields.insert("description".into(), description);
                    }
                    *value = replacement;
                    return;
                }
            }
            for child in object.values_mut() {
                replace_inline(child, named, skip);
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_inline(item, named, skip);
            }
        }
        _ => {}
    }
}

/// Operations that answer 404 for an id outside their path: `GET /v1/events?after=evt_…`
/// names an event that must be in the tenant's log.
const NOT_FOUND_WITHOUT_PATH_ID: [(&str, &str); 1] = [("get", "/v1/events")];

/// `app::idempotency::parse_key` as a pattern: 1-255 printable ASCII characters (space
/// included), or the same in double quotes; bare keys neither start nor end with a space
/// (HTTP trims those) and are not themselves quoted.
const IDEMPOTENCY_KEY_PATTERN: &str = "^(?:\"[\\x20-\\x7e]{1,255}\"|[\\x21-\\x7e]|[\\x21\\x23-\\x7e][\\x20-\\x7e]{0,253}[\\x21-\\x7e]|[\\x21-\\x7e][\\x20-\\x7e]{0,253}[\\x21\\x23-\\x7e])$";

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// The resource (first path segment after `/v1`) and the handler's name:
/// `/v1/contacts` + `list` → `contactsList`, `/v1/api-keys` + `create` →
/// `apiKeysCreate`, `/v1/contacts/batch` → `contactsBatch`, `/healthz` → `healthz`.
fn operation_name(path: &str, handler: &str) -> String {
    let mut segments = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "v1" && !s.starts_with('{'));
    let resource = segments.next().unwrap_or("api");
    let handler = handler.strip_suffix("_handler").unwrap_or(handler);
    let handler = if path.ends_with("/batch") {
        "batch"
    } else {
        handler
    };
    if handler.starts_with(resource) || resource.starts_with(handler) {
        camel_case(handler)
    } else {
        camel_case(&format!("{resource}_{handler}"))
    }
}

/// `api-keys_create` → `apiKeysCreate`.
fn camel_case(words: &str) -> String {
    let mut id = String::new();
    let mut upper = false;
    for (index, c) in words.chars().enumerate() {
        if c == '-' || c == '_' {
            upper = index > 0;
        } else if upper {
            id.extend(c.to_uppercase());
            upper = false;
        } else {
            id.push(c);
        }
    }
    id
}

fn finish_operation(
    path: &str,
    method: &str,
    operation: &mut serde_json::Map<String, Value>,
    seen: &mut std::collections::BTreeSet<String>,
) {
    // Unique ids: utoipa takes the handler's name, and every resource has a `list`.
    let handler = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or(method)
        .to_owned();
    let mut id = operation_name(path, &handler);
    let mut suffix = 2;
    while seen.contains(&id) {
        id = format!("{}{suffix}", operation_name(path, &handler));
        suffix += 1;
    }
    seen.insert(id.clone());
    operation.insert("operationId".into(), Value::String(id));

    let authenticated = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if !authenticated {
        // Public, said explicitly (linters ask every operation to state its security).
        operation.insert("security".into(), json!([]));
    }
    let params: Vec<(String, String)> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .map(|params| {
            params
                .iter()
                .map(|p| {
                    (
                        p["in"].as_str().unwrap_or_default().to_owned(),
                        p["name"].as_str().unwrap_or_default().to_ascii_lowercase(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let has_path_id = params.iter().any(|(place, _)| place == "path");
    let has_query = params.iter().any(|(place, _)| place == "query");
    let has_if_match = params
        .iter()
        .any(|(place, name)| place == "header" && name == "if-match");
    let has_body = operation.contains_key("requestBody");
    let is_write = matches!(method, "post" | "put" | "patch" | "delete");
    let idempotent_post = method == "post" && authenticated;
    let versioned = path.starts_with("/v1/");

    if idempotent_post && !params.iter().any(|(_, name)| name == "idempotency-key") {
        let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
        if let Some(parameters) = parameters.as_array_mut() {
            parameters.push(json!({
                "name": "Idempotency-Key",
                "in": "header",
                "required": false,
                "description": "Makes the POST safe to retry: the same key and body within 24 h answer the stored response again (`Idempotent-Replayed: true`); the same key with another body is 422 IDEMPOTENCY_KEY_REUSED; while the first is in flight, 409. Bare or in double quotes.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 257, "pattern": IDEMPOTENCY_KEY_PATTERN}
            }));
        }
    }

    // PATCH bodies are JSON merge patches (RFC 7396), under either media type.
    if method == "patch"
        && let Some(content) = operation
            .get_mut("requestBody")
            .and_then(|b| b.get_mut("content"))
            .and_then(Value::as_object_mut)
        && let Some(json_body) = content.get("application/json").cloned()
    {
        content.insert("application/merge-patch+json".into(), json_body);
    }

    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // Only the error statuses this operation can give.
    responses.retain(|status, _| {
        let code: u16 = status.parse().unwrap_or(0);
        match code {
            0..=399 => true,
            400 => has_body || has_query || has_path_id || idempotent_post || !authenticated,
            401 | 403 | 429 | 500 | 503 => true,
            404 => {
                has_path_id || !authenticated || NOT_FOUND_WITHOUT_PATH_ID.contains(&(method, path))
            }
            405 => false,
            409 => is_write || !authenticated,
            412 => has_if_match,
            413 | 415 => has_body,
            422 => idempotent_post,
            _ => !authenticated,
        }
    });
    if idempotent_post && !responses.contains_key("422") {
        responses.insert(
            "422".into(),
            failure_response(
                "IDEMPOTENCY_KEY_REUSED: this Idempotency-Key was used with another request",
            ),
        );
    }
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        let headers = response.entry("headers").or_insert_with(|| json!({}));
        let Some(headers) = headers.as_object_mut() else {
            continue;
        };
        headers.insert("X-Request-Id".into(), header_ref("X-Request-Id"));
        if versioned {
            for name in [
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "RateLimit-Policy",
                "RateLimit",
            ] {
                headers.insert(name.into(), header_ref(name));
            }
        }
        match status.as_str() {
            "429" | "503" => {
                headers.insert("Retry-After".into(), header_ref("Retry-After"));
            }
            "201" => {
                headers.insert("Location".into(), header_ref("Location"));
                headers.insert("ETag".into(), header_ref("ETag"));
            }
            "200" if has_path_id && matches!(method, "get" | "put" | "patch") => {
                headers.insert("ETag".into(), header_ref("ETag"));
            }
            _ => {}
        }
        if idempotent_post && status.starts_with('2') {
            headers.insert(
                "Idempotent-Replayed".into(),
                header_ref("Idempotent-Replayed"),
            );
            headers.insert(
                "Original-Request-Id".into(),
                header_ref("Original-Request-Id"),
            );
        }
    }
}

fn failure_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema_ref("Failure")}}
    })
}
