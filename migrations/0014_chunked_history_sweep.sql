-- The retention sweep deletes in chunks, each its own short transaction.
--
-- `GET /v1/events` shows an event only once every transaction that began before it has
-- ended, anywhere on the server (so paging never skips a late commit). One DELETE of a
-- month of history is one long transaction, and would hold every tenant's event log
-- back for as long as it runs. The worker now calls this version in a loop, a bounded
-- number of rows at a time, until nothing old is left.

SET LOCAL ROLE crm_owner;
GRANT SELECT (id) ON webhook_attempts TO crm_definer;

SET LOCAL ROLE crm_definer;

DROP FUNCTION crm_sweep_webhook_history(interval);

-- Deletes at most p_limit attempts and p_limit events older than p_age, across tenants;
-- an event with a delivery still pending is kept until it is over. Returns how many rows
-- it deleted (0: nothing old is left).
CREATE FUNCTION crm_sweep_webhook_history(p_age interval, p_limit integer)
RETURNS bigint
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH old_attempts AS (
        DELETE FROM public.webhook_attempts a
         WHERE (a.tenant_id, a.id) IN (
               SELECT o.tenant_id, o.id FROM public.webhook_attempts o
                WHERE o.attempted_at < now() - p_age
                LIMIT least(greatest(p_limit, 1), 100000))
        RETURNING 1
    ), old_events AS (
        DELETE FROM public.events e
         WHERE (e.tenant_id, e.seq) IN (
               SELECT o.tenant_id, o.seq FROM public.events o
                WHERE o.created_at < now() - p_age
                  AND NOT EXISTS (SELECT 1 FROM public.webhook_deliveries d
                                   WHERE d.tenant_id = o.tenant_id AND d.event_seq = o.seq
                                     AND d.status = 'pending')
                LIMIT least(greatest(p_limit, 1), 100000))
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM old_attempts) + (SELECT count(*) FROM old_events)
$$;

REVOKE ALL ON FUNCTION crm_sweep_webhook_history(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_sweep_webhook_history(interval, integer) TO crm_app;
