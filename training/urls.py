"""Routes of the training-runs API, mounted under /api/v1/training/."""

from django.urls import path

from training import apis

urlpatterns = [
    path("runs/", apis.RunListApi.as_view(), name="training-runs"),
    path("runs/<int:run_id>", apis.RunDetailApi.as_view(), name="training-run"),
    path("runs/<int:run_id>/cancel", apis.RunCancelApi.as_view(), name="training-run-cancel"),
    path("runs/<int:run_id>/model.onnx", apis.RunModelApi.as_view(), name="training-run-model"),
]
