//! Companies over HTTP, and contacts' reference to them.

use serde_json::{Value, json};

use crate::helpers::{scalar_i64, spawn_app};

#[actix_rt::test]
async fn a_company_goes_through_create_read_patch_replace_and_delete() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let created = app
        .post(
            "/v1/companies",
            &acme.key,
            &json!({"name": "Globex", "domain": "WWW.Globex.Example", "industry": "Energy", "size": "51-200",
                    "address": {"city": "Springfield", "country": "US"}, "tags": ["prospect"], "customFields": {"tier": 2}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let data = &created.body["data"];
    let id = data["id"].as_str().expect("id").to_owned();
    assert_eq!(data["domain"], "globex.example", "domain normalised");
    assert_eq!(
        data["address"],
        json!({"city": "Springfield", "country": "US"})
    );
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/companies/{id}"))
    );

    let patched = app
        .call(
            "PATCH",
            &format!("/v1/companies/{id}"),
            Some(&acme.key),
            Some(&json!({"industry": null, "size": "201-1000"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["data"]["industry"], Value::Null);
    assert_eq!(patched.body["data"]["domain"], "globex.example", "kept");
    let stale = app
        .call(
            "PATCH",
            &format!("/v1/companies/{id}"),
            Some(&acme.key),
            Some(&json!({"name": "X"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412);
    let replaced = app
        .call(
            "PUT",
            &format!("/v1/companies/{id}"),
            Some(&acme.key),
            Some(&json!({"name": "Globex Corp"})),
            &[],
        )
        .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(
        replaced.body["data"]["domain"],
        Value::Null,
        "PUT clears what it leaves out"
    );
    let deleted = app
        .call(
            "DELETE",
            &format!("/v1/companies/{id}"),
            Some(&acme.key),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.body["data"], json!({"id": id, "deleted": true}));
    assert_eq!(
        app.get(&format!("/v1/companies/{id}"), &acme.key)
            .await
            .status,
        404
    );
}

#[actix_rt::test]
async fn a_domain_is_unique_per_tenant_whatever_its_spelling() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    assert_eq!(
        app.post(
            "/v1/companies",
            &acme.key,
            &json!({"name": "A", "domain": "initech.example"})
        )
        .await
        .status,
        201
    );
    let again = app
        .post(
            "/v1/companies",
            &acme.key,
            &json!({"name": "B", "domain": "www.INITECH.example"}),
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(again.body["details"]["fields"]["domain"].is_array());
    let other = app.tenant("Other").await;
    assert_eq!(
        app.post(
            "/v1/companies",
            &other.key,
            &json!({"name": "C", "domain": "initech.example"})
        )
        .await
        .status,
        201
    );
    let bad = app
        .post(
            "/v1/companies",
            &acme.key,
            &json!({"name": "D", "domain": "https://x.example/path"}),
        )
        .await;
    assert_eq!(bad.status, 400);
    let nameless = app
        .post("/v1/companies", &acme.key, &json!({"name": "   "}))
        .await;
    assert_eq!(nameless.status, 400);
}

#[actix_rt::test]
async fn contacts_reference_companies_of_their_own_tenant_only_and_outlive_them() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let a_company = app
        .post("/v1/companies", &a.key, &json!({"name": "A Co"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b_company = app
        .post("/v1/companies", &b.key, &json!({"name": "B Co"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let forged = app
        .post(
            "/v1/contacts",
            &a.key,
            &json!({"firstName": "Eve", "companyId": b_company}),
        )
        .await;
    assert_eq!(
        forged.status, 400,
        "another tenant's company is refused: {}",
        forged.body
    );
    assert!(forged.body["details"]["fields"]["companyId"].is_array());
    let random = app
        .post(
            "/v1/contacts",
            &a.key,
            &json!({"firstName": "Eve", "companyId": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(random.status, 400);
    assert_eq!(app.contact_rows().await, 0);

    let contact = app
        .post(
            "/v1/contacts",
            &a.key,
            &json!({"firstName": "Ann", "companyId": a_company}),
        )
        .await;
    assert_eq!(contact.status, 201);
    let contact_id = contact.body["data"]["id"].as_str().expect("id").to_owned();
    let listed = app
        .get(&format!("/v1/companies/{a_company}/contacts"), &a.key)
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["data"][0]["id"], contact_id.as_str());
    assert_eq!(
        app.get(&format!("/v1/companies/{b_company}/contacts"), &a.key)
            .await
            .status,
        404
    );
    let by_filter = app
        .get(&format!("/v1/contacts?companyId={a_company}"), &a.key)
        .await;
    assert_eq!(by_filter.body["data"].as_array().map(Vec::len), Some(1));

    let db = app.db.owner().await;
    let refused = sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!("UPDATE contacts SET company_id = '{b_company}' WHERE id = '{contact_id}'"),
    )
    .await;
    assert!(
        refused.is_err(),
        "even the owner role cannot point a contact at another tenant's company"
    );

    app.call(
        "DELETE",
        &format!("/v1/companies/{a_company}"),
        Some(&a.key),
        None,
        &[],
    )
    .await;
    let orphan = app.get(&format!("/v1/contacts/{contact_id}"), &a.key).await;
    assert_eq!(orphan.status, 200, "the contact outlives its company");
    assert_eq!(orphan.body["data"]["companyId"], Value::Null);
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM contacts").await, 1);
}

#[actix_rt::test]
async fn tenant_a_key_on_tenant_b_companies_is_404_and_changes_nothing() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let b_company = app
        .post(
            "/v1/companies",
            &b.key,
            &json!({"name": "B Co", "domain": "b.example"}),
        )
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/companies/{b_company}");
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"name": "x"}))),
        ("PATCH", Some(json!({"name": "x"}))),
        ("DELETE", None),
    ] {
        let reply = app
            .call(method, &path, Some(&a.key), body.as_ref(), &[])
            .await;
        assert_eq!(reply.status, 404, "{method}");
    }
    assert_eq!(
        app.get("/v1/companies?domain=b.example", &a.key).await.body["data"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let still = app.get(&path, &b.key).await;
    assert_eq!(still.body["data"]["name"], "B Co");
    assert_eq!(still.body["data"]["version"], 1);
}

#[actix_rt::test]
async fn company_lists_search_filter_sort_and_page() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    for (name, domain, industry) in [
        ("Umbrella", "umbrella.example", "Pharma"),
        ("Initech", "initech.example", "Software"),
        ("Hooli", "hooli.example", "Software"),
    ] {
        assert_eq!(
            app.post(
                "/v1/companies",
                &acme.key,
                &json!({"name": name, "domain": domain, "industry": industry})
            )
            .await
            .status,
            201
        );
    }
    let names = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(
        names(&app.get("/v1/companies?sort=name", &acme.key).await),
        ["Hooli", "Initech", "Umbrella"]
    );
    assert_eq!(
        names(&app.get("/v1/companies?q=TECH", &acme.key).await),
        ["Initech"]
    );
    assert_eq!(
        names(
            &app.get("/v1/companies?industry=Software&sort=-name", &acme.key)
                .await
        ),
        ["Initech", "Hooli"]
    );
    assert_eq!(
        names(
            &app.get("/v1/companies?domain=WWW.hooli.example", &acme.key)
                .await
        ),
        ["Hooli"]
    );
    let first = app
        .get("/v1/companies?sort=domain&limit=2", &acme.key)
        .await;
    assert_eq!(names(&first), ["Hooli", "Initech"]);
    let cursor = first.body["metadata"]["pagination"]["nextCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    assert_eq!(
        names(
            &app.get(&format!("/v1/companies?cursor={cursor}"), &acme.key)
                .await
        ),
        ["Umbrella"]
    );
    let wrong = app
        .get(&format!("/v1/contacts?cursor={cursor}"), &acme.key)
        .await;
    assert_eq!(
        wrong.status, 400,
        "a company cursor is not a contact cursor"
    );
}
