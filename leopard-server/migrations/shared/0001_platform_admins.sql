-- Platform administrators: manage tenants through the public API; they live in the public schema
-- and have no tenant.
CREATE TABLE public.leopard_platform_admins (
    id          bigserial PRIMARY KEY,
    username    varchar(150) NOT NULL,
    email       varchar(254) NOT NULL DEFAULT '',
    password    varchar(255) NOT NULL,
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_login  timestamptz
);
CREATE UNIQUE INDEX leopard_platform_admins_username_ci ON public.leopard_platform_admins (lower(username));
