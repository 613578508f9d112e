"""The Django client of mlcache against the real PostgreSQL and Redis.

Run with test/django.sh under test/harness.sh.  The tests connect as the
application's role (lms_project.test_runner: not a superuser, not
mlcache_admin), so every view runs with exactly the privileges the
migration grants; owner() connects as the tables' owner for what only it
may do.  mlcache invalidates at COMMIT, so these are TransactionTestCases:
Django's TestCase would wrap each test in a transaction that never commits.
Between tests Django TRUNCATEs every table, which fires mlcache's TRUNCATE
triggers.

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
from django.core.exceptions import BadRequest, PermissionDenied
from django.db import close_old_connections, connection, transaction
from django.test import TransactionTestCase
from django.utils import timezone
from lms_project.test_runner import owner_params

from . import mlcache_client as cache
from .models import Assignment, AssignmentSubmission, Course, Enrollment, Material, MaterialView

RECOMPUTED = ("compute", "l3")  # an answer from the current data, not from L1 or Redis


def owner():
    """A new psycopg2 connection to the test database as its owner (a superuser here)."""
    return closing(psycopg2.connect(**owner_params()))


class Lms:
    """A course with a teacher, two enrolled students with scores 80 and 60 (mean 70), and a staff user."""

    def __init__(self):
        now = timezone.now()
        self.author = User.objects.create_user("teacher")
        self.students = [User.objects.create_user(f"student{i}") for i in (1, 2)]
        self.staff = User.objects.create_user("admin", is_staff=True)
        self.course = course = Course.objects.create(title="Databases", teacher=self.author)
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
        # Every endpoint wants a logged-in user; a test that needs another
        # logs in again or out.  (A login updates auth_user.last_login,
        # which invalidates that user's analytics: done before any read.)
        self.lms = Lms()
        self.client.force_login(self.lms.students[0])

    def json(self, method, url, data=None, query=""):
        """A request with a JSON body (if data is given); the response."""
        call = getattr(self.client, method.lower())
        if data is None or method == "GET":
            return call(url + query)
        return call(url + query, json.dumps(data), content_type="application/json")

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

    def test_stats_endpoint_has_the_overall_hit_rate(self):
        with owner() as conn, conn, conn.cursor() as cur:
            cur.execute("SELECT mlcache.reset_stats()")  # admin only: the application may not
        with self.assertRaises(PermissionDenied):
            cache._row("SELECT mlcache.reset_stats()")
        levels = [self.read()[1] for _ in range(4)]
        self.assertIn(levels[0], RECOMPUTED)
        self.assertEqual(levels[1:], ["l1"] * 3)
        response = self.client.get("/api/cache/stats/")
        self.assertEqual(response.status_code, 200)
        stats = response.json()
        # Four reads: three L1 hits and the first, answered by the view (a
        # hit too) or computed (the one miss).
        self.assertEqual(stats["hit_rate"], 100.0 if levels[0] == "l3" else 75.0)
        self.assertEqual(stats["l1_hits"], 3)

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
        response = self.client.get("/api/cache/health/")
        self.assertEqual(response.status_code, 200)
        health = response.json()
        self.assertEqual(health["status"], "ok")
        self.assertEqual(health["l2"]["status"], "ok")
        self.assertTrue(health["worker"]["alive"])
        self.assertEqual(health["l3"]["view_count"], 3)

    def test_warm(self):
        response = self.json("POST", "/api/cache/warm/", {"name": "assignment_stats",
                                                          "params": [self.lms.assignment.pk]})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"total": 1, "warmed": 1, "failed": 0, "async_scheduled": 0})
        self.assertEqual(self.mean(), (70, "l1"))

        students = [s.pk for s in self.lms.students]
        response = self.json("POST", "/api/cache/warm/", {"name": "analytics_student",
                                                          "param_sets": [[s] for s in students] + [[999999]]})
        self.assertEqual(response.json(), {"total": 3, "warmed": 2, "failed": 1, "async_scheduled": 0})
        for s in students:
            cache.fetch("analytics_student", s)
            self.assertEqual(cache.last_level(), "l1")

    def test_warm_rejects_what_it_cannot_warm(self):
        for data in ({}, {"name": 1}, {"name": "assignment_stats", "params": 5},
                     {"name": "assignment_stats", "param_sets": []}):
            response = self.json("POST", "/api/cache/warm/", data)
            self.assertEqual(response.status_code, 400, data)
        response = self.client.post("/api/cache/warm/", "not json", content_type="application/json")
        self.assertEqual((response.status_code, response.json()), (400, {"error": "the body must be JSON"}))


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


# Every endpoint, with the one method it allows.
ENDPOINTS = [
    ("GET", "/api/assignments/{a}/analytics/"),
    ("GET", "/api/assignments/{a}/cache_hit_rate/"),
    ("GET", "/api/cache/stats/"),
    ("GET", "/api/cache/health/"),
    ("POST", "/api/cache/warm/"),
    ("DELETE", "/api/cache/clear/"),
    ("DELETE", "/api/cache/invalidate_key/"),
    ("POST", "/api/cache/invalidate_analytics/"),
]


class AccessTests(CacheTestCase):
    def endpoints(self):
        return [(method, url.format(a=self.lms.assignment.pk)) for method, url in ENDPOINTS]

    def test_anonymous_requests_are_401(self):
        self.client.logout()
        for method, url in self.endpoints():
            response = self.json(method, url, {})
            self.assertEqual((response.status_code, response.json()), (401, {"error": "authentication required"}),
                             url)
            self.assertTrue(response.has_header("WWW-Authenticate"))

    def test_other_methods_are_405(self):
        self.client.force_login(self.lms.staff)
        for method, url in self.endpoints():
            for other in {"GET", "POST", "PUT", "DELETE"} - {method}:
                response = self.json(other, url, {})
                self.assertEqual(response.status_code, 405, (other, url))
                self.assertEqual(response["Allow"], method)
                self.assertEqual(response.json(), {"error": f"method {other} not allowed"})

    def test_cache_hit_rate_is_for_the_author_only(self):
        url = self.lms.url + "cache_hit_rate/"
        levels = []
        for _ in range(2):
            self.client.get(self.lms.url + "analytics/")
            levels.append(cache.last_level())
        self.assertEqual(levels[1], "l1")
        misses = levels.count("compute")  # an answer from L3 counts as a hit
        self.assertEqual(self.client.get(url).status_code, 403)  # a student (setUp)
        self.client.force_login(self.lms.staff)
        self.assertEqual(self.client.get(url).status_code, 403)  # staff is not the author
        self.assertEqual(self.client.get(url + "?user=%d" % self.lms.author.pk).status_code, 403)
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
        self.assertEqual(self.client.delete("/api/cache/clear/").status_code, 403)  # a student
        self.client.force_login(self.lms.author)
        self.assertEqual(self.client.delete("/api/cache/clear/").status_code, 403)
        self.assertEqual(self.mean(), (70, "l1"))
        self.client.force_login(self.lms.staff)
        response = self.client.delete("/api/cache/clear/")
        self.assertEqual((response.status_code, response.json()), (200, {"cleared": True}))
        mean, level = self.mean()
        self.assertEqual(mean, 70)
        self.assertIn(level, RECOMPUTED)


class InvalidateEndpointTests(CacheTestCase):
    URL = "/api/cache/invalidate_key/"

    def test_invalidate_key_is_staff_only(self):
        self.cached_mean(70)
        key = {"key": f"assignment_stats:{self.lms.assignment.pk}"}
        self.assertEqual(self.json("DELETE", self.URL, key).status_code, 403)  # a student
        self.client.force_login(self.lms.author)
        self.assertEqual(self.json("DELETE", self.URL, key).status_code, 403)
        self.assertEqual(self.mean(), (70, "l1"))

    def test_invalidate_one_key(self):
        self.cached_mean(70)
        self.client.force_login(self.lms.staff)
        other = Assignment.objects.create(course=self.lms.course, author=self.lms.author, title="Other")
        cache.assignment_stats(other.pk)
        cache.assignment_stats(other.pk)
        self.assertEqual(cache.last_level(), "l1")
        key = f"assignment_stats:{self.lms.assignment.pk}"
        response = self.json("DELETE", self.URL, {"key": key})
        self.assertEqual((response.status_code, response.json()), (200, {"invalidated": key, "kind": "key"}))
        mean, level = self.mean()
        self.assertEqual(mean, 70)
        self.assertIn(level, RECOMPUTED)
        cache.assignment_stats(other.pk)
        self.assertEqual(cache.last_level(), "l1")  # only that key

    def test_invalidate_a_glob(self):
        self.client.force_login(self.lms.staff)
        self.cached_mean(70)
        for query in ("", "?pattern=assignment_stats:*"):  # a JSON body or the query string
            self.assertEqual(self.mean(), (70, "l1"))
            if query:
                response = self.client.delete(self.URL + query)
            else:
                response = self.json("DELETE", self.URL, {"pattern": "assignment_stats:*"})
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response.json(), {"invalidated": "assignment_stats:*", "kind": "pattern"})
            mean, level = self.mean()
            self.assertEqual(mean, 70)
            self.assertIn(level, RECOMPUTED)

    def test_invalidate_key_wants_one_key_or_one_pattern(self):
        self.client.force_login(self.lms.staff)
        for data in ({}, {"key": "a", "pattern": "b*"}, {"key": ""}, {"pattern": 3}, {"keys": ["a"]}):
            self.assertEqual(self.json("DELETE", self.URL, data).status_code, 400, data)
        self.assertEqual(self.json("DELETE", self.URL, ["a"]).status_code, 400)


class InvalidateAnalyticsTests(CacheTestCase):
    URL = "/api/cache/invalidate_analytics/"

    def cached(self, name, *params):
        """Fetch twice; the second read must be an L1 hit."""
        cache.fetch(name, *params)
        cache.fetch(name, *params)
        self.assertEqual(cache.last_level(), "l1", name)

    def still_cached(self, name, *params):
        cache.fetch(name, *params)
        self.assertEqual(cache.last_level(), "l1", name)

    def recomputed(self, name, *params):
        cache.fetch(name, *params)
        self.assertIn(cache.last_level(), RECOMPUTED, name)

    def invalidate(self, entity, entity_id):
        return self.json("POST", self.URL, {"entity": entity, "id": entity_id})

    def test_a_student_invalidates_their_own_analytics(self):
        me, other = (s.pk for s in self.lms.students)
        course = self.lms.course.pk
        for name, params in (("analytics_student", (me,)), ("analytics_progress", (me, course)),
                             ("analytics_student", (other,)), ("assignment_stats", (self.lms.assignment.pk,))):
            self.cached(name, *params)
        response = self.invalidate("student", me)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"entity": "student", "id": me, "invalidated": [f"analytics:user:{me}:*"]})
        self.recomputed("analytics_student", me)
        self.recomputed("analytics_progress", me, course)
        self.still_cached("analytics_student", other)  # another user's keys stay
        self.still_cached("assignment_stats", self.lms.assignment.pk)
        self.assertEqual(self.invalidate("user", other).status_code, 403)
        self.assertEqual(self.invalidate("assignment", self.lms.assignment.pk).status_code, 403)
        self.assertEqual(self.invalidate("course", course).status_code, 403)

    def test_the_author_invalidates_an_assignment(self):
        a = self.lms.assignment.pk
        self.cached("assignment_stats", a)
        self.cached("analytics_assignment", a)
        self.client.force_login(self.lms.author)
        response = self.invalidate("assignment", a)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["invalidated"], [f"assignment_stats:{a}", f"analytics:assignment:{a}"])
        self.recomputed("assignment_stats", a)
        self.recomputed("analytics_assignment", a)

    def test_the_teacher_invalidates_a_course(self):
        course, student = self.lms.course.pk, self.lms.students[1].pk
        material = Material.objects.create(course=self.lms.course, title="Slides")
        MaterialView.objects.create(material=material, user=self.lms.students[1])
        self.cached("analytics_engagement", course)
        self.cached("analytics_progress", student, course)
        self.client.force_login(self.lms.author)  # the course's teacher
        response = self.invalidate("course", course)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["invalidated"],
                         [f"analytics:engagement:{course}", f"analytics:user:*:progress:{course}"])
        self.recomputed("analytics_engagement", course)
        self.recomputed("analytics_progress", student, course)

    def test_staff_invalidates_anything(self):
        self.client.force_login(self.lms.staff)
        for entity, entity_id in (("user", self.lms.students[1].pk), ("assignment", self.lms.assignment.pk),
                                  ("course", self.lms.course.pk)):
            self.assertEqual(self.invalidate(entity, entity_id).status_code, 200, entity)

    def test_unknown_entity_missing_entity_bad_id(self):
        self.client.force_login(self.lms.staff)
        response = self.invalidate("school", 1)
        self.assertEqual(response.status_code, 400)
        self.assertIn('unknown entity "school"', response.json()["error"])
        self.assertEqual(self.invalidate("assignment", 999999).status_code, 404)
        self.assertEqual(self.invalidate("user", 999999).status_code, 404)
        for data in ({"entity": "user"}, {"entity": "user", "id": "x"}, {"entity": "user", "id": True},
                     {"id": 1}):
            self.assertEqual(self.json("POST", self.URL, data).status_code, 400, data)

    def test_sql_function_rejects_an_unknown_entity(self):
        """The pack function itself says 22023, which the client turns into a 400."""
        with self.assertRaises(BadRequest):
            cache.invalidate_analytics("school", 1)


class RoleTests(CacheTestCase):
    """The tests' connection is the application's role, holding exactly APP_GRANTS beyond mlcache_reader."""

    def test_the_connection_is_the_application_role(self):
        with connection.cursor() as cur:
            cur.execute("SELECT current_user, rolsuper, pg_has_role(current_user, 'mlcache_admin', 'MEMBER'),"
                        " pg_has_role(current_user, 'mlcache_reader', 'MEMBER')"
                        "  FROM pg_roles WHERE rolname = current_user")
            self.assertEqual(cur.fetchone(), (settings.MLCACHE_APP_ROLE, False, False, True))
            for function in cache.APP_GRANTS:
                cur.execute("SELECT has_function_privilege(%s, 'EXECUTE')", [function])
                self.assertTrue(cur.fetchone()[0], function)
            # The rest of mlcache's administration stays out of reach.
            cur.execute("SELECT p.oid::regprocedure::text FROM pg_proc p"
                        " WHERE p.pronamespace = 'mlcache'::regnamespace AND has_function_privilege(p.oid, 'EXECUTE')"
                        "   AND p.proname IN ('define', 'undefine', 'watch', 'unwatch', 'grant_fetch', 'reset_stats',"
                        "                     'set_warm_query', 'lms_setup', 'schedule_maintenance')")
            self.assertEqual(cur.fetchall(), [])
        with self.assertRaises(PermissionDenied):
            cache._row("SELECT mlcache.reset_stats()")

    def test_definitions_are_shared_with_the_owner(self):
        """The owner's computed value reaches the application through Redis; a reader without grant_fetch gets 403."""
        other = f"mlcache_django_other_{os.getpid()}"
        with owner() as conn, conn, conn.cursor() as cur:
            # (A new role membership invalidates every cached value: first.)
            cur.execute(f"CREATE ROLE {other} LOGIN IN ROLE mlcache_reader")
        with owner() as conn, conn, conn.cursor() as cur:
            # The result-shaping settings are part of a value's fingerprint:
            # the same TimeZone as Django's connection (USE_TZ).
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("SELECT mlcache.fetch('assignment_stats', %s)::text, mlcache.last_level()",
                        [self.lms.assignment.pk])
            self.assertIn(cur.fetchone()[1], RECOMPUTED)
        try:
            self.assertEqual(self.mean(), (70, "l2"))
            params = {**owner_params(), "user": other}
            with closing(psycopg2.connect(**params)) as conn, conn.cursor() as cur:
                with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute("SELECT mlcache.fetch('assignment_stats', %s)", [self.lms.assignment.pk])
        finally:
            with owner() as conn, conn, conn.cursor() as cur:
                cur.execute(f"DROP ROLE {other}")
