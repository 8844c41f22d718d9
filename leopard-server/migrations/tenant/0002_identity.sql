-- Identity: permissions, groups (roles), regions, branches, users and their assignments, and the
-- refresh-token ledger. Uniqueness of names is case-insensitive among live rows (spec §2, 36).

CREATE TABLE permissions (
    id              integer PRIMARY KEY,
    codename        varchar(100) NOT NULL UNIQUE,
    name            varchar(255) NOT NULL,
    content_type_id integer NOT NULL REFERENCES content_types (id)
);

CREATE TABLE groups (
    id   bigserial PRIMARY KEY,
    name varchar(150) NOT NULL
);
CREATE UNIQUE INDEX groups_name_ci ON groups (lower(name));

CREATE TABLE group_permissions (
    group_id      bigint  NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    permission_id integer NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, permission_id)
);

CREATE TABLE regions (
    id          bigserial PRIMARY KEY,
    name        varchar(100) NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX regions_name_ci ON regions (lower(name));

CREATE TABLE users (
    id           bigserial PRIMARY KEY,
    password     varchar(255) NOT NULL,
    last_login   timestamptz,
    is_superuser boolean NOT NULL DEFAULT false,
    username     varchar(150) NOT NULL,
    first_name   varchar(150) NOT NULL DEFAULT '',
    last_name    varchar(150) NOT NULL DEFAULT '',
    email        varchar(254) NOT NULL DEFAULT '',
    is_staff     boolean NOT NULL DEFAULT false,
    is_active    boolean NOT NULL DEFAULT true,
    date_joined  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_ci ON users (lower(username));
CREATE UNIQUE INDEX users_email_ci ON users (lower(email)) WHERE email <> '';

CREATE TABLE branches (
    id            bigserial PRIMARY KEY,
    region_id     bigint REFERENCES regions (id) ON DELETE SET NULL,
    name          varchar(100) NOT NULL,
    phone         varchar(15) NOT NULL DEFAULT '',
    website       varchar(100) NOT NULL DEFAULT '',
    street        varchar(100) NOT NULL DEFAULT '',
    suburb        varchar(100) NOT NULL DEFAULT '',
    state         varchar(100) NOT NULL DEFAULT '',
    postcode      varchar(20) NOT NULL DEFAULT '',
    country       varchar(2) NOT NULL DEFAULT '',
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX branches_name_ci_live ON branches (lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX branches_region ON branches (region_id);

CREATE TABLE user_groups (
    user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_groups_group ON user_groups (group_id);

CREATE TABLE user_permissions (
    user_id       bigint  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission_id integer NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, permission_id)
);

CREATE TABLE user_branches (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    branch_id bigint NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, branch_id)
);
CREATE INDEX user_branches_branch ON user_branches (branch_id);

CREATE TABLE user_regions (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    region_id bigint NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, region_id)
);
CREATE INDEX user_regions_region ON user_regions (region_id);

-- Every refresh token issued; a refresh consumes its row (rotation), so a replayed token fails.
CREATE TABLE refresh_tokens (
    jti        varchar(64) PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
