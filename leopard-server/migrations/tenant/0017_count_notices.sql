-- Notices for the count caches of every server instance (leopard-server/src/counts.rs): a
-- statement that changes one of these tables sends `<schema>.<table>` on the channel
-- `leopard_changes` when its transaction commits, and each instance stops serving the cached
-- list counts that read that table. PostgreSQL folds identical notices of a transaction into
-- one. The tables written on nearly every request and never counted by a list (audit_log,
-- refresh_tokens, web_sessions, leopard_migrations) have no trigger; a count that names one is
-- never cached. A new tenant table gets its trigger in the migration that creates it (a test
-- compares the triggers with `counts::TRACKED`).
CREATE FUNCTION leopard_table_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leopard_changes', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'agents',
        'application_types',
        'branches',
        'broad_fields',
        'calendar_events',
        'client_activities',
        'clients',
        'college_applications',
        'content_types',
        'country_names',
        'course_levels',
        'courses',
        'employments',
        'group_permissions',
        'groups',
        'institute_contact_persons',
        'institute_intakes',
        'institute_locations',
        'institute_requirements',
        'institutes',
        'language_exams',
        'narrow_fields',
        'notes',
        'notifications',
        'passports',
        'permissions',
        'proficiencies',
        'profile_pictures',
        'qualifications',
        'regions',
        'reminders',
        'stages',
        'tasks',
        'user_branches',
        'user_groups',
        'user_permissions',
        'user_regions',
        'users',
        'visa_applications',
        'visa_categories',
        'visa_types'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION leopard_table_changed()',
            t || '_count_changed', t);
    END LOOP;
END;
$$;
