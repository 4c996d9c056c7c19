"""The leaderboard page, mounted under /leaderboard/."""

from django.urls import path

from benchmark import views

urlpatterns = [path("", views.leaderboard, name="leaderboard-page")]
