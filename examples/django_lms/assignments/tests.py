"""The Django client of mlcache against the real PostgreSQL and Redis.

Run with `/usr/bin/python3 manage.py test` under test/harness.sh.  mlcache
invalidates at COMMIT, so these are TransactionTestCases: Django's TestCase
would wrap each test in a transaction that never commits.  Between tests
Django TRUNCATEs every table, which fires mlcache's TRUNCATE triggers.

A read is checked with mlcache.last_level() on Django's connection right
after it: 'l1' is this backend's memory, 'compute' the query run, 'l3' the
materialized view (fresh only while no commit has made it dirty).
"""
import json
import os
import time
from contextlib import closing
from datetime import timedelta

import psycopg2
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections, connection, transaction
from django.test import TransactionTestCase
from django.utils import timezone

from . import mlcache_client as cache
from .models import Assignment, AssignmentSubmission, Course, Enrollment

RECOMPUTED = ("compute", "l3")  # an answer from the current data, not from L1 or Redis


class Lms:
    """A course with a teacher, two enrolled students with scores 80 and 60 (mean 70), and a staff user."""

    def __init__(self):
        now = timezone.now()
        self.author = User.objects.create_user("teacher")
        self.students = [User.objects.create_user(f"student{i}") for i in (1, 2)]
        self.staff = User.objects.create_user("admin", is_staff=True)
        course = Course.objects.create(title="Databases", teacher=self.author)
        for s in self.students:
            Enrollment.objects.create(course=course, student=s)
        self.assignment = Assignment.objects.create(
            course=course, author=self.author, title="Caching", due_date=now + timedelta(days=7))
        self.submissions = [
            AssignmentSubmission.objects.create(
                assignment=self.assignment, student=s, status="submitted", score=score, submitted_at=now)
            for s, score in zip(self.students, (80, 60))
        ]

    @property
    def url(self):
        return f"/api/assignments/{self.assignment.pk}/"


