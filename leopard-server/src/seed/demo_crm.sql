-- The demo CRM data of `leopard demo` (run once, right after the demo organisation of
-- seed::seed_demo_org, in the same tenant transaction). Like the original's seed_data it writes
-- rows directly and records no events; the timeline and notification rows a user would have
-- produced are written alongside. Dates are relative to now(), so the calendar, the due tasks
-- and the reminders are always current.

CREATE TEMP TABLE demo_people ON COMMIT DROP AS
SELECT (SELECT id FROM users WHERE username = 'admin') AS admin,
       (SELECT id FROM users WHERE username = 'region.manager') AS manager,
       (SELECT id FROM users WHERE username = 'branch.admin') AS branch_admin,
       (SELECT id FROM users WHERE username = 'consultant') AS consultant,
       (SELECT id FROM branches WHERE name = 'Head Office') AS head,
       (SELECT id FROM branches WHERE name = 'City Branch') AS city;

-- Clients across both branches and all stages; Head Office's are assigned to its staff.
CREATE TEMP TABLE demo_clients ON COMMIT DROP AS
WITH rows (n, first_name, last_name, gender, country, stage, branch, assignee, dob, referred_by) AS (
    VALUES
        (1, 'Aarav', 'Sharma', 'MALE', 'NP', 'LEAD', 'head', 'consultant', DATE '1998-04-12', 'Website'),
        (2, 'Priya', 'Patel', 'FEMALE', 'IN', 'FOLLOW_UP', 'head', 'consultant', DATE '1996-09-30', 'Facebook'),
        (3, 'An', 'Nguyen', 'MALE', 'VN', 'CLIENT', 'head', 'consultant', DATE '2000-01-05', 'Walk-in'),
        (4, 'Maria', 'Santos', 'FEMALE', 'PH', 'CLIENT', 'head', 'branch_admin', DATE '1994-11-21', 'Referral'),
        (5, 'Wei', 'Li', 'MALE', 'CN', 'CLOSE', 'head', 'consultant', DATE '1993-06-14', 'Education fair'),
        (6, 'Sita', 'Gurung', 'FEMALE', 'NP', 'LEAD', 'head', NULL, DATE '2001-02-17', 'Website'),
        (7, 'Carlos', 'Mendes', 'MALE', 'BR', 'FOLLOW_UP', 'head', 'branch_admin', DATE '1990-08-08', 'Referral'),
        (8, 'Ana', 'Lima', 'FEMALE', 'BR', 'LEAD', 'head', 'consultant', DATE '1999-12-01', 'Instagram'),
        (9, 'Rohan', 'Mehta', 'MALE', 'IN', 'LEAD', 'city', NULL, DATE '1997-03-03', 'Website'),
        (10, 'Mai', 'Tran', 'FEMALE', 'VN', 'FOLLOW_UP', 'city', NULL, DATE '1995-07-19', 'Walk-in'),
        (11, 'Jose', 'Reyes', 'MALE', 'PH', 'CLIENT', 'city', NULL, DATE '1992-10-10', 'Referral'),
        (12, 'Jing', 'Chen', 'FEMALE', 'CN', 'LEAD', 'city', NULL, DATE '2002-05-25', 'Education fair'),
        (13, 'Bikash', 'Thapa', 'MALE', 'NP', 'CLIENT', 'city', NULL, DATE '1991-01-29', 'Facebook'),
        (14, 'Lucia', 'Gomez', 'FEMALE', 'CO', 'CLOSE', 'city', NULL, DATE '1996-04-04', 'Website')
),
inserted AS (
    INSERT INTO clients (first_name, last_name, gender, dob, country, email, phone_number, street,
                         suburb, state, postcode, branch_id, assigned_to_id, stage, active,
                         referred_by, description, created_by_id, updated_by_id, created_at,
                         updated_at)
    SELECT r.first_name, r.last_name, r.gender, r.dob, r.country,
           lower(r.first_name || '.' || r.last_name) || '@example.com',
           '+61 4' || lpad((10000000 + r.n * 7919)::text, 8, '0'),
           (r.n * 12) || ' Demo Street', 'Sydney', 'NSW', '2000',
           CASE r.branch WHEN 'head' THEN p.head ELSE p.city END,
           CASE r.assignee WHEN 'consultant' THEN p.consultant
                           WHEN 'branch_admin' THEN p.branch_admin END,
           r.stage, r.stage IN ('FOLLOW_UP', 'CLIENT'), r.referred_by,
           'Interested in studying and working abroad.', p.admin, p.admin,
           now() - make_interval(days => 40 - r.n * 2), now() - make_interval(days => 40 - r.n * 2)
      FROM rows r CROSS JOIN demo_people p
     ORDER BY r.n
    RETURNING id, first_name, last_name, assigned_to_id, branch_id, created_at
)
SELECT i.*, r.n
  FROM inserted i JOIN rows r ON r.first_name = i.first_name AND r.last_name = i.last_name;

