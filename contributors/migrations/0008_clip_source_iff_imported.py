# The constraint in its own migration (its own transaction): on PostgreSQL an ALTER TABLE after 0007's updates
# of a deferred foreign key in the same transaction fails with "pending trigger events".

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contributors", "0007_corpus_source"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='clip',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('provenance', 'recorded'), ('source__isnull', True)), models.Q(('provenance', 'imported'), ('source__isnull', False)), _connector='OR'), name='clip_source_iff_imported'),
        ),
    ]