class CacheTestCase(TransactionTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # An earlier test phase may have stopped Redis: wait (up to 20 s)
        # until mlcache's circuit breaker lets it be used again.
        for _ in range(200):
            if cache.health()["l2"]["status"] == "ok":
                break
            time.sleep(0.1)

    def setUp(self):
        self.lms = Lms()

    def read(self):
        """assignment_stats of the test assignment, and which level answered it."""
        value = cache.assignment_stats(self.lms.assignment.pk)
        return value, cache.last_level()

    def mean(self):
        value, level = self.read()
        return value["statistics"]["mean"], level

    def cached_mean(self, expected):
        """Read twice: the second read must come from L1 with the same value."""
        first, level = self.mean()
        self.assertEqual(first, expected)
        self.assertIn(level, RECOMPUTED)
        self.assertEqual(self.mean(), (expected, "l1"))


class ReadTests(CacheTestCase):
    def test_second_read_is_an_l1_hit(self):
        value, level = self.read()
        self.assertIn(level, RECOMPUTED)
        self.assertEqual(value["statistics"]["mean"], 70)
        self.assertEqual(value["submission_stats"], {
            "count": 2, "late_count": 0, "ungraded_count": 0, "submission_rate": 1})
        self.assertEqual(self.read(), (value, "l1"))

    def test_analytics_endpoint(self):
        first = self.client.get(self.lms.url + "analytics/")
        self.assertEqual(first.status_code, 200)
        self.assertEqual(first.json()["statistics"]["mean"], 70)
        second = self.client.get(self.lms.url + "analytics/")
        self.assertEqual(cache.last_level(), "l1")  # the view ran on this connection
        self.assertEqual(second.json(), first.json())

    def test_missing_assignment_is_404(self):
        response = self.client.get("/api/assignments/999999/analytics/")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"error": "assignment 999999 does not exist"})

    def test_stats_counters(self):
        before = cache.stats()
        _, first = self.read()
        _, second = self.read()
        after = cache.stats()
        moved = {k: after[k] - before[k] for k in before if isinstance(before[k], int) and k != "l2_keys"}
        self.assertEqual(second, "l1")
        self.assertEqual((moved["l1_misses"], moved["l1_hits"]), (1, 1))
        self.assertEqual((moved["l2_misses"], moved["l2_hits"]), (1, 0))
        if first == "compute":
            self.assertEqual((moved["l3_misses"], moved["l3_hits"], moved["computes"]), (1, 0, 1))
        else:
            self.assertEqual((moved["l3_misses"], moved["l3_hits"], moved["computes"]), (0, 1, 0))
        self.assertEqual(moved["bypasses"], 0)
        self.assertGreaterEqual(after["l1_entries"], 1)
        self.assertEqual(after["breaker_state"], "closed")

        # One save of a submission bumps five generations: the three keys its
        # watch templates render (assignment_stats:A, analytics:assignment:A,
        # analytics:user:S:student) and the dirty marks of its two L3 views
        # (assignment_stats, analytics_student), which the counter includes.
        submission = self.lms.submissions[0]
        submission.feedback = "good"
        submission.save()
        self.assertEqual(cache.stats()["invalidations"] - after["invalidations"], 3 + 2)

        response = self.client.get("/api/cache/stats/")
        self.assertEqual(response.status_code, 200)
        self.assertGreaterEqual(response.json()["l1_hits"], after["l1_hits"])

    def test_l3_answers_once_refreshed(self):
        """After a commit the view is dirty; once the refresher has run, it answers the miss."""
        self.cached_mean(70)
        submission = self.lms.submissions[0]
        submission.score = 90
        submission.save()
        with connection.cursor() as cur:
            cur.execute("SELECT clock_timestamp()")
            committed = cur.fetchone()[0]
            for _ in range(150):  # mlcache.refresh_delay is 1 s; give up after 15 s
                cur.execute("SELECT state, last_refresh FROM mlcache.views"
                            " WHERE view = 'mlcache_assignment_stats'::regclass")
                state, last_refresh = cur.fetchone()
                if state == "fresh" and last_refresh is not None and last_refresh > committed:
                    break
                time.sleep(0.1)
        self.assertEqual((state, last_refresh > committed), ("fresh", True))
        self.assertEqual(self.mean(), (75, "l3"))
        self.assertEqual(self.mean(), (75, "l1"))

    def test_health(self):
        health = self.client.get("/api/cache/health/").json()
        self.assertEqual(health["status"], "ok")
        self.assertEqual(health["l2"]["status"], "ok")
        self.assertTrue(health["worker"]["alive"])
        self.assertEqual(health["l3"]["view_count"], 3)

    def test_warm(self):
        response = self.client.post("/api/cache/warm/", json.dumps({"definitions": ["assignment_stats"]}),
                                    content_type="application/json")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"total": 1, "warmed": 1, "failed": 0, "async_scheduled": 0})
        self.assertEqual(self.mean(), (70, "l1"))

        response = self.client.post("/api/cache/warm/", json.dumps(
            {"name": "analytics_student", "params": [self.lms.students[0].pk]}), content_type="application/json")
        self.assertEqual(response.json()["warmed"], 1)
        cache.fetch("analytics_student", self.lms.students[0].pk)
        self.assertEqual(cache.last_level(), "l1")


class InvalidationTests(CacheTestCase):
    def test_save_invalidates(self):
        self.cached_mean(70)
        submission = self.lms.submissions[0]
        submission.score = 100
        submission.save()
        mean, level = self.mean()
        self.assertEqual(mean, 80)
        self.assertIn(level, RECOMPUTED)

    def test_queryset_update_invalidates(self):
        self.cached_mean(70)
        # No model signals: only the statement-level triggers see this.
        AssignmentSubmission.objects.filter(assignment=self.lms.assignment).update(score=90)
        mean, level = self.mean()
        self.assertEqual(mean, 90)
        self.assertIn(level, RECOMPUTED)

    def test_raw_sql_update_invalidates(self):
        self.cached_mean(70)
        with connection.cursor() as cur:
            cur.execute("UPDATE assignments_assignmentsubmission SET score = score + 10 WHERE assignment_id = %s",
                        [self.lms.assignment.pk])
        mean, level = self.mean()
        self.assertEqual(mean, 80)
        self.assertIn(level, RECOMPUTED)
        self.assertEqual(self.mean(), (80, "l1"))

        # The same from another backend: this backend's L1 copy is invalidated too.
        with closing(psycopg2.connect(**connection.get_connection_params())) as other:
            with other, other.cursor() as cur:
                cur.execute("UPDATE assignments_assignmentsubmission SET score = 0 WHERE assignment_id = %s",
                            [self.lms.assignment.pk])
        mean, level = self.mean()
        self.assertEqual(mean, 0)
        self.assertIn(level, RECOMPUTED)

    def test_rollback_invalidates_nothing(self):
        self.cached_mean(70)

        class Abort(Exception):
            pass

        with self.assertRaises(Abort), transaction.atomic():
            AssignmentSubmission.objects.filter(assignment=self.lms.assignment).update(score=0)
            # Inside, the transaction sees its own write and the cache is bypassed.
            self.assertEqual(self.mean(), (0, "compute"))
            raise Abort
        self.assertEqual(self.mean(), (70, "l1"))

    def test_conn_max_age_reuse(self):
        self.assertEqual(settings.DATABASES["default"]["CONN_MAX_AGE"], 60)
        pids, means = set(), []
        for score in (None, 50, None, 20):
            close_old_connections()  # what Django runs at each request's start and end
            if score is not None:  # a commit from another backend between requests
                with closing(psycopg2.connect(**connection.get_connection_params())) as other:
                    with other, other.cursor() as cur:
                        cur.execute("UPDATE assignments_assignmentsubmission SET score = %s WHERE id = %s",
                                    [score, self.lms.submissions[1].pk])
            response = self.client.get(self.lms.url + "analytics/")
            means.append((response.json()["statistics"]["mean"], cache.last_level()))
            self.assertEqual(self.client.get("/api/assignments/999999/analytics/").status_code, 404)
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids.add(cur.fetchone()[0])
        self.assertEqual(len(pids), 1, "the connection was not reused")
        self.assertIn(means[0][1], RECOMPUTED)
        self.assertEqual(means[1:], [(65, means[1][1]), (65, "l1"), (50, means[3][1])])
        self.assertIn(means[1][1], RECOMPUTED)
        self.assertIn(means[3][1], RECOMPUTED)


