-- GENERATED from leopard-rbac `Role::crm_additions` by `crm_grants_sql()`
-- (crates/leopard-server/src/migrations.rs); do not edit. The permissions Region Managers
-- and Consultants need for the CRM resources the original left open to everyone.

INSERT INTO group_permissions (group_id, permission_id)
SELECT g.id, p FROM groups g, unnest(ARRAY[41,42,43,44,45,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,77,78,79,80]::integer[]) AS p WHERE g.name = 'REGION_MANAGER'
ON CONFLICT DO NOTHING;

INSERT INTO group_permissions (group_id, permission_id)
SELECT g.id, p FROM groups g, unnest(ARRAY[41,42,43,44,45,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,77,78,79,80]::integer[]) AS p WHERE g.name = 'CONSULTANT'
ON CONFLICT DO NOTHING;
