-- The notes of one tenant.
--
-- Tenant migrations run with `search_path` set to the tenant's schema, so names stay
-- unqualified: the same text creates `tenant_alpha.notes`, `tenant_beta.notes`, ...
-- Never edit this file once released; add `0002_....sql` instead (the ledger stores a checksum).
CREATE TABLE notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 2000),
    created_at timestamptz NOT NULL DEFAULT now()
);
