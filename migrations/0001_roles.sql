-- Roles, extensions and schema privileges. Runs as the migrating user (a superuser, or a
-- role with CREATEROLE that may create BYPASSRLS roles).
--
--   crm_owner    NOLOGIN. Owns every table. FORCE ROW LEVEL SECURITY applies to it too.
--   crm_definer  NOLOGIN, BYPASSRLS. Owns only the narrow SECURITY DEFINER functions that
--                must look across tenants before one is known (API key resolution...).
--   crm_app      LOGIN. What the server connects as: owns nothing, not superuser, no
--                BYPASSRLS. `crm serve` refuses to start if that is not so.
--
-- Roles are cluster-wide, so several databases (one per test run) share them: create each
-- only if missing, and tolerate a concurrent creator.

DO $$
DECLARE
    spec record;
BEGIN
    FOR spec IN
        SELECT * FROM (VALUES
            ('crm_owner',   'NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'),
            ('crm_definer', 'NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS'),
            ('crm_app',     'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT')
        ) AS r(name, options)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = spec.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', spec.name, spec.options);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- another migrator created it between our check and our CREATE
            END;
        END IF;
    END LOOP;

    -- A migrator that is not superuser must be able to SET ROLE to the owners.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT crm_owner, crm_definer TO %I', current_user);
    END IF;
END
$$;

-- Trigram indexes back the `q` search of every list.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO crm_owner, crm_definer;
GRANT USAGE ON SCHEMA public TO crm_app;
