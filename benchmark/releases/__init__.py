"""Corpus releases: building one from the valid clips (services, build), the formats it is written in (exports,
datasheet, packaging), the reads of a built release (selectors) and its API. Nothing here imports the leaderboard:
a release that becomes ready says so with `signals.release_ready`, and the leaderboard listens."""
