//! Criterion benches of the domain's pure hot spots: webhook signing (every delivery
//! attempt) and contact validation (every contact write). `cargo bench -p domain`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use domain::contact::{ContactDraft, ContactInput};
use domain::webhook::WebhookSecret;

/// Standard Webhooks' test vector (SPEC §5), and a payload the size of a contact event.
fn webhook_signing(c: &mut Criterion) {
    let Ok(secret) = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD") else {
        panic!("the spec's secret parses");
    };
    let small = br#"{"email":"test@example.com","username":"test_user"}"#;
    let event = format!(
        r#"{{"id":"evt_1","type":"contact.updated","data":{{"object":{{"firstName":"Ada","notes":"{}"}}}}}}"#,
        "x".repeat(1500)
    );
    c.bench_function("webhook sign, 50 B body", |b| {
        b.iter(|| {
            secret.sign(
                black_box("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
                1_649_367_553,
                black_box(small),
            )
        });
    });
    c.bench_function("webhook sign, 1.6 KiB event", |b| {
        b.iter(|| {
            secret.sign(
                black_box("evt_1"),
                1_649_367_553,
                black_box(event.as_bytes()),
            )
        });
    });
}

fn contact_input() -> ContactInput {
    ContactInput {
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        email: Some("Ada.Lovelace@Example.com".into()),
        phone: Some("+44 20 7946 0000".into()),
        title: Some("Analyst".into()),
        tags: Some(vec!["vip".into(), "engine".into(), "VIP".into()]),
        custom_fields: Some(serde_json::json!({"plan": "pro", "seats": 12, "trial": false})),
        owner_id: None,
        company_id: None,
    }
}

fn contact_validation(c: &mut Criterion) {
    c.bench_function("ContactDraft::new, every field", |b| {
        b.iter_batched(
            contact_input,
            |input| ContactDraft::new(black_box(input)),
            criterion::BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, webhook_signing, contact_validation);
criterion_main!(benches);