class AccessTests(CacheTestCase):
    def test_cache_hit_rate_is_for_the_author_only(self):
        url = self.lms.url + "cache_hit_rate/"
        levels = []
        for _ in range(2):
            self.client.get(self.lms.url + "analytics/")
            levels.append(cache.last_level())
        self.assertEqual(levels[1], "l1")
        misses = levels.count("compute")  # an answer from L3 counts as a hit
        self.assertEqual(self.client.get(url).status_code, 403)  # anonymous
        self.client.force_login(self.lms.students[0])
        self.assertEqual(self.client.get(url).status_code, 403)
        self.assertEqual(self.client.get("/api/assignments/999999/cache_hit_rate/").status_code, 404)
        self.client.force_login(self.lms.author)
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200)
        rate = response.json()
        self.assertEqual(rate["cache_key"], f"assignment_stats:{self.lms.assignment.pk}")
        self.assertEqual((rate["hits"], rate["misses"], rate["total"]), (2 - misses, misses, 2))
        self.assertEqual(rate["hit_rate_percentage"], 100 * (2 - misses) / 2)
        self.assertTrue(0 < rate["ttl_seconds"] <= 300)  # in Redis, with the definition's L2 TTL
        self.assertEqual(self.client.get("/api/assignments/999999/cache_hit_rate/").status_code, 404)

    def test_clear_is_staff_only(self):
        self.cached_mean(70)
        self.assertEqual(self.client.delete("/api/cache/clear/").status_code, 403)  # anonymous
        self.client.force_login(self.lms.author)
        self.assertEqual(self.client.delete("/api/cache/clear/").status_code, 403)
        self.assertEqual(self.client.get("/api/cache/clear/").status_code, 405)
        self.assertEqual(self.mean(), (70, "l1"))
        self.client.force_login(self.lms.staff)
        response = self.client.delete("/api/cache/clear/")
        self.assertEqual((response.status_code, response.json()), (200, {"cleared": True}))
        mean, level = self.mean()
        self.assertEqual(mean, 70)
        self.assertIn(level, RECOMPUTED)

    def test_app_role_granted_by_the_migration_helper(self):
        """A separate application role may fetch once granted; the cached value is shared with it."""
        app, other = (f"mlcache_django_{name}_{os.getpid()}" for name in ("app", "other"))
        with connection.cursor() as cur:
            cur.execute(f"CREATE ROLE {app}; CREATE ROLE {other} IN ROLE mlcache_reader")
        try:
            cache.grant_app_role(app)
            self.cached_mean(70)
            with connection.cursor() as cur:
                cur.execute(f"SET ROLE {app}")
            self.assertEqual(self.mean(), (70, "l1"))
            with connection.cursor() as cur:
                cur.execute(f"SET ROLE {other}")
            with self.assertRaises(PermissionDenied):
                self.read()
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET ROLE")
                cur.execute("SELECT mlcache.revoke_fetch(name, %s::regrole) FROM mlcache.lms_definitions()", [app])
                cur.execute(f"DROP ROLE {app}; DROP ROLE {other}")
