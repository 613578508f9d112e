"""The LMS models, shaped like mlcache's canonical LMS schema.

Django names the tables (assignments_assignmentsubmission ...) and the
foreign-key columns (student_id ...); mlcache_client.LMS_TABLES and
LMS_COLUMNS map the names mlcache.lms_setup() expects onto these, so nothing
is renamed.  Every table that mlcache.lms_catalog() lists has a model here,
users being Django's auth_user.
"""
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

User = settings.AUTH_USER_MODEL


class Course(models.Model):
    title = models.CharField(max_length=200)
    teacher = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="courses_taught")
    created_at = models.DateTimeField(default=timezone.now)


class Enrollment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE)
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrollments")
    enrolled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        unique_together = [("course", "student")]


class Assignment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE)
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="authored_assignments")
    title = models.CharField(max_length=200)
    due_date = models.DateTimeField(null=True, blank=True)
    max_score = models.DecimalField(max_digits=6, decimal_places=2, default=100)
    created_at = models.DateTimeField(default=timezone.now)


class AssignmentSubmission(models.Model):
    STATUSES = [(s, s) for s in ("draft", "submitted", "graded", "returned")]

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="submissions")
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="submissions")
    status = models.CharField(max_length=20, choices=STATUSES, default="draft")
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    feedback = models.TextField(blank=True, default="")
    submitted_at = models.DateTimeField(null=True, blank=True)
    graded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        unique_together = [("assignment", "student")]


class Grade(models.Model):
    submission = models.ForeignKey(AssignmentSubmission, on_delete=models.CASCADE)
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE)
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="grades")
    score = models.DecimalField(max_digits=6, decimal_places=2)
    graded_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="grades_given")
    created_at = models.DateTimeField(default=timezone.now)


class Material(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)


class MaterialProgress(models.Model):
    material = models.ForeignKey(Material, on_delete=models.CASCADE)
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="material_progress")
    progress_percentage = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    time_spent = models.DurationField(default=timedelta(0))
    last_accessed = models.DateTimeField(null=True, blank=True)

    class Meta:
        unique_together = [("student", "material")]


class MaterialView(models.Model):
    material = models.ForeignKey(Material, on_delete=models.CASCADE)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="material_views")
    viewed_at = models.DateTimeField(default=timezone.now)


class Report(models.Model):
    KINDS = [(k, k) for k in ("assignment", "user", "engagement")]

    kind = models.CharField(max_length=30, choices=KINDS)
    subject_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