-- The timeline the API would have written: creation and assignment.
INSERT INTO client_activities (client_id, activity_type, performed_by_id, description, metadata,
                               created_at)
SELECT c.id, 'CLIENT_CREATED', p.admin, 'Client created', '{}'::jsonb, c.created_at
  FROM demo_clients c CROSS JOIN demo_people p;
INSERT INTO client_activities (client_id, activity_type, performed_by_id, description, metadata,
                               created_at)
SELECT c.id, 'ASSIGNED', p.admin,
       'Assigned to ' || btrim(u.first_name || ' ' || u.last_name),
       jsonb_build_object('assigned_to_id', c.assigned_to_id), c.created_at + interval '1 hour'
  FROM demo_clients c CROSS JOIN demo_people p JOIN users u ON u.id = c.assigned_to_id;
INSERT INTO notifications (notification_type, assigned_to_id, title, message, meta_info,
                           created_by_id, created_at)
SELECT 'CLIENT_ASSIGNED', c.assigned_to_id, 'Client Assigned: ' || c.first_name || ' ' || c.last_name,
       'Client "' || c.first_name || ' ' || c.last_name || '" has been assigned to you.',
       jsonb_build_object('client_id', c.id, 'entity_type', 'Client', 'entity_id', c.id::text),
       p.admin, c.created_at + interval '1 hour'
  FROM demo_clients c CROSS JOIN demo_people p
 WHERE c.assigned_to_id IS NOT NULL;

-- Notes, with their timeline entries.
WITH rows (n, author, content) AS (
    VALUES
        (1, 'consultant', 'First call: wants a Bachelor of IT in Sydney, intake February.'),
        (2, 'consultant', 'Sent the document checklist for the student visa.'),
        (2, 'branch_admin', 'Scholarship options discussed; follow up next week.'),
        (3, 'consultant', 'Offer letter received; preparing the GTE statement.'),
        (4, 'branch_admin', 'Visa lodged; waiting for the medical appointment.'),
        (7, 'branch_admin', 'Prefers Melbourne; compare two diploma courses.'),
        (11, 'consultant', 'Transferred from the City Branch desk; passport copy on file.')
),
inserted AS (
    INSERT INTO notes (client_id, author_id, content, created_at, updated_at)
    SELECT c.id,
           CASE r.author WHEN 'consultant' THEN p.consultant ELSE p.branch_admin END,
           r.content, c.created_at + interval '1 day', c.created_at + interval '1 day'
      FROM rows r JOIN demo_clients c ON c.n = r.n CROSS JOIN demo_people p
    RETURNING id, client_id, author_id, created_at
)
INSERT INTO client_activities (client_id, activity_type, performed_by_id, description, metadata,
                               created_at)
SELECT client_id, 'NOTE_ADDED', author_id, 'Note added', jsonb_build_object('note_id', id),
       created_at
  FROM inserted;

-- Profile records: the exam list, results, qualifications, employment, passports.
INSERT INTO language_exams (name, validity_term, description) VALUES
    ('IELTS Academic', 2, 'International English Language Testing System'),
    ('PTE Academic', 2, 'Pearson Test of English'),
    ('TOEFL iBT', 2, 'Test of English as a Foreign Language')
ON CONFLICT DO NOTHING;
INSERT INTO proficiencies (client_id, test_name_id, overall_score, speaking_score, reading_score,
                           listening_score, writing_score, test_date, created_by_id)
SELECT c.id, (SELECT id FROM language_exams WHERE name = r.exam), r.overall, r.speaking,
       r.reading, r.listening, r.writing, current_date - r.days_ago, p.consultant
  FROM (VALUES
        (2, 'IELTS Academic', 7.0, 7.5, 6.5, 7.0, 6.5, 60),
        (3, 'PTE Academic', 6.5, 6.0, 7.0, 6.5, 6.0, 90),
        (4, 'IELTS Academic', 8.0, 8.0, 8.5, 7.5, 7.5, 120),
        (11, 'TOEFL iBT', 6.0, 6.0, 6.5, 5.5, 6.0, 30)
       ) AS r (n, exam, overall, speaking, reading, listening, writing, days_ago)
  JOIN demo_clients c ON c.n = r.n CROSS JOIN demo_people p;
