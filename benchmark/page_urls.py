"""Release pages, mounted under /releases/."""

from django.urls import path

from benchmark import views

urlpatterns = [
    path("", views.release_list, name="release-list-page"),
    path("<str:version>/", views.release_detail, name="release-page"),
    path("<str:version>/datasheet/", views.release_datasheet, name="release-datasheet-page"),
]
