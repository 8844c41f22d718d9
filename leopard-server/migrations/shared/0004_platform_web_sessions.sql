-- Sessions of the platform's web interface (the base host): one row per signed-in browser of a
-- platform administrator. As for a tenant's `web_sessions`, the cookie holds a random token and
-- only its SHA-256 is stored; a session ends on logout, after the idle timeout, or at
-- `expires_at`, and with its admin.
CREATE TABLE public.leopard_platform_web_sessions (
    token_hash   bytea PRIMARY KEY,
    admin_id     bigint NOT NULL REFERENCES public.leopard_platform_admins (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX leopard_platform_web_sessions_admin_idx ON public.leopard_platform_web_sessions (admin_id);
