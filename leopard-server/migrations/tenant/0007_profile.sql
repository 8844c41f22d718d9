-- Client profile sections (original-backend.md §1.2 "Client profile sections") and profile
-- pictures. Every row belongs to a client (cascade with it) and follows the client's branch
-- for scope; language exams are tenant-wide master data.

-- Language-proficiency exams (the original's LPE): unique names, case-insensitively.
CREATE TABLE language_exams (
    id            bigserial PRIMARY KEY,
    name          varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    validity_term smallint NOT NULL DEFAULT 0 CHECK (validity_term BETWEEN 0 AND 100),
    description   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX language_exams_name_ci ON language_exams (lower(name));

-- Language proficiencies: one exam result; the exam cannot be deleted while results use it.
CREATE TABLE proficiencies (
    id              bigserial PRIMARY KEY,
    client_id       bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    test_name_id    bigint REFERENCES language_exams (id) ON DELETE RESTRICT,
    overall_score   numeric(4, 1) CHECK (overall_score BETWEEN 0 AND 9),
    speaking_score  numeric(4, 1) CHECK (speaking_score BETWEEN 0 AND 9),
    reading_score   numeric(4, 1) CHECK (reading_score BETWEEN 0 AND 9),
    listening_score numeric(4, 1) CHECK (listening_score BETWEEN 0 AND 9),
    writing_score   numeric(4, 1) CHECK (writing_score BETWEEN 0 AND 9),
    test_date       date,
    created_by_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_by_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proficiencies_client ON proficiencies (client_id);
CREATE INDEX proficiencies_test_name ON proficiencies (test_name_id);

CREATE TABLE qualifications (
    id              bigserial PRIMARY KEY,
    client_id       bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    course          varchar(100) NOT NULL,
    institute       varchar(100) NOT NULL DEFAULT '',
    degree          varchar(100) NOT NULL DEFAULT '',
    field_of_study  varchar(100) NOT NULL DEFAULT '',
    enroll_date     date,
    completion_date date,
    country         varchar(2) NOT NULL DEFAULT '',
    created_by_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_by_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (completion_date IS NULL OR enroll_date IS NULL OR completion_date >= enroll_date)
);
CREATE INDEX qualifications_client ON qualifications (client_id);

-- One passport per client: the key is the client's id.
CREATE TABLE passports (
    client_id        bigint PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    passport_no      varchar(20) NOT NULL,
    passport_country varchar(2) NOT NULL,
    date_of_issue    date,
    date_of_expiry   date,
    place_of_issue   varchar(100) NOT NULL DEFAULT '',
    country_of_birth varchar(2) NOT NULL,
    nationality      varchar(2) NOT NULL,
    created_by_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_by_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (date_of_expiry IS NULL OR date_of_issue IS NULL OR date_of_expiry >= date_of_issue)
);

CREATE TABLE employments (
    id            bigserial PRIMARY KEY,
    client_id     bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    employer_name varchar(200) NOT NULL,
    position      varchar(200) NOT NULL,
    start_date    date NOT NULL,
    end_date      date NOT NULL,
    country       varchar(2) NOT NULL,
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (end_date >= start_date)
);
CREATE INDEX employments_client ON employments (client_id);

-- One profile picture per client. `file` is the path inside the tenant's media directory
-- (`profile_pictures/client_<id>/<random>.<ext>`); the bytes are served only through the API.
CREATE TABLE profile_pictures (
    id             bigserial PRIMARY KEY,
    client_id      bigint NOT NULL UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    file           varchar(255) NOT NULL,
    file_size      integer NOT NULL CHECK (file_size >= 0),
    file_type      varchar(20) NOT NULL,
    uploaded_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
