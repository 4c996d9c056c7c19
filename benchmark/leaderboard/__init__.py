"""The leaderboard's reads: the board (rows, sorts, CSV) and its plot."""
