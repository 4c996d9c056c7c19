"""The leaderboard: submissions and their evaluation on the hidden split (services, evaluation/), the board and its
plot (board, plot: selectors), and their APIs. It reads releases through benchmark.releases.selectors and scores with
speech/, never with training code."""
