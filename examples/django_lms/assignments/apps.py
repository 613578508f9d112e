"""The assignments app: the LMS models, cached by mlcache."""
from django.apps import AppConfig


class AssignmentsConfig(AppConfig):
    name = "assignments"
