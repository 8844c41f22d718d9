-- The demo immigration and study-abroad data of `leopard demo`, run right after demo_crm.sql in
-- the same tenant transaction (its temp tables demo_people and demo_clients still exist): agents,
-- visa types and applications across statuses, institutes with campuses, intakes, contacts and
-- requirements, the course taxonomy and courses, application types with stages, and college
-- applications across stages and both branches, plus the timeline rows and notices the API
-- would have written. Like demo_crm.sql it records no events; dates are relative to now().

-- Agents: two super agents and three sub agents.
INSERT INTO agents (agent_name, agent_type, company_name, designation, phone_number, email,
                    website, country, description, created_by_id, updated_by_id)
SELECT a.name, a.kind, a.company, a.designation, a.phone, a.email, a.website, a.country,
       a.description, p.admin, p.admin
  FROM (VALUES
        ('Global Study Partners', 'SUPER_AGENT', 'Global Study Partners Pty Ltd', 'Director',
         '+61290000001', 'hello@globalstudy.example', 'globalstudy.example', 'AU',
         'Aggregator for universities in Australia and New Zealand.'),
        ('EduBridge International', 'SUPER_AGENT', 'EduBridge Ltd', 'Partnerships lead',
         '+44200000002', 'partners@edubridge.example', 'edubridge.example', 'GB',
         'Aggregator for UK and Irish institutions.'),
        ('Kathmandu Career Desk', 'SUB_AGENT', 'KCD Pvt Ltd', 'Counsellor', '+97710000003',
         'desk@kcd.example', 'kcd.example', 'NP', 'Refers students from Nepal.'),
        ('Manila Study Hub', 'SUB_AGENT', 'MSH Inc', 'Owner', '+63200000004',
         'info@msh.example', 'msh.example', 'PH', 'Refers students from the Philippines.'),
        ('Delhi Overseas Link', 'SUB_AGENT', 'DOL Pvt Ltd', 'Manager', '+91110000005',
         'team@dol.example', 'dol.example', 'IN', 'Refers students from northern India.')
       ) AS a (name, kind, company, designation, phone, email, website, country, description)
 CROSS JOIN demo_people p;

-- Visa types with their checklists.
INSERT INTO visa_types (visa_category_id, name, code, description, checklist)
SELECT vc.id, t.name, t.code, t.description, t.checklist::jsonb
  FROM (VALUES
        ('STUDENT', 'Student', '500', 'Full-time study in a registered course.',
         '["Passport", "Confirmation of Enrolment", "GTE statement", "Financial evidence", "OSHC"]'),
        ('WORK', 'Temporary Skill Shortage', '482', 'Employer-sponsored skilled work.',
         '["Passport", "Skills assessment", "Employment references", "English test"]'),
        ('WORK', 'Temporary Graduate', '485', 'Work after study.',
         '["Passport", "Course completion letter", "English test", "Health insurance"]'),
        ('PR', 'Skilled Independent', '189', 'Points-tested permanent residence.',
         '["Passport", "Skills assessment", "English test", "Police certificates"]'),
        ('VISITOR', 'Visitor', '600', 'Tourism and family visits.',
         '["Passport", "Bank statements", "Invitation letter"]')
       ) AS t (category, name, code, description, checklist)
  JOIN visa_categories vc ON vc.code = t.category;

-- Clients link to their visa category and referring agent.
UPDATE clients c
   SET visa_category_id = (SELECT id FROM visa_categories WHERE code =
                               CASE WHEN d.n IN (5, 14) THEN 'WORK' ELSE 'STUDENT' END),
       agent_id = (SELECT id FROM agents WHERE agent_name =
                       CASE c.country WHEN 'NP' THEN 'Kathmandu Career Desk'
                                      WHEN 'PH' THEN 'Manila Study Hub'
                                      WHEN 'IN' THEN 'Delhi Overseas Link' END)
  FROM demo_clients d
 WHERE d.id = c.id;

