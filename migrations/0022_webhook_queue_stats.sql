-- `/metrics` shows the webhook queue: how many deliveries are pending and how long the
-- oldest due one has waited. The API role reads no other tenant's rows, so these two
-- aggregates (and nothing else: no id, no tenant, no payload) come from one SECURITY
-- DEFINER function. The count and the minimum use the partial index on pending
-- deliveries (webhook_deliveries_due_idx).

SET LOCAL ROLE crm_owner;

GRANT SELECT (status, next_attempt_at) ON webhook_deliveries TO crm_definer;

SET LOCAL ROLE crm_definer;

CREATE FUNCTION crm_webhook_queue_stats()
RETURNS TABLE (pending bigint, oldest_due_seconds double precision)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*),
           coalesce(extract(epoch FROM now() - min(d.next_attempt_at)
                                 FILTER (WHERE d.next_attempt_at <= now())), 0)::double precision
      FROM public.webhook_deliveries d
     WHERE d.status = 'pending';
$$;

REVOKE ALL ON FUNCTION crm_webhook_queue_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_webhook_queue_stats() TO crm_app;
