-- `GET /v1/events?after=evt_…` resumes after an event a receiver already has (its id is
-- the `webhook-id` of every delivery), as Stripe's `starting_after` does: finding its log
-- position is one index probe, per tenant.

SET LOCAL ROLE crm_owner;

CREATE INDEX events_id_idx ON events (tenant_id, id);