-- Visa applications across every status and both branches.
CREATE TEMP TABLE demo_visas ON COMMIT DROP AS
WITH rows (n, code, status, assignee, days_ago) AS (
    VALUES
        (2, '500', 'TO_BE_APPLIED', 'consultant', 3),
        (3, '500', 'VISA_APPLIED', 'consultant', 20),
        (4, '500', 'CASE_OPENED', 'branch_admin', 35),
        (5, '482', 'GRANTED', 'consultant', 60),
        (7, '485', 'TO_BE_APPLIED', NULL, 1),
        (11, '500', 'GRANTED', NULL, 45),
        (13, '189', 'REJECTED', NULL, 90),
        (14, '600', 'WITHDRAWN', NULL, 30),
        (10, '500', 'VISA_APPLIED', NULL, 0)
),
inserted AS (
    INSERT INTO visa_applications (client_id, visa_type_id, transaction_reference_no,
                                   immigration_fee, immigration_fee_currency, service_fee,
                                   service_fee_currency, assigned_to_id, required_documents,
                                   status, date_applied, date_opened, date_granted,
                                   date_rejected, date_withdrawn, created_by_id, updated_by_id,
                                   created_at, updated_at)
    SELECT c.id, vt.id,
           CASE WHEN r.status <> 'TO_BE_APPLIED' THEN 'TRN-' || lpad((r.n * 7717)::text, 8, '0') END,
           CASE r.code WHEN '189' THEN 4640 WHEN '482' THEN 3035 WHEN '600' THEN 190 ELSE 710 END,
           'AUD', 1500, 'AUD',
           CASE r.assignee WHEN 'consultant' THEN p.consultant
                           WHEN 'branch_admin' THEN p.branch_admin END,
           (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                        'name', d.value, 'received', r.status <> 'TO_BE_APPLIED')), '[]')
              FROM jsonb_array_elements_text(vt.checklist) d),
           r.status,
           CASE WHEN r.status <> 'TO_BE_APPLIED' THEN current_date - r.days_ago END,
           CASE WHEN r.status IN ('CASE_OPENED', 'GRANTED', 'REJECTED')
                THEN current_date - r.days_ago + 7 END,
           CASE WHEN r.status = 'GRANTED' THEN current_date - r.days_ago / 3 END,
           CASE WHEN r.status = 'REJECTED' THEN current_date - r.days_ago / 3 END,
           CASE WHEN r.status = 'WITHDRAWN' THEN current_date - r.days_ago / 3 END,
           p.admin, p.admin,
           now() - make_interval(days => r.days_ago), now() - make_interval(days => r.days_ago)
      FROM rows r
      JOIN demo_clients c ON c.n = r.n
      JOIN visa_types vt ON vt.code = r.code
     CROSS JOIN demo_people p
    RETURNING id, client_id, visa_type_id, assigned_to_id, created_at
)
SELECT * FROM inserted;

INSERT INTO client_activities (client_id, activity_type, performed_by_id, description, metadata,
                               created_at)
SELECT v.client_id, 'VISA_APPLICATION_CREATED', p.admin,
       'Visa Application created for ' || vt.name || ' (' || vt.code || ')',
       jsonb_build_object('visa_application_id', v.id, 'visa_type_name',
                          vt.name || ' (' || vt.code || ')'),
       v.created_at
  FROM demo_visas v JOIN visa_types vt ON vt.id = v.visa_type_id CROSS JOIN demo_people p;

-- Institutes with campuses, intakes, contacts and requirements.
INSERT INTO institutes (name, short_name, phone, website, created_by_id, updated_by_id)
SELECT i.name, i.short_name, i.phone, i.website, p.admin, p.admin
  FROM (VALUES
        ('University of Sydney Harbour', 'USH', '+61290010000', 'ush.example.edu'),
        ('Melbourne Institute of Technology', 'MIT-AU', '+61390020000', 'mitau.example.edu'),
        ('Auckland Polytechnic', 'AKP', '+6490030000', 'akp.example.ac.nz'),
        ('London College of Business', 'LCB', '+442070040000', 'lcb.example.ac.uk')
       ) AS i (name, short_name, phone, website)
 CROSS JOIN demo_people p;

INSERT INTO institute_locations (institute_id, street_name, suburb, state, postcode, country,
                                 phone_number, email, created_by_id, updated_by_id)
