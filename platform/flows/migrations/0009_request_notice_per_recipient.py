from django.db import migrations, models


class Migration(migrations.Migration):
    """A notice per recipient: a mail server refusing one address no longer makes the others
    receive the same email again."""

    dependencies = [
        ("flows", "0008_request_notice"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="requestnotice", name="request_notice_once"),
        migrations.RemoveField(model_name="requestnotice", name="recipients"),
        migrations.AddField(
            model_name="requestnotice",
            name="recipient",
            field=models.EmailField(default="", max_length=254),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="requestnotice",
            constraint=models.UniqueConstraint(
                "run_id", "node_id", "key", "recipient", name="request_notice_once"
            ),
        ),
    ]
