-- Agents (external referral partners, soft-deleted) and the visa workflow: categories (seeded
-- master data), types with their document checklist, and applications scoped through their
-- client's branch. The client's `visa_category_id` and `agent_id` get their foreign keys here.

CREATE TABLE agents (
    id            bigserial PRIMARY KEY,
    agent_name    varchar(100) NOT NULL,
    agent_type    varchar(20) NOT NULL DEFAULT 'SUB_AGENT'
                  CHECK (agent_type IN ('SUPER_AGENT', 'SUB_AGENT')),
    company_name  varchar(100) NOT NULL DEFAULT '',
    designation   varchar(100) NOT NULL DEFAULT '',
    phone_number  varchar(15) NOT NULL DEFAULT '',
    email         varchar(254),
    website       varchar(100) NOT NULL DEFAULT '',
    invoice_to    varchar(100) NOT NULL DEFAULT '',
    street        varchar(100) NOT NULL DEFAULT '',
    suburb        varchar(100) NOT NULL DEFAULT '',
    state         varchar(100) NOT NULL DEFAULT '',
    postcode      varchar(20) NOT NULL DEFAULT '',
    country       varchar(2) NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    created_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
-- Names are unique case-insensitively among live agents only.
CREATE UNIQUE INDEX agents_live_name ON agents (lower(agent_name)) WHERE deleted_at IS NULL;
CREATE INDEX agents_type ON agents (agent_type);
CREATE INDEX agents_email ON agents (lower(email));

CREATE TABLE visa_categories (
    id          bigserial PRIMARY KEY,
    name        varchar(100) NOT NULL,
    code        varchar(20),
    description text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX visa_categories_name ON visa_categories (lower(name));
CREATE UNIQUE INDEX visa_categories_code ON visa_categories (lower(code));

INSERT INTO visa_categories (name, code, description) VALUES
    ('Work Visa', 'WORK', 'Visas for skilled and sponsored work'),
    ('Student Visa', 'STUDENT', 'Visas for study'),
    ('Permanent Residence', 'PR', 'Permanent residence visas'),
    ('Family Visa', 'FAMILY', 'Partner, parent and child visas'),
    ('Visitor Visa', 'VISITOR', 'Tourist and visitor visas'),
    ('Business Visa', 'BUSINESS', 'Business and investment visas');

CREATE TABLE visa_types (
    id               bigserial PRIMARY KEY,
    visa_category_id bigint NOT NULL REFERENCES visa_categories (id) ON DELETE CASCADE,
    name             varchar(100) NOT NULL DEFAULT '',
    code             varchar(50) NOT NULL DEFAULT '',
    description      text NOT NULL DEFAULT '',
    checklist        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(checklist) = 'array')
);
CREATE INDEX visa_types_category ON visa_types (visa_category_id, name);

CREATE TABLE visa_applications (
    id                       bigserial PRIMARY KEY,
    client_id                bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    visa_type_id             bigint NOT NULL REFERENCES visa_types (id) ON DELETE RESTRICT,
    transaction_reference_no varchar(150),
    immigration_fee          numeric(10, 2) NOT NULL CHECK (immigration_fee >= 0),
    immigration_fee_currency varchar(3) NOT NULL DEFAULT 'USD',
    service_fee              numeric(10, 2) NOT NULL CHECK (service_fee >= 0),
    service_fee_currency     varchar(3) NOT NULL DEFAULT 'USD',
    dependent                boolean NOT NULL DEFAULT false,
    notes                    text,
    assigned_to_id           bigint REFERENCES users (id) ON DELETE SET NULL,
    required_documents       jsonb NOT NULL DEFAULT '[]'
                             CHECK (jsonb_typeof(required_documents) = 'array'),
    expiry_date              date,
    date_applied             date,
    date_opened              date,
    final_date               date,
    date_granted             date,
    date_rejected            date,
    date_withdrawn           date,
    status                   varchar(20) NOT NULL DEFAULT 'TO_BE_APPLIED'
                             CHECK (status IN ('TO_BE_APPLIED', 'VISA_APPLIED', 'CASE_OPENED',
                                               'GRANTED', 'REJECTED', 'WITHDRAWN')),
    created_by_id            bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_by_id            bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visa_applications_client_status ON visa_applications (client_id, status);
CREATE INDEX visa_applications_assigned_to ON visa_applications (assigned_to_id);
CREATE INDEX visa_applications_status_applied ON visa_applications (status, date_applied);
CREATE INDEX visa_applications_created_at ON visa_applications (created_at DESC, id DESC);
CREATE INDEX visa_applications_visa_type ON visa_applications (visa_type_id);

ALTER TABLE clients
    ADD CONSTRAINT clients_visa_category_fk FOREIGN KEY (visa_category_id)
        REFERENCES visa_categories (id) ON DELETE SET NULL,
    ADD CONSTRAINT clients_agent_fk FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE SET NULL;
CREATE INDEX clients_visa_category ON clients (visa_category_id);
CREATE INDEX clients_agent ON clients (agent_id);
