from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contributors", "0013_sentences"),
    ]

    operations = [
        migrations.AddField(
            model_name="contributor",
            name="trustee_notice_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="When the contributor was told they had become a trustee (told once, on their next page).",
            ),
        ),
    ]
