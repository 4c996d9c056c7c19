"""The speech layer: Django-free, the bottom of the house. Phones and their inventory, text normalisation,
pronunciations and the lexicon, speaker-disjoint splits, PER scoring, the leaderboard's decoders and the trust
engine. It imports nothing of the platform but itself (scripts/check_imports.py holds that), so the apps, the
training code and the leaderboard all stand on the same definitions."""
