//! Bad input of every kind: always a 4xx in the error envelope, never a 500, and the
//! table exactly as it was.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[actix_rt::test]
async fn malformed_and_mistyped_bodies_are_400_and_write_nothing() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let malformed = app
        .call_raw(
            "POST",
            "/v1/contacts",
            &acme.key,
            "application/json",
            b"{\"firstName\": ".to_vec(),
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.code(), "INVALID_JSON");

    for body in [
        json!({"firstName": 42}),
        json!({"tags": "vip"}),
        json!({"customFields": [1, 2]}),
        json!({"ownerId": "not-a-uuid"}),
        json!({"unknownField": true}),
        json!([1, 2, 3]),
    ] {
        let reply = app.post("/v1/contacts", &acme.key, &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.code(), "VALIDATION_FAILED", "{body}");
    }
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn field_rules_are_reported_per_field() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let long = "x".repeat(10_000);
    let reply = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"firstName": long, "lastName": long, "title": long, "email": "not-an-email", "phone": "call me",
                    "tags": [long], "customFields": {"nested": {"a": 1}}}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.code(), "VALIDATION_FAILED");
    let fields = reply.body["details"]["fields"]
        .as_object()
        .expect("field map");
    for field in [
        "firstName",
        "lastName",
        "title",
        "email",
        "phone",
        "customFields",
    ] {
        assert!(
            fields.contains_key(field),
            "{field} reported: {}",
            reply.body
        );
    }
    assert!(
        fields.keys().any(|k| k.starts_with("tags")),
        "tags reported: {}",
        reply.body
    );
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let mut big = br#"{"firstName": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    big.extend(br#""}"#);
    let reply = app
        .call_raw("POST", "/v1/contacts", &acme.key, "application/json", big)
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.code(), "PAYLOAD_TOO_LARGE");
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn a_body_that_is_not_json_is_415() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let reply = app
        .call_raw(
            "POST",
            "/v1/contacts",
            &acme.key,
            "text/plain",
            b"firstName=Ada".to_vec(),
        )
        .await;
    assert_eq!(reply.status, 415);
    assert_eq!(reply.code(), "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn sql_and_unicode_in_every_field_are_stored_verbatim() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let nasty = "Robert'); DROP TABLE contacts;-- ☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \"quoted\" \\ %_";
    let short = "x'); DROP TABLE contacts;-- ☃";
    let body = json!({
        "firstName": nasty, "lastName": "Zoë Ñúñez-O'Brien 李", "title": nasty,
        "email": "o'brien+tag@example.com", "tags": [short, "日本語"],
        "customFields": {short: nasty, "emoji": "🦀"}
    });
    let created = app.post("/v1/contacts", &acme.key, &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["data"]["id"].as_str().expect("id");
    let fetched = app.get(&format!("/v1/contacts/{id}"), &acme.key).await;
    assert_eq!(fetched.body["data"]["firstName"], nasty);
    assert_eq!(fetched.body["data"]["tags"], json!([short, "日本語"]));
    assert_eq!(fetched.body["data"]["customFields"][short], nasty);
    let search = app
        .get(&format!("/v1/contacts?q={}", "DROP%20TABLE"), &acme.key)
        .await;
    assert_eq!(search.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.contact_rows().await,
        1,
        "the table is still there, with one row"
    );
}

#[actix_rt::test]
async fn control_characters_and_bad_ids_are_refused() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let nul = app
        .post("/v1/contacts", &acme.key, &json!({"firstName": "a\u{0}b"}))
        .await;
    assert_eq!(nul.status, 400, "{}", nul.body);
    let nul_q = app.get("/v1/contacts?q=a%00b", &acme.key).await;
    assert_eq!(nul_q.status, 400, "{}", nul_q.body);
    for path in [
        "/v1/contacts/not-a-uuid",
        "/v1/contacts/1",
        "/v1/contacts/%27%3B--",
    ] {
        let reply = app.get(path, &acme.key).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert_eq!(reply.code(), "VALIDATION_FAILED");
    }
    let bad_limit = app.get("/v1/contacts?limit=0", &acme.key).await;
    assert_eq!(bad_limit.status, 400);
    let empty_limit = app.get("/v1/contacts?limit=", &acme.key).await;
    assert_eq!(empty_limit.status, 400);
    let bad_sort = app.get("/v1/contacts?sort=password", &acme.key).await;
    assert_eq!(bad_sort.status, 400);
    let bad_time = app
        .get("/v1/contacts?createdAfter=yesterday", &acme.key)
        .await;
    assert_eq!(bad_time.status, 400);
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn framework_errors_use_the_envelope_too() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let unknown = app.get("/v1/nothing-here", &acme.key).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "NOT_FOUND");
    let method = app
        .call(
            "PUT",
            "/v1/contacts",
            Some(&acme.key),
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(method.status, 405);
    assert_eq!(method.code(), "METHOD_NOT_ALLOWED");
    assert_eq!(method.header("allow").as_deref(), Some("GET, POST"));
}

