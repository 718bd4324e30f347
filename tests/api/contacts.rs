//! Contacts over HTTP: CRUD round trips, ETags, uniqueness, lists.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn ada() -> Value {
    json!({
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "Ada@Example.com",
        "phone": "+44 20 7946 0000",
        "title": "Analyst",
        "tags": ["vip", "VIP", "math"],
        "customFields": {"source": "conference", "score": 7, "active": true}
    })
}

#[actix_rt::test]
async fn a_contact_goes_through_create_read_patch_replace_and_delete() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;

    let created = app.post("/v1/contacts", &acme.key, &ada()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["success"], true);
    let data = &created.body["data"];
    let id = data["id"].as_str().expect("id").to_owned();
    assert_eq!(data["email"], "ada@example.com", "e-mail is normalised");
    assert_eq!(
        data["tags"],
        json!(["vip", "math"]),
        "tags de-duplicated case-insensitively"
    );
    assert_eq!(data["version"], 1);
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/contacts/{id}"))
    );
    assert_eq!(
        created.header("x-request-id").as_deref(),
        created.body["metadata"]["requestId"].as_str()
    );

    let fetched = app.get(&format!("/v1/contacts/{id}"), &acme.key).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["data"], *data);

    let patched = app
        .call(
            "PATCH",
            &format!("/v1/contacts/{id}"),
            Some(&acme.key),
            Some(&json!({"title": null, "lastName": "King"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["data"]["title"], Value::Null);
    assert_eq!(patched.body["data"]["lastName"], "King");
    assert_eq!(
        patched.body["data"]["firstName"], "Ada",
        "absent fields are kept"
    );
    assert_eq!(patched.body["data"]["version"], 2);
    assert_eq!(patched.header("etag").as_deref(), Some("\"2\""));

    let replaced = app
        .call(
            "PUT",
            &format!("/v1/contacts/{id}"),
            Some(&acme.key),
            Some(&json!({"firstName": "Augusta", "email": "augusta@example.com"})),
            &[],
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        replaced.body["data"]["lastName"],
        Value::Null,
        "PUT clears what it leaves out"
    );
    assert_eq!(replaced.body["data"]["tags"], json!([]));
    assert_eq!(replaced.body["data"]["version"], 3);

    let deleted = app
        .call(
            "DELETE",
            &format!("/v1/contacts/{id}"),
            Some(&acme.key),
            None,
            &[("If-Match", "\"3\"")],
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["data"], json!({"id": id, "deleted": true}));

    let gone = app.get(&format!("/v1/contacts/{id}"), &acme.key).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "NOT_FOUND");
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let created = app.post("/v1/contacts", &acme.key, &ada()).await;
    let id = created.body["data"]["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/contacts/{id}");
    let first = app
        .call(
            "PATCH",
            &path,
            Some(&acme.key),
            Some(&json!({"title": "CTO"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(first.status, 200);

    for (method, body) in [
        ("PATCH", Some(json!({"title": "CEO"}))),
        ("PUT", Some(ada())),
        ("DELETE", None),
    ] {
        let stale = app
            .call(
                method,
                &path,
                Some(&acme.key),
                body.as_ref(),
                &[("If-Match", "\"1\"")],
            )
            .await;
        assert_eq!(stale.status, 412, "{method}: {}", stale.body);
        assert_eq!(stale.code(), "PRECONDITION_FAILED");
        assert_eq!(stale.body["details"]["currentEtag"], "\"2\"");
    }
    let now = app.get(&path, &acme.key).await;
    assert_eq!(now.body["data"]["title"], "CTO");
    assert_eq!(now.body["data"]["version"], 2);

    let any = app
        .call(
            "PATCH",
            &path,
            Some(&acme.key),
            Some(&json!({"title": "CEO"})),
            &[("If-Match", "*")],
        )
        .await;
    assert_eq!(any.status, 200, "If-Match: * matches any current version");
}

#[actix_rt::test]
async fn a_taken_email_is_409_whatever_its_case_and_nothing_is_written() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    assert_eq!(
        app.post("/v1/contacts", &acme.key, &ada()).await.status,
        201
    );
    let again = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"email": "ADA@example.COM"}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.code(), "CONFLICT");
    assert!(again.body["details"]["fields"]["email"].is_array());
    assert_eq!(app.contact_rows().await, 1);

    let other = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"email": "grace@example.com"}),
        )
        .await;
    let other_id = other.body["data"]["id"].as_str().expect("id").to_owned();
    let clash = app
        .call(
            "PATCH",
            &format!("/v1/contacts/{other_id}"),
            Some(&acme.key),
            Some(&json!({"email": "ada@example.com"})),
            &[],
        )
        .await;
    assert_eq!(
        clash.status, 409,
        "an update cannot take a used address either"
    );

    let globex = app.tenant("Globex").await;
    let elsewhere = app.post("/v1/contacts", &globex.key, &ada()).await;
    assert_eq!(elsewhere.status, 201, "uniqueness is per tenant");
}

/// Walks every page of `query`, inserting a contact after each page.
async fn walk(
    app: &crate::helpers::TestApp,
    key: &str,
    query: &str,
    insert_while_walking: bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut inserted = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/contacts?{query}&cursor={c}"),
            None => format!("/v1/contacts?{query}"),
        };
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for item in page.body["data"].as_array().expect("list") {
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        let pagination = &page.body["metadata"]["pagination"];
        if insert_while_walking {
            inserted += 1;
            let body = json!({"lastName": format!("Late {inserted}"), "email": format!("late-{}@example.com", uuid::Uuid::new_v4().simple())});
            assert_eq!(app.post("/v1/contacts", key, &body).await.status, 201);
        }
        if pagination["hasMore"] == true {
            cursor = Some(
                pagination["nextCursor"]
                    .as_str()
                    .expect("next cursor")
                    .to_owned(),
            );
        } else {
            assert_eq!(pagination["nextCursor"], Value::Null);
            break;
        }
        assert!(seen.len() < 1000, "pagination terminates");
    }
    seen
}

