-- Notices for the principal caches of every server instance: a statement that can change what
-- a user may do or see (a user's activity, groups, direct permissions, branches and regions; a
-- group's permissions or existence; a branch's region, deletion or creation) sends the schema's
-- name on the channel `leopard_principals` when its transaction commits. Each instance then
-- drops that tenant's cached principals. PostgreSQL folds identical notices of a transaction
-- into one.
CREATE FUNCTION leopard_principals_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leopard_principals', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_principals_changed
    AFTER INSERT OR DELETE OR UPDATE OF is_active ON users
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER branches_principals_changed
    AFTER INSERT OR DELETE OR UPDATE OF region_id, deleted_at ON branches
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER groups_principals_changed
    AFTER INSERT OR DELETE OR UPDATE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER group_permissions_principals_changed
    AFTER INSERT OR DELETE OR UPDATE ON group_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER user_groups_principals_changed
    AFTER INSERT OR DELETE OR UPDATE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER user_permissions_principals_changed
    AFTER INSERT OR DELETE OR UPDATE ON user_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER user_branches_principals_changed
    AFTER INSERT OR DELETE OR UPDATE ON user_branches
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER user_regions_principals_changed
    AFTER INSERT OR DELETE OR UPDATE ON user_regions
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
