-- The web pages cache each user's option lists (the branches and the assignable users of the
-- clients list's filter bar) until the next notice on `leopard_principals` (migration 15). Those
-- lists also show names and are sorted by them, so a change of a name sends the notice too:
-- a user's username, first or last name, a branch's name.
CREATE TRIGGER users_labels_changed
    AFTER UPDATE OF username, first_name, last_name ON users
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
CREATE TRIGGER branches_labels_changed
    AFTER UPDATE OF name ON branches
    FOR EACH STATEMENT EXECUTE FUNCTION leopard_principals_changed();