#[actix_rt::test]
async fn request_ids_are_echoed_when_sane_and_replaced_when_not() {
    let app = spawn_app().await;
    let sane = app
        .call(
            "GET",
            "/healthz",
            None,
            None,
            &[("X-Request-Id", "trace-123.abc")],
        )
        .await;
    assert_eq!(
        sane.header("x-request-id").as_deref(),
        Some("trace-123.abc")
    );
    assert_eq!(sane.body["metadata"]["requestId"], "trace-123.abc");
    let insane = app
        .call(
            "GET",
            "/healthz",
            None,
            None,
            &[("X-Request-Id", "<script>alert(1)</script>")],
        )
        .await;
    let replaced = insane.header("x-request-id").expect("a request id");
    assert_ne!(replaced, "<script>alert(1)</script>");
    assert!(uuid::Uuid::parse_str(&replaced).is_ok());
    assert_eq!(
        insane.body["metadata"]["requestId"],
        Value::String(replaced)
    );
}

#[actix_rt::test]
async fn a_body_that_is_not_json_is_invalid_json_whatever_its_shape_on_post_put_and_patch() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let created = app
        .post("/v1/contacts", &acme.key, &json!({"firstName": "Ada"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let contact = format!("/v1/contacts/{}", created.id());
    let company = app
        .post("/v1/companies", &acme.key, &json!({"name": "Acme Ltd"}))
        .await;
    assert_eq!(company.status, 201, "{}", company.body);
    let company = format!("/v1/companies/{}", company.id());

    // Each body has a syntax error; several have a field of the wrong type, or an unknown
    // field, before it, which serde meets first.
    let bodies: &[&[u8]] = &[
        b"{\"firstName\": ",
        b"{\"firstName\": 42, \"lastName\": ",
        b"{\"unknownField\": true,",
        b"{\"firstName\": \"Ada\"} trailing",
        b"{\"firstName\": \"Ada\"}{}",
        b"{\"firstName\": 42} x",
        b"NaN",
        b"{\"firstName\": NaN}",
        b"{\"tags\": [1, NaN]}",
        b"[1, 2",
        b"[1, 2] [",
        b"",
        b"   ",
        b"{'firstName': 'Ada'}",
        b"{\"firstName\": \"Ada\",}",
    ];
    let targets = [
        ("POST", "/v1/contacts".to_owned(), "application/json"),
        ("PUT", contact.clone(), "application/json"),
        ("PATCH", contact.clone(), "application/json"),
        ("PATCH", contact.clone(), "application/merge-patch+json"),
        ("POST", "/v1/companies".to_owned(), "application/json"),
        ("PUT", company.clone(), "application/json"),
        ("PATCH", company.clone(), "application/merge-patch+json"),
    ];
    for (method, path, content_type) in &targets {
        for body in bodies {
            let reply = app
                .call_raw(method, path, &acme.key, content_type, body.to_vec())
                .await;
            let shown = String::from_utf8_lossy(body);
            assert_eq!(
                (reply.status, reply.code()),
                (400, "INVALID_JSON"),
                "{method} {path} ({content_type}) {shown:?}: {}",
                reply.body
            );
            assert!(
                reply.body["details"]["fields"].is_null(),
                "{method} {path} {shown:?} names a field: {}",
                reply.body
            );
        }
    }

    // Well-formed JSON of the wrong shape is still a validation error naming the body.
    for (method, path, content_type) in &targets {
        let reply = app
            .call_raw(
                method,
                path,
                &acme.key,
                content_type,
                b"{\"firstName\": 42}".to_vec(),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "VALIDATION_FAILED"),
            "{method} {path}: {}",
            reply.body
        );
    }
    assert_eq!(app.contact_rows().await, 1);
    let after = app.get(&contact, &acme.key).await;
    assert_eq!(after.body["data"]["firstName"], "Ada");
    assert_eq!(
        after.body["data"]["version"],
        created.body["data"]["version"]
    );
}

#[actix_rt::test]
async fn query_parameter_errors_name_their_fields() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let unknown = app.get("/v1/contacts?bogus=1", &acme.key).await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(unknown.code(), "VALIDATION_FAILED");
    assert!(
        unknown.body["details"]["fields"]["bogus"].is_array(),
        "{}",
        unknown.body
    );
    let mistyped = app.get("/v1/contacts?limit=lots", &acme.key).await;
    assert_eq!(mistyped.status, 400, "{}", mistyped.body);
    let fields = mistyped.body["details"]["fields"]
        .as_object()
        .expect("details.fields");
    assert!(!fields.is_empty(), "{}", mistyped.body);
    assert!(mistyped.body["details"]["query"].is_null());
}

#[actix_rt::test]
async fn a_bad_body_without_a_credential_is_401_on_authenticated_routes_and_400_on_public_ones() {
    let app = spawn_app().await;
    for body in [
        b"{\"firstName\": 42}".to_vec(),
        b"{\"firstName\": ".to_vec(),
    ] {
        let reply = app
            .client
            .post(format!("{}/v1/contacts", app.address))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.clone())
            .await
            .expect("request sent");
        assert_eq!(
            reply.status().as_u16(),
            401,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let login = app
            .client
            .post(format!("{}/v1/auth/login", app.address))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.clone())
            .await
            .expect("request sent");
        assert_eq!(
            login.status().as_u16(),
            400,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}
