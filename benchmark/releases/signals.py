"""What a release tells the rest of the platform. The leaderboard listens (benchmark.leaderboard.receivers), so the
release build never imports the leaderboard: arrows point from the leaderboard to releases, not back."""

from django.dispatch import Signal

# Sent once a build has published a release and recorded it ready (after its transaction), with `release`.
release_ready = Signal()
