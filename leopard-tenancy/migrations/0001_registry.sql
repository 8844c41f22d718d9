-- Leopard's tenant registry in the public schema.
CREATE TABLE public.leopard_tenants (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug                text NOT NULL UNIQUE
                        CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
    schema_name         text NOT NULL UNIQUE
                        CHECK (schema_name ~ '^[a-z_][a-z0-9_]{0,62}$'
                               AND schema_name NOT IN ('public', 'information_schema')
                               AND schema_name NOT LIKE 'pg\_%'),
    name                text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    is_active           boolean NOT NULL DEFAULT true,
    subscription_status text NOT NULL DEFAULT 'TRIAL'
                        CHECK (subscription_status IN ('TRIAL', 'ACTIVE', 'SUSPENDED', 'CANCELLED')),
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    max_users           integer NOT NULL DEFAULT 50 CHECK (max_users >= 0),
    contact_email       text CHECK (char_length(contact_email) <= 254),
    contact_phone       text CHECK (char_length(contact_phone) <= 20),
    provisioned_at      timestamptz,
    provision_ms        integer,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.leopard_domains (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain      text NOT NULL UNIQUE CHECK (domain = lower(domain) AND char_length(domain) <= 253),
    tenant_id   bigint NOT NULL REFERENCES public.leopard_tenants (id) ON DELETE CASCADE,
    is_primary  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leopard_domains_tenant_idx ON public.leopard_domains (tenant_id);
CREATE UNIQUE INDEX leopard_domains_one_primary ON public.leopard_domains (tenant_id) WHERE is_primary;

-- Per-tenant migration status: "is anything pending anywhere?" is one query over this table.
CREATE TABLE public.leopard_tenant_migrations (
    tenant_id    bigint PRIMARY KEY REFERENCES public.leopard_tenants (id) ON DELETE CASCADE,
    version      bigint NOT NULL DEFAULT 0,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'ok', 'failed')),
    error        text,
    started_at   timestamptz,
    finished_at  timestamptz,
    duration_ms  integer,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Any change to tenants or domains wakes every server's registry.
CREATE FUNCTION public.leopard_tenancy_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leopard_tenancy', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER leopard_tenants_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.leopard_tenants
    FOR EACH STATEMENT EXECUTE FUNCTION public.leopard_tenancy_notify();
CREATE TRIGGER leopard_domains_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.leopard_domains
    FOR EACH STATEMENT EXECUTE FUNCTION public.leopard_tenancy_notify();
