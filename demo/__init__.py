"""The demo: the site with content, for `make run` and for anyone trying the platform (``manage.py demo``):
founding trustees, simulated contributors reading with espeak-ng voices through the real upload path, their votes,
an imported seed corpus, release demo-1 and the paper's comparison trained on it. It stands on every app and no
app imports it."""
