"""The engine's human-request table (the approval node): the engine's DDL again, which is
idempotent and now includes `fireflow.human_request`."""

from django.db import migrations


def apply_engine_ddl(apps, schema_editor):  # type: ignore[no-untyped-def]
    import engine
    from flows.engine_bridge import url_for

    engine.migrate(url_for(schema_editor.connection.settings_dict))


class Migration(migrations.Migration):
    dependencies = [("flows", "0005_networkpolicy_node_rules")]
    operations = [migrations.RunPython(apply_engine_ddl, migrations.RunPython.noop)]