INSERT INTO qualifications (client_id, course, institute, degree, field_of_study, enroll_date,
                            completion_date, country, created_by_id)
SELECT c.id, r.course, r.institute, r.degree, r.field, r.enrolled, r.completed, r.country,
       p.consultant
  FROM (VALUES
        (1, '+2 Science', 'Kathmandu Model College', 'Higher Secondary', 'Science',
         DATE '2014-07-01', DATE '2016-06-30', 'NP'),
        (2, 'B.Com', 'University of Mumbai', 'Bachelor', 'Commerce',
         DATE '2015-07-01', DATE '2018-05-31', 'IN'),
        (3, 'High School Diploma', 'Le Quy Don High School', 'Secondary', 'General',
         DATE '2015-09-01', DATE '2018-06-15', 'VN'),
        (4, 'BS Nursing', 'University of Santo Tomas', 'Bachelor', 'Nursing',
         DATE '2011-06-01', DATE '2015-04-30', 'PH')
       ) AS r (n, course, institute, degree, field, enrolled, completed, country)
  JOIN demo_clients c ON c.n = r.n CROSS JOIN demo_people p;
INSERT INTO employments (client_id, employer_name, position, start_date, end_date, country,
                         created_by_id)
SELECT c.id, r.employer, r.position, r.started, r.ended, r.country, p.consultant
  FROM (VALUES
        (2, 'Tata Consultancy Services', 'Accounts Assistant', DATE '2018-07-01', DATE '2022-12-31', 'IN'),
        (4, 'St. Luke''s Medical Center', 'Staff Nurse', DATE '2015-06-01', DATE '2023-03-31', 'PH'),
        (7, 'Banco do Brasil', 'Customer Service Officer', DATE '2012-02-01', DATE '2021-08-31', 'BR')
       ) AS r (n, employer, position, started, ended, country)
  JOIN demo_clients c ON c.n = r.n CROSS JOIN demo_people p;
INSERT INTO passports (client_id, passport_no, passport_country, date_of_issue, date_of_expiry,
                       place_of_issue, country_of_birth, nationality, created_by_id)
SELECT c.id, r.no, r.country, r.issued, r.issued + interval '10 years' - interval '1 day',
       r.place, r.country, r.country, p.consultant
  FROM (VALUES
        (2, 'P4821377', 'IN', DATE '2019-03-14', 'Mumbai'),
        (3, 'C7719023', 'VN', DATE '2020-08-02', 'Hanoi'),
        (4, 'P3310045A', 'PH', DATE '2018-11-20', 'Manila'),
        (11, 'P5590112B', 'PH', DATE '2021-01-11', 'Cebu'),
        (13, 'PA0934711', 'NP', DATE '2017-05-30', 'Kathmandu')
       ) AS r (n, no, country, issued, place)
  JOIN demo_clients c ON c.n = r.n CROSS JOIN demo_people p;

-- Tasks: the consultant's own (overdue, due soon, later, done) and two branch pools (City
-- Branch's set up by the region manager, so Head Office staff do not see them).
WITH rows (n, title, detail, priority, status, due_hours, target) AS (
    VALUES
        (1, 'Call about the February intake', 'Confirm the preferred course and budget.', 'HIGH', 'PENDING', -26, 'consultant'),
        (2, 'Collect financial documents', 'Bank statements for the last six months.', 'URGENT', 'IN_PROGRESS', -3, 'consultant'),
        (3, 'Review the GTE statement draft', 'Check it against the checklist before lodging.', 'HIGH', 'PENDING', 20, 'consultant'),
        (8, 'Send course comparison', 'Two diplomas in Melbourne with fees and intakes.', 'MEDIUM', 'PENDING', 50, 'consultant'),
        (5, 'Archive closed file', 'Move the documents to the archive.', 'LOW', 'COMPLETED', -100, 'consultant'),
        (6, 'First contact with new lead', 'Web enquiry: call within one business day.', 'MEDIUM', 'PENDING', 30, 'head'),
        (9, 'First contact with new lead', 'Walk-in enquiry at City Branch.', 'MEDIUM', 'PENDING', 24, 'city'),
        (12, 'Book an education counselling session', 'Student asked about nursing pathways.', 'LOW', 'PENDING', 72, 'city'),
        (4, 'Medical appointment follow-up', 'Check that the health examination is booked.', 'HIGH', 'PENDING', 8, 'branch_admin')
),
inserted AS (
    INSERT INTO tasks (title, detail, priority, status, due_date, assigned_to_id, branch_id,
                       assigned_by_id, content_type_id, object_id, completed_at, created_by_id,
                       updated_by_id, tags)
    SELECT r.title, r.detail, r.priority, r.status, now() + make_interval(hours => r.due_hours),
           CASE r.target WHEN 'consultant' THEN p.consultant
                         WHEN 'branch_admin' THEN p.branch_admin END,
           CASE r.target WHEN 'head' THEN p.head WHEN 'city' THEN p.city END,
           CASE r.target WHEN 'city' THEN p.manager ELSE p.branch_admin END, 10, c.id,
           CASE WHEN r.status = 'COMPLETED' THEN now() - interval '4 days' END,
           CASE r.target WHEN 'city' THEN p.manager ELSE p.branch_admin END,
           CASE r.target WHEN 'city' THEN p.manager ELSE p.branch_admin END, '["demo"]'::jsonb
      FROM rows r JOIN demo_clients c ON c.n = r.n CROSS JOIN demo_people p
    RETURNING id, title, assigned_to_id, object_id, created_by_id, created_at
)
INSERT INTO client_activities (client_id, activity_type, performed_by_id, description, metadata,
                               created_at)
