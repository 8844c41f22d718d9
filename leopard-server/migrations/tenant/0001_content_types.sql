-- Content types: a fixed per-tenant table with stable ids. Tasks and reminders link to records
-- through (content_type_id, object_id); real clients hard-code `client` = 10.
CREATE TABLE content_types (
    id        integer PRIMARY KEY,
    app_label text NOT NULL,
    model     text NOT NULL,
    UNIQUE (app_label, model)
);

INSERT INTO content_types (id, app_label, model) VALUES
    (1, 'admin', 'logentry'),
    (2, 'auth', 'permission'),
    (3, 'auth', 'group'),
    (4, 'contenttypes', 'contenttype'),
    (5, 'sessions', 'session'),
    (6, 'immigration', 'user'),
    (7, 'immigration', 'region'),
    (8, 'immigration', 'branch'),
    (9, 'immigration', 'agent'),
    (10, 'immigration', 'client'),
    (11, 'immigration', 'note'),
    (12, 'immigration', 'task'),
    (13, 'immigration', 'reminder'),
    (14, 'immigration', 'calendarevent'),
    (15, 'immigration', 'visacategory'),
    (16, 'immigration', 'visatype'),
    (17, 'immigration', 'visaapplication'),
    (18, 'immigration', 'institute'),
    (19, 'immigration', 'course'),
    (20, 'immigration', 'collegeapplication'),
    (21, 'immigration', 'notification');