#[actix_rt::test]
async fn pagination_walks_every_row_exactly_once_while_rows_are_inserted() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let mut originals = HashSet::new();
    for i in 0..23 {
        let body =
            json!({"lastName": format!("Person {}", i % 4), "email": format!("p{i}@example.com")});
        let created = app.post("/v1/contacts", &acme.key, &body).await;
        originals.insert(created.body["data"]["id"].as_str().expect("id").to_owned());
    }
    for sort in [
        "createdAt",
        "-createdAt",
        "lastName",
        "-lastName",
        "email",
        "-updatedAt",
    ] {
        let seen = walk(&app, &acme.key, &format!("limit=5&sort={sort}"), true).await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no row twice with sort {sort}");
        for id in &originals {
            assert!(unique.contains(id), "row {id} missed with sort {sort}");
        }
    }
}

#[actix_rt::test]
async fn lists_filter_search_and_sort() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let people = [
        json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "tags": ["vip"]}),
        json!({"firstName": "Grace", "lastName": "Hopper", "email": "grace@navy.mil", "phone": "555 0100"}),
        json!({"firstName": "Alan", "lastName": "Turing", "email": "alan@example.org", "tags": ["vip", "uk"]}),
    ];
    for person in &people {
        assert_eq!(
            app.post("/v1/contacts", &acme.key, person).await.status,
            201
        );
    }
    let names = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["lastName"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let by_name = app.get("/v1/contacts?sort=lastName", &acme.key).await;
    assert_eq!(names(&by_name), ["Hopper", "Lovelace", "Turing"]);
    let q = app
        .get("/v1/contacts?q=LOVE&sort=lastName", &acme.key)
        .await;
    assert_eq!(names(&q), ["Lovelace"], "q is case-insensitive");
    let q_phone = app.get("/v1/contacts?q=0100", &acme.key).await;
    assert_eq!(names(&q_phone), ["Hopper"], "q searches phone numbers");
    let wildcard = app.get("/v1/contacts?q=%25", &acme.key).await;
    assert_eq!(
        names(&wildcard),
        Vec::<String>::new(),
        "LIKE wildcards in q are literal"
    );
    let tagged = app
        .get("/v1/contacts?tag=vip&sort=-lastName", &acme.key)
        .await;
    assert_eq!(names(&tagged), ["Turing", "Lovelace"]);
    let email = app
        .get("/v1/contacts?email=GRACE@navy.mil", &acme.key)
        .await;
    assert_eq!(names(&email), ["Hopper"]);
    let future = app
        .get("/v1/contacts?createdAfter=2999-01-01T00:00:00Z", &acme.key)
        .await;
    assert_eq!(names(&future), Vec::<String>::new());
    let past = app
        .get("/v1/contacts?updatedAfter=2000-01-01T00:00:00Z", &acme.key)
        .await;
    assert_eq!(names(&past).len(), 3);
}

#[actix_rt::test]
async fn a_cursor_only_works_with_the_sort_it_was_made_for() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    for i in 0..3 {
        app.post(
            "/v1/contacts",
            &acme.key,
            &json!({"email": format!("c{i}@example.com")}),
        )
        .await;
    }
    let first = app.get("/v1/contacts?limit=1&sort=email", &acme.key).await;
    let cursor = first.body["metadata"]["pagination"]["nextCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let same = app
        .get(&format!("/v1/contacts?limit=1&cursor={cursor}"), &acme.key)
        .await;
    assert_eq!(same.status, 200, "the cursor carries its sort");
    assert_eq!(same.body["data"][0]["email"], "c1@example.com");
    let other = app
        .get(
            &format!("/v1/contacts?limit=1&sort=-createdAt&cursor={cursor}"),
            &acme.key,
        )
        .await;
    assert_eq!(other.status, 400);
    assert!(other.body["details"]["fields"]["cursor"].is_array());
    let forged = app.get("/v1/contacts?cursor=not-a-cursor", &acme.key).await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.code(), "VALIDATION_FAILED");
}

#[actix_rt::test]
async fn custom_field_numbers_at_the_edge_of_f64_round_trip_exactly() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let raw = br#"{"customFields": {"min": -1.7976931348623157e308, "max": 1.7976931348623157e308, "odd": 1.0846446354745254e293, "tiny": 1.5e-300, "big": 18446744073709551615, "neg": -9223372036854775808}}"#;
    let created = app
        .call_raw(
            "POST",
            "/v1/contacts",
            &acme.key,
            "application/json",
            raw.to_vec(),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["data"]["id"].as_str().expect("id");
    let fetched = app.get(&format!("/v1/contacts/{id}"), &acme.key).await;
    let fields = &fetched.body["data"]["customFields"];
    assert_eq!(fields["min"].as_f64(), Some(-f64::MAX));
    assert_eq!(fields["max"].as_f64(), Some(f64::MAX));
    assert_eq!(fields["odd"].as_f64(), Some(1.084_644_635_474_525_4e293));
    assert_eq!(fields["tiny"].as_f64(), Some(1.5e-300));
    assert_eq!(fields["big"].as_u64(), Some(u64::MAX));
    assert_eq!(fields["neg"].as_i64(), Some(i64::MIN));
}
