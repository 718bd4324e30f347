-- A lead's status follows its stage's kind (0011) also when the stage's kind is edited:
-- turning "Negotiation" into a won stage makes the leads already in it won. Each such
-- lead's version and updatedAt move (its ETag changes) and, through 0013's triggers, it
-- sends `lead.updated` with changedFields ["status"].

SET LOCAL ROLE crm_owner;

CREATE FUNCTION crm_restatus_stage_leads() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE public.leads l
       SET status = NEW.kind, version = l.version + 1,
           updated_at = greatest(pg_catalog.now(), l.updated_at)
     WHERE l.tenant_id = NEW.tenant_id AND l.pipeline_id = NEW.pipeline_id
       AND l.stage_id = NEW.id AND l.status <> NEW.kind;
    RETURN NULL;
END
$$;

CREATE TRIGGER pipeline_stages_restatus_leads AFTER UPDATE OF kind ON pipeline_stages
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION crm_restatus_stage_leads();
