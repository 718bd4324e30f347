//! Criterion benches of the API's pure hot spots: the success envelope around a contact and
//! a page of 25, list cursors, and a contact body from bytes to a validated draft (serde,
//! garde, `ContactDraft::new`, as the create handler does). `cargo bench -p api-actix`.

use std::hint::black_box;

use actix_web::http::StatusCode;
use api_actix::cursor;
use api_actix::envelope::{Metadata, Pagination, Success, respond};
use api_actix::routes::contacts::{ContactBody, ContactResponse};
use criterion::{Criterion, criterion_group, criterion_main};
use domain::contact::{ContactDraft, ContactInput, ContactSortField};
use domain::list::{Cursor, Sort, SortValue};
use garde::Validate;
use time::OffsetDateTime;
use uuid::Uuid;

fn contact() -> ContactResponse {
    ContactResponse {
        id: Uuid::new_v4(),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        email: Some("ada@example.com".into()),
        phone: Some("+44 20 7946 0000".into()),
        title: Some("Analyst".into()),
        tags: vec!["vip".into(), "engine".into()],
        custom_fields: serde_json::json!({"plan": "pro", "seats": 12}),
        owner_id: None,
        company_id: Some(Uuid::new_v4()),
        created_at: OffsetDateTime::now_utc(),
        updated_at: OffsetDateTime::now_utc(),
        version: 3,
    }
}

fn envelope(c: &mut Criterion) {
    let one = contact();
    let page: Vec<ContactResponse> = (0..25).map(|_| contact()).collect();
    c.bench_function("envelope: one contact to JSON", |b| {
        b.iter(|| {
            serde_json::to_vec(&Success {
                success: true,
                data: black_box(&one),
                metadata: Metadata::now(),
            })
        });
    });
    c.bench_function("envelope: page of 25 contacts to JSON", |b| {
        b.iter(|| {
            let mut metadata = Metadata::now();
            metadata.pagination = Some(Pagination {
                limit: 25,
                next_cursor: Some("eyJzIjoiLWNyZWF0ZWRBdCJ9".into()),
                has_more: true,
            });
            serde_json::to_vec(&Success {
                success: true,
                data: black_box(&page),
                metadata,
            })
        });
    });
    c.bench_function("envelope: respond(200, contact) HttpResponse", |b| {
        b.iter(|| respond(StatusCode::OK, black_box(&one)));
    });
}

fn cursors(c: &mut Criterion) {
    let cursor = Cursor {
        sort: Sort {
            field: ContactSortField::CreatedAt,
            descending: true,
        },
        value: SortValue::Timestamp(OffsetDateTime::now_utc()),
        id: Uuid::new_v4(),
    };
    let token = cursor::encode(&cursor);
    c.bench_function("cursor encode", |b| {
        b.iter(|| cursor::encode(black_box(&cursor)))
    });
    c.bench_function("cursor decode", |b| {
        b.iter(|| cursor::decode::<ContactSortField>(black_box(&token)));
    });
}

fn contact_body(c: &mut Criterion) {
    let body = br#"{"firstName":"Ada","lastName":"Lovelace","email":"Ada@Example.com","phone":"+44 20 7946 0000","title":"Analyst","tags":["vip","engine"],"customFields":{"plan":"pro","seats":12}}"#;
    c.bench_function("contact body: JSON, garde, ContactDraft", |b| {
        b.iter(|| {
            let Ok(parsed) = serde_json::from_slice::<ContactBody>(black_box(body)) else {
                panic!("the bench body parses");
            };
            let checked = parsed.validate().is_ok();
            (checked, ContactDraft::new(ContactInput::from(parsed)))
        });
    });
}

criterion_group!(benches, envelope, cursors, contact_body);
criterion_main!(benches);