SELECT i.object_id, 'TASK_CREATED', i.created_by_id, 'Task "' || i.title || '" created',
       jsonb_build_object('task_id', i.id), i.created_at
  FROM inserted i;
INSERT INTO notifications (notification_type, assigned_to_id, title, message, meta_info,
                           created_by_id)
SELECT 'TASK_ASSIGNED', t.assigned_to_id, 'New Task Assigned: ' || t.title,
       'A new ' || lower(t.priority) || ' priority task has been assigned to you.',
       jsonb_build_object('task_id', t.id, 'priority', t.priority), t.created_by_id
  FROM tasks t
 WHERE t.assigned_to_id IS NOT NULL AND t.status IN ('PENDING', 'IN_PROGRESS');

-- Reminders on the consultant's clients: one due an hour ago, one later today, two ahead.
INSERT INTO reminders (content_type_id, object_id, title, reminder_date, reminder_time, meta_info,
                       created_by_id)
SELECT 10, c.id, r.title, (now() + make_interval(hours => r.hours))::date,
       date_trunc('minute', (now() + make_interval(hours => r.hours)))::time,
       jsonb_build_object('client_id', c.id), p.consultant
  FROM (VALUES
        (1, 'Call back about the intake', -1),
        (2, 'Check the bank statements arrived', 4),
        (3, 'Remind about the biometrics appointment', 30),
        (8, 'Send the scholarship list', 96)
       ) AS r (n, title, hours)
  JOIN demo_clients c ON c.n = r.n CROSS JOIN demo_people p;

-- Calendar: the consultant's meetings, a Head Office team meeting, the manager's review.
INSERT INTO calendar_events (title, description, start_at, end_at, assigned_to_id, hex_color,
                             location, all_day, branch_id, created_by_id, updated_by_id)
SELECT r.title, r.description,
       date_trunc('hour', now()) + make_interval(hours => r.start_hours),
       date_trunc('hour', now()) + make_interval(hours => r.start_hours, mins => r.minutes),
       CASE r.who WHEN 'consultant' THEN p.consultant WHEN 'branch_admin' THEN p.branch_admin
                  WHEN 'manager' THEN p.manager END,
       r.color, r.location, false,
       CASE WHEN r.team THEN p.head END,
       CASE r.who WHEN 'manager' THEN p.manager ELSE p.branch_admin END,
       CASE r.who WHEN 'manager' THEN p.manager ELSE p.branch_admin END
  FROM (VALUES
        ('Counselling: Aarav Sharma', 'Course options and budget.', 2, 60, 'consultant', '#3788d8', 'Room 1, Head Office', false),
        ('Document check: Priya Patel', 'Financial documents for the visa.', 25, 45, 'consultant', '#2e7d32', 'Video call', false),
        ('Weekly team meeting', 'Pipeline review for Head Office.', 26, 60, 'branch_admin', '#f57c00', 'Meeting room, Head Office', true),
        ('Regional pipeline review', 'Central region numbers.', 50, 90, 'manager', '#6a1b9a', 'Head Office', false)
       ) AS r (title, description, start_hours, minutes, who, color, location, team)
  CROSS JOIN demo_people p;