SELECT i.id, l.street, l.suburb, l.state, l.postcode, l.country, i.phone,
       'admissions@' || i.website, p.admin, p.admin
  FROM (VALUES
        ('USH', '1 Harbour Street', 'Sydney', 'NSW', '2000', 'AU'),
        ('USH', '20 Campus Drive', 'Parramatta', 'NSW', '2150', 'AU'),
        ('MIT-AU', '88 Collins Street', 'Melbourne', 'VIC', '3000', 'AU'),
        ('AKP', '5 Queen Street', 'Auckland', 'Auckland', '1010', 'NZ'),
        ('LCB', '10 Fleet Street', 'London', 'Greater London', 'EC4Y', 'GB')
       ) AS l (short_name, street, suburb, state, postcode, country)
  JOIN institutes i ON i.short_name = l.short_name
 CROSS JOIN demo_people p;

-- Intakes: February and July, last year to next year, for every institute.
INSERT INTO institute_intakes (institute_id, intake_date, description, created_by_id,
                               updated_by_id)
SELECT i.id, make_date(y, m, 1),
       CASE m WHEN 2 THEN 'Semester 1 ' ELSE 'Semester 2 ' END || y, p.admin, p.admin
  FROM institutes i
 CROSS JOIN generate_series(extract(year FROM now())::int - 1,
                            extract(year FROM now())::int + 1) AS y
 CROSS JOIN (VALUES (2), (7)) AS months (m)
 CROSS JOIN demo_people p;

INSERT INTO institute_contact_persons (institute_id, name, gender, position, phone, email,
                                       created_by_id, updated_by_id)
SELECT i.id, c.name, c.gender, 'International admissions', i.phone,
       lower(split_part(c.name, ' ', 1)) || '@' || i.website, p.admin, p.admin
  FROM (VALUES ('USH', 'Emma Wilson', 'FEMALE'), ('MIT-AU', 'Liam Brown', 'MALE'),
               ('AKP', 'Aroha Ngata', 'FEMALE'), ('LCB', 'Oliver Smith', 'MALE'))
       AS c (short_name, name, gender)
  JOIN institutes i ON i.short_name = c.short_name
 CROSS JOIN demo_people p;

INSERT INTO institute_requirements (institute_id, title, description, requirement_type,
                                    created_by_id, updated_by_id)
SELECT i.id, r.title, r.description, r.kind, p.admin, p.admin
  FROM institutes i
 CROSS JOIN (VALUES
        ('IELTS 6.5 overall', 'No band below 6.0.', 'LANGUAGE'),
        ('Year 12 or equivalent', 'Certified transcripts.', 'ACADEMIC'),
        ('Proof of funds', 'Tuition and 12 months of living costs.', 'FINANCIAL')
       ) AS r (title, description, kind)
 CROSS JOIN demo_people p;

-- The course taxonomy and the courses.
INSERT INTO course_levels (name, created_by_id, updated_by_id)
SELECT l.name, p.admin, p.admin
  FROM (VALUES ('Diploma'), ('Bachelor'), ('Master'), ('Foundation')) AS l (name)
 CROSS JOIN demo_people p;
INSERT INTO broad_fields (name, created_by_id, updated_by_id)
SELECT b.name, p.admin, p.admin
  FROM (VALUES ('Information Technology'), ('Management and Commerce'), ('Health'),
               ('Engineering')) AS b (name)
 CROSS JOIN demo_people p;
INSERT INTO narrow_fields (name, broad_field_id, created_by_id, updated_by_id)
SELECT n.name, b.id, p.admin, p.admin
  FROM (VALUES ('Computer Science', 'Information Technology'),
               ('Information Systems', 'Information Technology'),
               ('Accounting', 'Management and Commerce'),
               ('Business and Management', 'Management and Commerce'),
               ('Nursing', 'Health'), ('Civil Engineering', 'Engineering'))
       AS n (name, broad)
  JOIN broad_fields b ON b.name = n.broad
 CROSS JOIN demo_people p;

INSERT INTO courses (institute_id, name, level_id, broad_field_id, narrow_field_id,
                     total_tuition_fee, coe_fee, description, created_by_id, updated_by_id)
