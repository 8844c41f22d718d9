-- Institutes (master data, soft-deleted and restorable) with their campuses, intakes, contact
-- persons and requirements, and the course taxonomy (levels, broad and narrow fields) with the
-- courses an institute offers. Every table carries the lifecycle columns and `deleted_at`.
-- Names are unique case-insensitively among live rows (institutes, levels, broad fields; a
-- narrow field within its broad field; a course within its institute).

CREATE TABLE institutes (
    id            bigserial PRIMARY KEY,
    name          varchar(100) NOT NULL,
    short_name    varchar(20) NOT NULL,
    phone         varchar(15) NOT NULL DEFAULT '',
    website       varchar(100) NOT NULL DEFAULT '',
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX institutes_live_name ON institutes (lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE institute_locations (
    id            bigserial PRIMARY KEY,
    institute_id  bigint NOT NULL REFERENCES institutes (id) ON DELETE CASCADE,
    street_name   varchar(100) NOT NULL DEFAULT '',
    suburb        varchar(100) NOT NULL DEFAULT '',
    state         varchar(50) NOT NULL,
    postcode      varchar(20) NOT NULL DEFAULT '',
    country       varchar(2) NOT NULL,
    phone_number  varchar(15) NOT NULL DEFAULT '',
    email         varchar(254) NOT NULL DEFAULT '',
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX institute_locations_institute ON institute_locations (institute_id);

CREATE TABLE institute_intakes (
    id            bigserial PRIMARY KEY,
    institute_id  bigint NOT NULL REFERENCES institutes (id) ON DELETE CASCADE,
    intake_date   date NOT NULL,
    description   text NOT NULL DEFAULT '',
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX institute_intakes_institute ON institute_intakes (institute_id);

CREATE TABLE institute_contact_persons (
    id            bigserial PRIMARY KEY,
    institute_id  bigint NOT NULL REFERENCES institutes (id) ON DELETE CASCADE,
    name          varchar(100) NOT NULL,
    gender        varchar(10) NOT NULL DEFAULT ''
                  CHECK (gender IN ('', 'MALE', 'FEMALE', 'OTHER')),
    position      varchar(100) NOT NULL DEFAULT '',
    phone         varchar(15) NOT NULL DEFAULT '',
    email         varchar(254) NOT NULL DEFAULT '',
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX institute_contact_persons_institute ON institute_contact_persons (institute_id);

CREATE TABLE institute_requirements (
    id               bigserial PRIMARY KEY,
    institute_id     bigint NOT NULL REFERENCES institutes (id) ON DELETE CASCADE,
    title            varchar(200) NOT NULL,
    description      text NOT NULL DEFAULT '',
    requirement_type varchar(50) NOT NULL DEFAULT 'OTHER'
                     CHECK (requirement_type IN ('ACADEMIC', 'LANGUAGE', 'FINANCIAL',
                                                 'DOCUMENT', 'OTHER')),
    created_by_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_by_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
CREATE INDEX institute_requirements_institute ON institute_requirements (institute_id);

CREATE TABLE course_levels (
    id            bigserial PRIMARY KEY,
    name          varchar(100) NOT NULL,
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX course_levels_live_name ON course_levels (lower(name))
    WHERE deleted_at IS NULL;

CREATE TABLE broad_fields (
    id            bigserial PRIMARY KEY,
    name          varchar(100) NOT NULL,
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX broad_fields_live_name ON broad_fields (lower(name))
    WHERE deleted_at IS NULL;

CREATE TABLE narrow_fields (
    id             bigserial PRIMARY KEY,
    name           varchar(100) NOT NULL,
    broad_field_id bigint NOT NULL REFERENCES broad_fields (id) ON DELETE CASCADE,
    created_by_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_by_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    -- Lets courses reference (narrow, broad) pairs: a narrow field always within its broad field.
    UNIQUE (id, broad_field_id)
);
CREATE UNIQUE INDEX narrow_fields_live_name ON narrow_fields (broad_field_id, lower(name))
    WHERE deleted_at IS NULL;

CREATE TABLE courses (
    id                bigserial PRIMARY KEY,
    name              varchar(100) NOT NULL,
    institute_id      bigint NOT NULL REFERENCES institutes (id) ON DELETE CASCADE,
    level_id          bigint NOT NULL REFERENCES course_levels (id) ON DELETE RESTRICT,
    broad_field_id    bigint NOT NULL REFERENCES broad_fields (id) ON DELETE RESTRICT,
    narrow_field_id   bigint NOT NULL REFERENCES narrow_fields (id) ON DELETE RESTRICT,
    total_tuition_fee numeric(14, 2) NOT NULL,
    coe_fee           numeric(14, 2) NOT NULL,
    description       text NOT NULL DEFAULT '',
    created_by_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_by_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    FOREIGN KEY (narrow_field_id, broad_field_id)
        REFERENCES narrow_fields (id, broad_field_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX courses_live_name ON courses (institute_id, lower(name))
    WHERE deleted_at IS NULL;
CREATE INDEX courses_level ON courses (level_id);
CREATE INDEX courses_broad_field ON courses (broad_field_id);
CREATE INDEX courses_narrow_field ON courses (narrow_field_id);
