-- Every platform refresh token issued; a refresh consumes its row (rotation), so a replayed
-- token fails, as for tenant refresh tokens.
CREATE TABLE public.leopard_platform_refresh_tokens (
    jti        varchar(64) PRIMARY KEY,
    admin_id   bigint NOT NULL REFERENCES public.leopard_platform_admins (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX leopard_platform_refresh_tokens_admin ON public.leopard_platform_refresh_tokens (admin_id);