SELECT i.id, c.name, l.id, n.broad_field_id, n.id, c.fee, 250, c.name || ' at ' || i.name,
       p.admin, p.admin
  FROM (VALUES
        ('USH', 'Bachelor of Computer Science', 'Bachelor', 'Computer Science', 138000),
        ('USH', 'Master of Nursing', 'Master', 'Nursing', 92000),
        ('MIT-AU', 'Bachelor of Information Systems', 'Bachelor', 'Information Systems', 96000),
        ('MIT-AU', 'Master of Professional Accounting', 'Master', 'Accounting', 64000),
        ('AKP', 'Diploma of Civil Engineering', 'Diploma', 'Civil Engineering', 48000),
        ('AKP', 'Foundation in Business', 'Foundation', 'Business and Management', 21000),
        ('LCB', 'Master of Business Administration', 'Master', 'Business and Management', 54000)
       ) AS c (short_name, name, level, narrow, fee)
  JOIN institutes i ON i.short_name = c.short_name
  JOIN course_levels l ON l.name = c.level
  JOIN narrow_fields n ON n.name = c.narrow
 CROSS JOIN demo_people p;

-- Application types with their stages.
INSERT INTO application_types (title, currency, tax_name, tax_percentage, description,
                               created_by_id, updated_by_id)
SELECT t.title, t.currency, t.tax_name, t.tax, t.description, p.admin, p.admin
  FROM (VALUES
        ('Undergraduate', 'AUD', 'GST', 10, 'Bachelor degrees.'),
        ('Postgraduate', 'AUD', 'GST', 10, 'Master degrees.'),
        ('Diploma', 'NZD', 'GST', 15, 'Vocational diplomas.')
       ) AS t (title, currency, tax_name, tax, description)
 CROSS JOIN demo_people p;

INSERT INTO stages (application_type_id, stage_name, position, description, created_by_id,
                    updated_by_id)
-- Diplomas skip the offer-accepted and CoE stages; their positions stay 1..n like every type's.
SELECT t.id, s.name,
       CASE WHEN t.title = 'Diploma' AND s.position = 5 THEN 3 ELSE s.position END,
       s.description, p.admin, p.admin
  FROM application_types t
 CROSS JOIN (VALUES
        (1, 'Application Submitted', 'Sent to the institute.'),
        (2, 'Offer Received', 'Conditional or unconditional offer.'),
        (3, 'Offer Accepted', 'Deposit paid.'),
        (4, 'CoE Issued', 'Confirmation of enrolment received.'),
        (5, 'Enrolled', 'The student has started.')
       ) AS s (position, name, description)
 CROSS JOIN demo_people p
 WHERE t.title <> 'Diploma' OR s.position IN (1, 2, 5);

