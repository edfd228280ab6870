"""The SQL of the cap counters' triggers (apps/billing/models.py CapCounter), for the migrations of
the apps whose tables are counted (billing's for tenants' tables; memory's and resources' own).

A migration module, not app code: installed migrations run this text, so it is never edited in
place. A changed trigger is a new helper and a new migration. (The migration loader skips modules
whose name starts with an underscore.)

One statement-level trigger per operation, reading the statement's transition tables: a bulk
delete of 50,000 rows moves the counter by one UPDATE, not 50,000 updates of one row. A deletion
only ever updates an existing counter (never inserts one): while a tenant is being deleted its
counter may already be gone, and a row made then would point at the deleted tenant.
"""

# The SQL is made of the constant names and expressions the migrations pass, never of input.
# ruff: noqa: S608

from __future__ import annotations

from django.db import migrations


def cap_counter_trigger(*, table: str, what: str, measure: str, on_update: bool = False) -> migrations.RunSQL:
    """Keeps billing_capcounter's `what` row of each tenant equal to the sum of `measure` (an SQL
    expression over one row of `table`: "1", "octet_length(content)") over the tenant's rows, and
    sets it from the rows there are now. `on_update`: updates may change the measure too.

    The table is locked against writes (reads go on) while the trigger is made and the counters
    set, so that no row is added between the count and the trigger."""
    function = f"billing_cap_{what}_{table}"
    apply_insert = f"""
        INSERT INTO billing_capcounter (tenant_id, what, used)
        SELECT tenant_id, '{what}', sum(amount)::bigint FROM (SOURCE) AS delta
        GROUP BY tenant_id HAVING sum(amount) <> 0
        ON CONFLICT (tenant_id, what) DO UPDATE SET used = billing_capcounter.used + EXCLUDED.used;"""
    inserted = apply_insert.replace("SOURCE", f"SELECT tenant_id, {measure} AS amount FROM new_rows")
    updated = apply_insert.replace(
        "SOURCE",
        f"SELECT tenant_id, {measure} AS amount FROM new_rows"
        f" UNION ALL SELECT tenant_id, -({measure}) FROM old_rows",
    )
    forward = f"""
    LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;
    CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        IF TG_OP = 'INSERT' THEN {inserted}
        ELSIF TG_OP = 'UPDATE' THEN {updated}
        ELSE
            UPDATE billing_capcounter AS counter SET used = counter.used - delta.amount
            FROM (
                SELECT tenant_id, sum({measure})::bigint AS amount FROM old_rows GROUP BY tenant_id
            ) AS delta
            WHERE counter.tenant_id = delta.tenant_id AND counter.what = '{what}' AND delta.amount <> 0;
        END IF;
        RETURN NULL;
    END
    $body$;
    CREATE TRIGGER {function}_insert AFTER INSERT ON {table}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
    CREATE TRIGGER {function}_delete AFTER DELETE ON {table}
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
    {
        f'''CREATE TRIGGER {function}_update AFTER UPDATE ON {table}
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION {function}();'''
        if on_update
        else ""
    }
    INSERT INTO billing_capcounter (tenant_id, what, used)
    SELECT tenant_id, '{what}', sum({measure})::bigint FROM {table} GROUP BY tenant_id
    ON CONFLICT (tenant_id, what) DO UPDATE SET used = EXCLUDED.used;
    """
    backward = f"""
    DROP FUNCTION {function}() CASCADE;
    DELETE FROM billing_capcounter WHERE what = '{what}';
    """
    return migrations.RunSQL(forward, backward)
