-- Sessions of the web interface: one row per signed-in browser. The cookie holds a random
-- token; only its SHA-256 is stored, so a leaked table cannot be replayed. A session ends on
-- logout (row deleted), after `idle` seconds without a request, or at `expires_at`.
CREATE TABLE web_sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
