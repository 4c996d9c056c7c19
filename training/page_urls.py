"""The training-runs pages, mounted under /training/."""

from django.urls import path

from training import views

urlpatterns = [
    path("", views.run_list, name="training-runs-page"),
    path("<int:run_id>/", views.run_detail, name="training-run-page"),
    path("<int:run_id>/cancel/", views.run_cancel_page, name="training-run-cancel-page"),
]