-- College applications across stages, institutes and both branches.
CREATE TEMP TABLE demo_colleges ON COMMIT DROP AS
WITH rows (n, type, course, campus, intake_offset, stage, assignee, super_agent, sub_agent,
           days_ago) AS (
    VALUES
        (1, 'Undergraduate', 'Bachelor of Computer Science', 'Sydney', 1, 1, 'consultant',
         'Global Study Partners', 'Kathmandu Career Desk', 2),
        (2, 'Undergraduate', 'Bachelor of Information Systems', 'Melbourne', 1, 2, 'consultant',
         NULL, NULL, 12),
        (3, 'Undergraduate', 'Bachelor of Computer Science', 'Parramatta', 0, 5, 'consultant',
         'Global Study Partners', NULL, 80),
        (4, 'Postgraduate', 'Master of Nursing', 'Sydney', 0, 4, 'branch_admin', NULL,
         'Manila Study Hub', 50),
        (5, 'Postgraduate', 'Master of Professional Accounting', 'Melbourne', 1, 3,
         'consultant', NULL, NULL, 25),
        (7, 'Postgraduate', 'Master of Business Administration', 'London', 1, 1, 'branch_admin',
         'EduBridge International', NULL, 1),
        (8, 'Diploma', 'Diploma of Civil Engineering', 'Auckland', 1, 2, NULL, NULL, NULL, 6),
        (9, 'Undergraduate', 'Bachelor of Information Systems', 'Melbourne', 1, 1, NULL, NULL,
         'Delhi Overseas Link', 0),
        (11, 'Postgraduate', 'Master of Nursing', 'Sydney', 0, 5, NULL, NULL,
         'Manila Study Hub', 120),
        (12, 'Diploma', 'Diploma of Civil Engineering', 'Auckland', 0, 5, NULL, NULL, NULL, 70),
        (13, 'Undergraduate', 'Bachelor of Computer Science', 'Sydney', 1, 3, NULL,
         'Global Study Partners', 'Kathmandu Career Desk', 30),
        (10, 'Diploma', 'Diploma of Civil Engineering', 'Auckland', 1, 1, NULL, NULL, NULL, 4)
),
inserted AS (
    INSERT INTO college_applications (application_type_id, stage_id, client_id, institute_id,
                                      course_id, start_date_id, location_id, finish_date,
                                      total_tuition_fee, student_id, super_agent_id,
                                      sub_agent_id, assigned_to_id, notes, created_by_id,
                                      updated_by_id, created_at, updated_at)
    SELECT t.id, s.id, c.id, co.institute_id, co.id, it.id, l.id,
           (it.intake_date + interval '3 years')::date, co.total_tuition_fee,
           CASE WHEN s.position >= 4 THEN 'STU' || lpad((r.n * 313)::text, 6, '0') ELSE '' END,
           (SELECT id FROM agents WHERE agent_name = r.super_agent),
           (SELECT id FROM agents WHERE agent_name = r.sub_agent),
           CASE r.assignee WHEN 'consultant' THEN p.consultant
                           WHEN 'branch_admin' THEN p.branch_admin END,
           '', p.admin, p.admin,
           now() - make_interval(days => r.days_ago), now() - make_interval(days => r.days_ago)
      FROM rows r
      JOIN demo_clients c ON c.n = r.n
      JOIN application_types t ON t.title = r.type
      JOIN courses co ON co.name = r.course
      JOIN institute_locations l ON l.institute_id = co.institute_id AND l.suburb = r.campus
      JOIN LATERAL (SELECT id, intake_date FROM institute_intakes
                     WHERE institute_id = co.institute_id
                       AND intake_date >= date_trunc('month', now())::date
                                          - make_interval(months => 6 - 6 * r.intake_offset)
                     ORDER BY intake_date LIMIT 1) it ON TRUE
      JOIN LATERAL (SELECT id, position FROM stages
                     WHERE application_type_id = t.id AND position <= r.stage
                     ORDER BY position DESC LIMIT 1) s ON TRUE
     CROSS JOIN demo_people p
    RETURNING id, client_id, institute_id, course_id, assigned_to_id, created_at
)
SELECT * FROM inserted;

INSERT INTO client_activities (client_id, activity_type, performed_by_id, description, metadata,
                               created_at)
SELECT a.client_id, 'COLLEGE_APPLICATION_CREATED', p.admin,
       'College Application created for ' || co.name || ' at ' || i.name,
       jsonb_build_object('application_id', a.id, 'institute_name', i.name,
                          'course_name', co.name),
       a.created_at
  FROM demo_colleges a
  JOIN courses co ON co.id = a.course_id
  JOIN institutes i ON i.id = a.institute_id
 CROSS JOIN demo_people p;

INSERT INTO notifications (notification_type, assigned_to_id, title, message, meta_info,
                           created_by_id, created_at)
SELECT 'APPLICATION_ASSIGNED', a.assigned_to_id,
       'Application Assigned: ' || c.first_name || ' ' || c.last_name,
       'A college application for ' || c.first_name || ' ' || c.last_name || ' (' || co.name
           || ' at ' || i.name || ') has been assigned to you.',
       jsonb_build_object('entity_type', 'collegeapplication', 'entity_id', a.id,
                          'client_id', a.client_id, 'application_id', a.id),
       p.admin, a.created_at + interval '1 hour'
  FROM demo_colleges a
  JOIN clients c ON c.id = a.client_id
  JOIN courses co ON co.id = a.course_id
  JOIN institutes i ON i.id = a.institute_id
 CROSS JOIN demo_people p
 WHERE a.assigned_to_id IS NOT NULL;
