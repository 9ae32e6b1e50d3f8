"""DBOS's system tables (schema dbos) and the engine's (schema fireflow) live in Django's
database; create them here so they exist before the first run is enqueued."""

from django.db import migrations


def create_engine_schemas(apps, schema_editor):  # type: ignore[no-untyped-def]
    from dbos import DBOS

    import engine
    from flows.engine_bridge import url_for

    url = url_for(schema_editor.connection.settings_dict)
    DBOS.migrate(url)
    engine.migrate(url)


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [migrations.RunPython(create_engine_schemas, migrations.RunPython.noop)]
